import { useId, useState, type ReactNode } from 'react';
import { formatDuration, stageLabel } from '../lib/format.js';
import { isFinished, jobLabel, type JobView } from '../lib/jobs.js';
import { ApiError } from '../lib/ProgressClient.js';
import { useNow, useProgressClient } from './hooks.js';
import { announcement, errorText, etaText, progressValueText, queueText, statusText } from './jobText.js';
import { ProgressBar } from './ProgressBar.js';
import { StageIndicators } from './StageIndicators.js';

/** The card's heading: the title, else the video id, else a neutral name (the id goes below). */
export function displayTitle(job: JobView): string {
  return job.videoTitle ?? (job.videoId ? `Video ${job.videoId}` : 'Untitled video');
}

/** The small line under the heading: the video id, or a short job id when nothing else names it. */
export function subtitle(job: JobView): string | null {
  if (job.videoTitle && job.videoId && !job.videoTitle.includes(job.videoId)) return job.videoId;
  if (!job.videoTitle && !job.videoId) return `Job ${job.jobId.slice(0, 8)}`;
  return null;
}

export function progressTone(job: JobView): 'active' | 'done' | 'error' | 'idle' {
  if (job.status === 'completed') return 'done';
  if (job.status === 'failed' || job.status === 'retrying') return 'error';
  if (job.status === 'queued') return 'idle';
  return 'active';
}

/** Cancels through the provider's client; returns [cancel, pending, error]. */
export function useCancel(jobId: string): [() => void, boolean, string | null] {
  const client = useProgressClient();
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const cancel = (): void => {
    setPending(true);
    setError(null);
    client
      .cancelJob(jobId)
      .catch((e: unknown) => {
        // 409: it finished in the meantime, which the next message shows anyway.
        if (!(e instanceof ApiError && e.status === 409)) setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => setPending(false));
  };
  return [cancel, pending, error];
}

export interface ProcessingJobCardProps {
  job: JobView;
  /** Shows a "Details" button calling this (e.g. to open ProcessingProgressModal). */
  onOpenDetails?: (jobId: string) => void;
  /** Heading level of the job's title; default 3. */
  headingLevel?: 2 | 3 | 4;
}

/**
 * One job: title, status, a progress bar named after the job, the stage, the seven stage
 * indicators, estimated completion or queue place, the error with its retry status, and Cancel.
 * A polite live region announces stage and status changes.
 */
export function ProcessingJobCard({ job, onOpenDetails, headingLevel = 3 }: ProcessingJobCardProps): ReactNode {
  const titleId = useId();
  const label = jobLabel(job);
  const ticking = job.status === 'processing' || job.status === 'queued' || job.status === 'retrying';
  const now = useNow(1000, ticking);
  const [cancel, cancelling, cancelError] = useCancel(job.jobId);
  const Heading = `h${headingLevel}` as const;
  const eta = etaText(job, now);
  const queue = queueText(job, now);
  const error = errorText(job, now);
  const done = job.status === 'completed';

  return (
    <article className={`rt-card rt-card--${job.status}`} aria-labelledby={titleId} data-job-id={job.jobId}>
      <header className="rt-card__header">
        <Heading id={titleId} className="rt-card__title">
          {displayTitle(job)}
        </Heading>
        <span className={`rt-badge rt-badge--${job.status}`}>{statusText(job)}</span>
      </header>
      {subtitle(job) ? <p className="rt-card__sub">{subtitle(job)}</p> : null}

      <div className="rt-card__progress-row">
        <span className="rt-card__stage">
          {job.status === 'queued' ? 'Waiting to start' : done ? 'All stages done' : stageLabel(job.failedStage && job.status !== 'processing' ? job.failedStage : job.stage)}
        </span>
        <span className="rt-card__pct" aria-hidden="true">
          {Math.round(job.progress)}%
        </span>
      </div>
      <ProgressBar value={job.progress} label={`Progress of ${label}`} valueText={progressValueText(job)} tone={progressTone(job)} />
      <StageIndicators job={job} compact />

      <div className="rt-card__details">
        {job.message && job.status === 'processing' ? <p className="rt-card__message">{job.message}</p> : null}
        {eta ? <p className="rt-card__eta">{eta}</p> : null}
        {queue ? <p className="rt-card__queue">{queue}</p> : null}
        {done && job.durationSeconds !== null ? (
          <p className="rt-card__done">Finished in {formatDuration(job.durationSeconds)}</p>
        ) : null}
        {error ? <p className={`rt-card__error${job.status === 'retrying' ? ' rt-card__error--retrying' : ''}`}>{error}</p> : null}
        {cancelError ? <p className="rt-card__error">Could not cancel: {cancelError}</p> : null}
      </div>

      <div className="rt-visually-hidden" aria-live="polite" aria-atomic="true">
        {announcement(job, label)}
      </div>

      {!isFinished(job) || onOpenDetails ? (
        <footer className="rt-card__actions">
          {onOpenDetails ? (
            <button type="button" className="rt-button rt-button--ghost" aria-label={`Details of ${label}`} onClick={() => onOpenDetails(job.jobId)}>
              Details
            </button>
          ) : null}
          {!isFinished(job) ? (
            <button type="button" className="rt-button rt-button--quiet" aria-label={`Cancel ${label}`} onClick={cancel} disabled={cancelling}>
              {cancelling ? 'Cancelling…' : 'Cancel'}
            </button>
          ) : null}
        </footer>
      ) : null}
    </article>
  );
}
