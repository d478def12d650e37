import { memo, useId, useState, type ReactNode } from 'react';
import { stageLabel } from '../lib/format.js';
import { isFinished, jobLabel, type JobView } from '../lib/jobs.js';
import { ConfirmCancelDialog } from './ConfirmCancel.js';
import { useNow, useProgressClient } from './hooks.js';
import {
  announcement,
  cancelText,
  doneText,
  errorText,
  etaText,
  formatWhen,
  isCancelled,
  progressValueText,
  queueText,
  resultText,
  resultUrl,
  statusText,
} from './jobText.js';
import { ProgressBar } from './ProgressBar.js';
import { StageIndicators } from './StageIndicators.js';

export { useCancel } from './ConfirmCancel.js';

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

/** Blue while running, green when done, red on a failure, grey when waiting or cancelled. */
export function progressTone(job: JobView): 'active' | 'done' | 'error' | 'idle' {
  if (job.status === 'completed') return 'done';
  if (job.status === 'failed' && isCancelled(job)) return 'idle';
  if (job.status === 'failed' || job.status === 'retrying') return 'error';
  if (job.status === 'queued') return 'idle';
  return 'active';
}

/** `completed`, `failed`, `cancelled`, ...: the card's and the badge's modifier. */
export function toneClass(job: JobView): string {
  return job.status === 'failed' && isCancelled(job) ? 'cancelled' : job.status;
}

export interface ProcessingJobCardProps {
  job: JobView;
  /** Shows a "Details" button calling this (e.g. to open ProcessingProgressModal). */
  onOpenDetails?: (jobId: string) => void;
  /** Heading level of the job's title; default 3. */
  headingLevel?: 2 | 3 | 4;
  /** The service cannot be reached now: estimates read as paused instead of counting down. */
  paused?: boolean;
  /** This link's number among jobs of the same video (1 = the first), to tell repeats apart. */
  repeat?: number | null;
}

/**
 * One job: title, status, a progress bar named after the job, the stage, the seven stage
 * indicators, estimated completion or queue place, the error with its retry status, what it
 * produced (and a link `Open…` to it), a link to the video, when it was submitted, and Cancel
 * (which asks first). A polite live region announces stage and status changes.
 *
 * Memoized: in a long list only the card whose job changed renders again.
 */
export const ProcessingJobCard = memo(function ProcessingJobCard({
  job,
  onOpenDetails,
  headingLevel = 3,
  paused = false,
  repeat = null,
}: ProcessingJobCardProps): ReactNode {
  const titleId = useId();
  const me = useProgressClient().userId;
  const label = repeat ? `${jobLabel(job)} #${repeat}` : jobLabel(job);
  const ticking = !paused && (job.status === 'processing' || job.status === 'queued' || job.status === 'retrying');
  const now = useNow(1000, ticking);
  const [confirming, setConfirming] = useState(false);
  const Heading = `h${headingLevel}` as const;
  const eta = etaText(job, now, paused);
  const queue = queueText(job, now, paused);
  const error = errorText(job, now, paused);
  const cancelled = cancelText(job, me);
  const done = doneText(job);
  const produced = job.status === 'completed' ? resultText(job.result) : null;
  const openUrl = job.status === 'completed' ? resultUrl(job.result) : null;
  const submitted = formatWhen(job.submittedAt);
  const sub = subtitle(job);
  const tone = toneClass(job);

  return (
    <article className={`rt-card rt-card--${tone}`} aria-labelledby={titleId} data-job-id={job.jobId}>
      <header className="rt-card__header">
        <Heading id={titleId} className="rt-card__title">
          {displayTitle(job)}
          {repeat ? <span className="rt-card__repeat"> #{repeat}</span> : null}
        </Heading>
        <span className={`rt-badge rt-badge--${tone}`}>{statusText(job)}</span>
      </header>
      {sub || submitted || job.videoUrl ? (
        <p className="rt-card__sub">
          {[
            sub ? <span key="id" className="rt-mono">{sub}</span> : null,
            submitted ? <span key="at">Submitted {submitted}</span> : null,
            job.videoUrl ? (
              <a key="video" className="rt-link" href={job.videoUrl} target="_blank" rel="noopener noreferrer" aria-label={`Watch ${label} on YouTube`}>
                Watch on YouTube
              </a>
            ) : null,
          ]
            .filter(Boolean)
            .flatMap((part, i) => (i ? [<span key={`sep${i}`} aria-hidden="true"> · </span>, part] : [part]))}
        </p>
      ) : null}

      <div className="rt-card__progress-row">
        <span className="rt-card__stage">
          {job.status === 'queued'
            ? 'Waiting to start'
            : !job.stage && !job.failedStage
              ? 'Not started'
              : job.status === 'completed'
              ? 'All stages done'
              : stageLabel(job.failedStage && job.status !== 'processing' ? job.failedStage : job.stage)}
        </span>
        <span className="rt-card__pct" aria-hidden="true">
          {Math.round(job.progress)}%
        </span>
      </div>
      <ProgressBar value={job.progress} label={`Progress of ${label}`} valueText={progressValueText(job)} tone={progressTone(job)} />
      <StageIndicators job={job} compact />

      <div className="rt-card__details">
        {job.message && job.status === 'processing' ? <p className="rt-card__message">{job.message}</p> : null}
        {eta ? <p className={`rt-card__eta${paused ? ' rt-card__eta--paused' : ''}`}>{eta}</p> : null}
        {queue ? <p className="rt-card__queue">{queue}</p> : null}
        {done ? <p className="rt-card__done">{done}</p> : null}
        {produced ? <p className="rt-card__result">{produced}</p> : null}
        {cancelled ? <p className="rt-card__cancelled">{cancelled}</p> : null}
        {error ? <p className={`rt-card__error${job.status === 'retrying' ? ' rt-card__error--retrying' : ''}`}>{error}</p> : null}
      </div>

      <div className="rt-visually-hidden" aria-live="polite" aria-atomic="true">
        {announcement(job, label)}
      </div>

      <footer className="rt-card__actions">
        {openUrl ? (
          <a className="rt-button rt-button--primary" href={openUrl} aria-describedby={titleId} {...(openUrl.startsWith('/') ? {} : { target: '_blank', rel: 'noopener noreferrer' })}>
            Open…
          </a>
        ) : null}
        {onOpenDetails ? (
          <button type="button" className="rt-button rt-button--ghost" aria-label={`Details of ${label}`} onClick={() => onOpenDetails(job.jobId)}>
            Details
          </button>
        ) : null}
        {!isFinished(job) ? (
          <button type="button" className="rt-button rt-button--quiet" aria-label={`Cancel ${label}`} aria-haspopup="dialog" onClick={() => setConfirming(true)}>
            Cancel
          </button>
        ) : null}
      </footer>
      {confirming && !isFinished(job) ? <ConfirmCancelDialog job={job} label={label} onClose={() => setConfirming(false)} /> : null}
    </article>
  );
});
