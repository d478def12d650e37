import { useEffect, useId, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import { formatClock, formatDuration, stageLabel } from '../lib/format.js';
import { isFinished, jobLabel } from '../lib/jobs.js';
import { useJob, useNow } from './hooks.js';
import { announcement, errorText, etaText, progressValueText, queueText, statusText } from './jobText.js';
import { progressTone, useCancel } from './ProcessingJobCard.js';
import { ProgressBar } from './ProgressBar.js';
import { StageIndicators } from './StageIndicators.js';

export interface ProcessingProgressModalProps {
  /** The job to show; null renders nothing. */
  jobId: string | null;
  onClose: () => void;
}

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';

/**
 * A modal dialog with one job's full progress: every stage by name, timings, queue place, error
 * and retry status, Cancel. Escape or Close closes it; focus is kept inside and given back on close;
 * the rest of the page is inert while it is open.
 */
export function ProcessingProgressModal({ jobId, onClose }: ProcessingProgressModalProps): ReactNode {
  const job = useJob(jobId);
  const titleId = useId();
  const dialogRef = useRef<HTMLDivElement>(null);
  const open = Boolean(jobId && job);

  useEffect(() => {
    if (!open) return undefined;
    const previous = document.activeElement as HTMLElement | null;
    const dialog = dialogRef.current;
    const host = dialog?.closest('.rt-modal-root');
    const made: Element[] = [];
    for (const el of Array.from(document.body.children)) {
      if (el !== host && !el.hasAttribute('inert')) {
        el.setAttribute('inert', '');
        made.push(el);
      }
    }
    dialog?.querySelector<HTMLElement>('[data-autofocus]')?.focus();
    return () => {
      for (const el of made) el.removeAttribute('inert');
      previous?.focus?.();
    };
  }, [open]);

  const now = useNow(1000, open);
  const [cancel, cancelling, cancelError] = useCancel(jobId ?? '');
  if (!open || !job) return null;

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>): void => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      onClose();
    } else if (event.key === 'Tab') {
      const items = Array.from(dialogRef.current?.querySelectorAll<HTMLElement>(FOCUSABLE) ?? []);
      const first = items[0];
      const last = items.at(-1);
      if (!first || !last) return;
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  };

  const label = jobLabel(job);
  const eta = etaText(job, now);
  const queue = queueText(job, now);
  const error = errorText(job, now);

  return createPortal(
    <div className="rt-modal-root">
      <div className="rt-modal-backdrop" onClick={onClose} />
      <div
        ref={dialogRef}
        className="rt-modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        onKeyDown={onKeyDown}
      >
        <header className="rt-modal__header">
          <div>
            <p className="rt-modal__eyebrow">{statusText(job)}</p>
            <h2 id={titleId} className="rt-modal__title">
              {label}
            </h2>
          </div>
          <button type="button" className="rt-button rt-button--ghost" onClick={onClose} data-autofocus>
            Close
          </button>
        </header>

        <div className="rt-card__progress-row">
          <span className="rt-card__stage">{job.status === 'queued' ? 'Waiting to start' : stageLabel(job.stage)}</span>
          <span className="rt-card__pct" aria-hidden="true">
            {Math.round(job.progress)}%
          </span>
        </div>
        <ProgressBar value={job.progress} label={`Progress of ${label}`} valueText={progressValueText(job)} tone={progressTone(job)} size="large" />
        <StageIndicators job={job} />

        <dl className="rt-facts">
          {job.message && job.status === 'processing' ? (
            <>
              <dt>Now</dt>
              <dd>{job.message}</dd>
            </>
          ) : null}
          {eta ? (
            <>
              <dt>Estimate</dt>
              <dd>{eta}</dd>
            </>
          ) : null}
          {queue ? (
            <>
              <dt>Queue</dt>
              <dd>{queue}</dd>
            </>
          ) : null}
          {job.status === 'completed' && job.durationSeconds !== null ? (
            <>
              <dt>Took</dt>
              <dd>{formatDuration(job.durationSeconds)}</dd>
            </>
          ) : null}
          {job.updatedAt ? (
            <>
              <dt>Last update</dt>
              <dd>{formatClock(job.updatedAt)}</dd>
            </>
          ) : null}
          <dt>Job</dt>
          <dd className="rt-mono">{job.jobId}</dd>
        </dl>
        {error ? <p className="rt-card__error">{error}</p> : null}
        {cancelError ? <p className="rt-card__error">Could not cancel: {cancelError}</p> : null}
        <div className="rt-visually-hidden" aria-live="polite" aria-atomic="true">
          {announcement(job, label)}
        </div>
        {!isFinished(job) ? (
          <footer className="rt-card__actions">
            <button type="button" className="rt-button rt-button--quiet" onClick={cancel} disabled={cancelling}>
              {cancelling ? 'Cancelling…' : 'Cancel job'}
            </button>
          </footer>
        ) : null}
      </div>
    </div>,
    document.body,
  );
}
