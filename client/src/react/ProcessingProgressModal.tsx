import { useId, useState, type ReactNode } from 'react';
import { formatClock, formatDuration, stageLabel } from '../lib/format.js';
import { isFinished, jobLabel } from '../lib/jobs.js';
import { ConfirmCancelDialog } from './ConfirmCancel.js';
import { Dialog } from './Dialog.js';
import { useConnectionState, useJob, useNow, useProgressClient } from './hooks.js';
import { announcement, cancelText, errorText, etaText, formatWhen, progressValueText, queueText, resultText, statusText } from './jobText.js';
import { progressTone, toneClass } from './ProcessingJobCard.js';
import { ProgressBar } from './ProgressBar.js';
import { StageIndicators } from './StageIndicators.js';

export interface ProcessingProgressModalProps {
  /** The job to show; null renders nothing. */
  jobId: string | null;
  onClose: () => void;
}

/**
 * A modal dialog with one job's full progress: every stage by name, timings, queue place, error
 * and retry status, what it produced, Cancel (which asks first). Escape or Close closes it; focus is
 * kept inside and given back on close; the rest of the page is inert while it is open.
 */
export function ProcessingProgressModal({ jobId, onClose }: ProcessingProgressModalProps): ReactNode {
  const job = useJob(jobId);
  if (!jobId || !job) return null;
  return <ModalBody jobId={jobId} onClose={onClose} />;
}

function ModalBody({ jobId, onClose }: { jobId: string; onClose: () => void }): ReactNode {
  const job = useJob(jobId)!;
  const titleId = useId();
  const me = useProgressClient().userId;
  const state = useConnectionState();
  const paused = state === 'offline' || state === 'reconnecting';
  const now = useNow(1000, !paused);
  const [confirming, setConfirming] = useState(false);

  const label = jobLabel(job);
  const eta = etaText(job, now, paused);
  const queue = queueText(job, now, paused);
  const error = errorText(job, now, paused);
  const cancelled = cancelText(job, me);
  const produced = job.status === 'completed' ? resultText(job.result) : null;
  const facts: Array<[string, ReactNode]> = [];
  if (job.message && job.status === 'processing') facts.push(['Now', job.message]);
  if (eta) facts.push(['Estimate', eta]);
  if (queue) facts.push(['Queue', queue]);
  if (job.status === 'completed' && job.durationSeconds !== null) facts.push(['Took', formatDuration(job.durationSeconds)]);
  if (produced) facts.push(['Result', produced]);
  if (job.submittedAt) facts.push(['Submitted', formatWhen(job.submittedAt)]);
  if (job.updatedAt) facts.push(['Last update', formatClock(job.updatedAt)]);
  if (job.videoUrl) {
    facts.push([
      'Video',
      <a className="rt-link" href={job.videoUrl} target="_blank" rel="noopener noreferrer">
        {job.videoUrl}
      </a>,
    ]);
  }
  facts.push(['Job', <span className="rt-mono">{job.jobId}</span>]);

  return (
    <Dialog labelledBy={titleId} onClose={onClose} className={`rt-modal--${toneClass(job)}`}>
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
        {facts.map(([term, value]) => (
          <div key={term} className="rt-facts__row">
            <dt>{term}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      {cancelled ? <p className="rt-card__cancelled">{cancelled}</p> : null}
      {error ? <p className="rt-card__error">{error}</p> : null}
      <div className="rt-visually-hidden" aria-live="polite" aria-atomic="true">
        {announcement(job, label)}
      </div>
      {!isFinished(job) ? (
        <footer className="rt-card__actions">
          <button type="button" className="rt-button rt-button--quiet" aria-label={`Cancel ${label}`} aria-haspopup="dialog" onClick={() => setConfirming(true)}>
            Cancel…
          </button>
        </footer>
      ) : null}
      {confirming && !isFinished(job) ? <ConfirmCancelDialog job={job} label={label} onClose={() => setConfirming(false)} /> : null}
    </Dialog>
  );
}
