import { createContext } from 'react';
import type { ProgressClient } from '../lib/ProgressClient.js';

export type ToastKind = 'success' | 'error' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  body: string;
  jobId: string | null;
}

export interface ProgressContextValue {
  client: ProgressClient;
  toasts: readonly Toast[];
  dismissToast: (id: number) => void;
}

export const ProgressContext = createContext<ProgressContextValue | null>(null);
