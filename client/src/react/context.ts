import { createContext } from 'react';
import type { ProgressClient } from '../lib/ProgressClient.js';
import type { NoticeFeed } from './notices.js';
import type { ToastStore } from './toastStore.js';

export type ToastKind = 'success' | 'error' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  body: string;
  jobId: string | null;
}

/**
 * What a ProgressProvider gives its subtree. Its value does not change while the provider lives,
 * so components that only need the client never re-render because of it.
 */
export interface ProgressContextValue {
  client: ProgressClient;
  /** What is worth telling about the jobs (toasts, notifications and the tab title listen to it). */
  feed?: NoticeFeed;
  /** The toasts on screen (the provider's); `toasts`/`dismissToast` serve a hand-made context. */
  toastStore?: ToastStore;
  toasts?: readonly Toast[];
  dismissToast?: (id: number) => void;
}

export const ProgressContext = createContext<ProgressContextValue | null>(null);
