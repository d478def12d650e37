import { useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import type { JobView } from '../lib/jobs.js';
import type { ConnectionProblem, ConnectionState, ProgressClient } from '../lib/ProgressClient.js';
import { ProgressContext, type ProgressContextValue, type Toast } from './context.js';
import type { NoticeFeed } from './notices.js';

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

/** A refusal a person can act on (`unauthorized`: sign in again; `too_many_connections`), or null. */
export function useConnectionProblem(): ConnectionProblem | null {
  const client = useProgressClient();
  const subscribe = useCallback((onChange: () => void) => client.on('problem', onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.problem, () => client.problem);
}

const NO_TOASTS: readonly Toast[] = [];
const noSubscription = (): (() => void) => () => {};

/** Toasts raised by completions and failures, and a way to dismiss one. */
export function useToasts(): { toasts: readonly Toast[]; dismiss: (id: number) => void } {
  const value = useProgressContext();
  const store = value.toastStore;
  const toasts = useSyncExternalStore(
    store ? store.subscribe : noSubscription,
    () => (store ? store.list : (value.toasts ?? NO_TOASTS)),
    () => (store ? store.list : (value.toasts ?? NO_TOASTS)),
  );
  return { toasts, dismiss: store ? store.dismiss : (value.dismissToast ?? (() => {})) };
}

/** The provider's notice feed (toasts, notifications and the tab title listen to it). */
export function useNoticeFeed(): NoticeFeed | null {
  return useProgressContext().feed ?? null;
}

/**
 * One interval per period for every component that shows a countdown: all of them read the same
 * instant and re-render in the same batch (200 cards, one timer).
 */
const clocks = new Map<number, { timer: ReturnType<typeof setInterval>; listeners: Set<(now: number) => void> }>();

function subscribeClock(intervalMs: number, listener: (now: number) => void): () => void {
  let clock = clocks.get(intervalMs);
  if (!clock) {
    const listeners = new Set<(now: number) => void>();
    const timer = setInterval(() => {
      const now = Date.now();
      for (const l of [...listeners]) l(now);
    }, intervalMs);
    clock = { timer, listeners };
    clocks.set(intervalMs, clock);
  }
  clock.listeners.add(listener);
  return () => {
    const current = clocks.get(intervalMs);
    if (!current) return;
    current.listeners.delete(listener);
    if (current.listeners.size === 0) {
      clearInterval(current.timer);
      clocks.delete(intervalMs);
    }
  };
}

/** The current time, re-read every `intervalMs` while `active` (for countdowns). */
export function useNow(intervalMs = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    // Catch up after a pause, but do not render a freshly mounted component twice for nothing.
    setNow((previous) => (Date.now() - previous >= intervalMs / 2 ? Date.now() : previous));
    return subscribeClock(intervalMs, setNow);
  }, [intervalMs, active]);
  return now;
}
