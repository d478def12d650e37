import { useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import type { JobView } from '../lib/jobs.js';
import type { ConnectionState, ProgressClient } from '../lib/ProgressClient.js';
import { ProgressContext, type ProgressContextValue, type Toast } from './context.js';

function useProgressContext(): ProgressContextValue {
  const value = useContext(ProgressContext);
  if (!value) throw new Error('realtime: wrap this component in <ProgressProvider>');
  return value;
}

/** The provider's ProgressClient (for submitJob, cancelJob, events). */
export function useProgressClient(): ProgressClient {
  return useProgressContext().client;
}

/** Every job of the signed-in user, newest first; re-renders when any changes. */
export function useJobs(): readonly JobView[] {
  const client = useProgressClient();
  const subscribe = useCallback((onChange: () => void) => client.on('jobs', onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.getJobs(), () => client.getJobs());
}

/** One job, or undefined when unknown. */
export function useJob(jobId: string | null | undefined): JobView | undefined {
  const jobs = useJobs();
  return jobId ? jobs.find((job) => job.jobId === jobId) : undefined;
}

/** `connected`, `reconnecting`, `polling` or `offline`. */
export function useConnectionState(): ConnectionState {
  const client = useProgressClient();
  const subscribe = useCallback((onChange: () => void) => client.on('state', onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.getState(), () => client.getState());
}

/** Toasts raised by completions and failures, and a way to dismiss one. */
export function useToasts(): { toasts: readonly Toast[]; dismiss: (id: number) => void } {
  const { toasts, dismissToast } = useProgressContext();
  return { toasts, dismiss: dismissToast };
}

/** The current time, re-read every `intervalMs` while `active` (for countdowns). */
export function useNow(intervalMs = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs, active]);
  return now;
}
