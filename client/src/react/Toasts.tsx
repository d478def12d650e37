import type { ReactNode } from 'react';
import { useToasts } from './hooks.js';

/**
 * Completion and failure notices. Successes are announced politely; failures use role="alert".
 * (No role="status" here: the page keeps a single status element, the connection state.)
 */
export function Toasts(): ReactNode {
  const { toasts, dismiss } = useToasts();
  return (
    <section className="rt-toasts" aria-label="Notifications" aria-live="polite">
      {toasts.map((toast) => (
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
