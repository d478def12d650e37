import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { jobLabel } from '../lib/jobs.js';
import { formatClock } from '../lib/format.js';
import type { ProcessingComplete, ProcessingError } from '../lib/messages.js';
import { ProgressClient, type ProgressClientOptions } from '../lib/ProgressClient.js';
import { ProgressContext, type Toast, type ToastKind } from './context.js';

export interface ProgressProviderProps {
  /** Returns a valid access token; called on every (re)connect. Read through a ref: may change. */
  getToken: () => Promise<string>;
  /** Optional: by default the user id is the token's `sub`. */
  userId?: string;
  /** Server origin; default the page's own. */
  url?: string;
  /** Further ProgressClient options, read once when the provider mounts. */
  options?: Omit<ProgressClientOptions, 'getToken' | 'userId' | 'url'>;
  /** Use this client instead of creating one (the provider still starts and stops it). */
  client?: ProgressClient;
  /** How long a toast stays (ms); default 6000; 0 keeps them until dismissed. */
  toastTimeoutMs?: number;
  children: ReactNode;
}

/**
 * Owns one ProgressClient (one socket) for its subtree: starts it on mount and stops it on unmount,
 * so React StrictMode's double mount leaves exactly one connection. To switch users, remount it
 * (`key={userId}`).
 */
export function ProgressProvider(props: ProgressProviderProps): ReactNode {
  const { children, toastTimeoutMs = 6000 } = props;
  const getTokenRef = useRef(props.getToken);
  getTokenRef.current = props.getToken;

  const [client] = useState(
    () =>
      props.client ??
      new ProgressClient({
        ...props.options,
        ...(props.userId ? { userId: props.userId } : {}),
        ...(props.url ? { url: props.url } : {}),
        getToken: () => getTokenRef.current(),
      }),
  );

  useEffect(() => {
    client.start();
    return () => client.stop();
  }, [client]);

  const [toasts, setToasts] = useState<readonly Toast[]>([]);
  const nextId = useRef(1);
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>());

  const dismissToast = useCallback((id: number) => {
    const timer = timers.current.get(id);
    if (timer) clearTimeout(timer);
    timers.current.delete(id);
    setToasts((list) => list.filter((t) => t.id !== id));
  }, []);

  useEffect(() => {
    const push = (kind: ToastKind, title: string, body: string, jobId: string): void => {
      const id = nextId.current++;
      setToasts((list) => [...list.slice(-4), { id, kind, title, body, jobId }]);
      if (toastTimeoutMs > 0) timers.current.set(id, setTimeout(() => dismissToast(id), toastTimeoutMs));
    };
    const name = (jobId: string, title: string | null): string => {
      const job = client.getJob(jobId);
      return job ? jobLabel(job) : (title ?? `Job ${jobId}`);
    };
    const onComplete = (msg: ProcessingComplete, meta: { history: boolean }): void => {
      if (meta.history) return;
      push('success', 'Processing complete', name(msg.jobId, msg.videoTitle), msg.jobId);
    };
    const onError = (msg: ProcessingError, meta: { history: boolean }): void => {
      if (meta.history) return;
      if (msg.code === 'cancelled') {
        push('info', 'Cancelled', name(msg.jobId, null), msg.jobId);
      } else if (msg.willRetry) {
        const at = formatClock(msg.retryAt);
        push('error', `Attempt ${msg.attempt ?? '?'} of ${msg.maxAttempts ?? '?'} failed`, `${name(msg.jobId, null)}: ${msg.error}.${at ? ` Retrying at ${at}.` : ' Retrying.'}`, msg.jobId);
      } else {
        push('error', 'Processing failed', `${name(msg.jobId, null)}: ${msg.error}`, msg.jobId);
      }
    };
    const offComplete = client.on('processing_complete', onComplete);
    const offError = client.on('processing_error', onError);
    const pending = timers.current;
    return () => {
      offComplete();
      offError();
      for (const timer of pending.values()) clearTimeout(timer);
      pending.clear();
    };
  }, [client, toastTimeoutMs, dismissToast]);

  const value = useMemo(() => ({ client, toasts, dismissToast }), [client, toasts, dismissToast]);
  return <ProgressContext.Provider value={value}>{children}</ProgressContext.Provider>;
}
