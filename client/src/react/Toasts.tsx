import type { ReactNode } from 'react';
import { useToasts } from './hooks.js';

export interface ToastsProps {
  /**
   * `floating` (default): a stack in the bottom-right corner. `inline`: in the page's flow, e.g.
   * inside a sticky header, so that a toast never covers anything (phones).
   */
  variant?: 'floating' | 'inline';
  /** How many toasts show at once (the newest); the rest are counted. Default 3. */
  max?: number;
}

/**
 * Completion and failure notices. Successes are announced politely; failures use role="alert".
 * (No role="status" here: the page keeps a single status element, the connection state.)
 */
export function Toasts({ variant = 'floating', max = 3 }: ToastsProps): ReactNode {
  const { toasts, dismiss } = useToasts();
  const shown = toasts.slice(-max);
  const hidden = toasts.length - shown.length;
  return (
    <section className={`rt-toasts rt-toasts--${variant}`} aria-label="Notifications" aria-live="polite">
      {hidden > 0 ? <p className="rt-toasts__more">+{hidden} earlier</p> : null}
      {shown.map((toast) => (
        <div key={toast.id} className={`rt-toast rt-toast--${toast.kind}`} role={toast.kind === 'error' ? 'alert' : undefined}>
          <div className="rt-toast__text">
            <p className="rt-toast__title">{toast.title}</p>
            <p className="rt-toast__body">{toast.body}</p>
          </div>
          <button type="button" className="rt-toast__close" aria-label="Dismiss notification" onClick={() => dismiss(toast.id)}>
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
