import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ProgressClient, type ProgressClientOptions } from '../lib/ProgressClient.js';
import { ProgressContext } from './context.js';
import { NoticeFeed } from './notices.js';
import { ToastStore } from './toastStore.js';

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
  /** How long a toast stays (ms), read once; default 6000; 0 keeps them until dismissed. */
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

  // Live news one by one; what a replay brought, summed up (notices.ts). Toasts live in a store of
  // their own: the context value never changes, so a toast re-renders the toasts and nothing else.
  const [feed] = useState(() => new NoticeFeed(client));
  const [toastStore] = useState(() => new ToastStore(toastTimeoutMs));
  useEffect(() => feed.start(), [feed]);
  useEffect(() => {
    const off = feed.on('notice', (notice) => toastStore.push(notice));
    return () => {
      off();
      toastStore.close();
    };
  }, [feed, toastStore]);

  const value = useMemo(() => ({ client, feed, toastStore }), [client, feed, toastStore]);
  return <ProgressContext.Provider value={value}>{children}</ProgressContext.Provider>;
}
