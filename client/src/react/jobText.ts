/** Sentences that describe a job's timing, queue place and error (shared by card and modal). */
import { formatClock, formatDuration, secondsUntil, stageLabel } from '../lib/format.js';
import type { JobView } from '../lib/jobs.js';

export const STATUS_TEXT: Record<JobView['status'], string> = {
  queued: 'Queued',
  processing: 'Processing',
  retrying: 'Retrying',
  completed: 'Completed',
  failed: 'Failed',
};

export function isCancelled(job: JobView): boolean {
  return job.errorCode === 'cancelled' || job.error === 'cancelled';
}

export function statusText(job: JobView): string {
  return job.status === 'failed' && isCancelled(job) ? 'Cancelled' : STATUS_TEXT[job.status];
}

/** "37% · Transcript generation", for aria-valuetext. */
export function progressValueText(job: JobView): string {
  const pct = `${Math.round(job.progress)}%`;
  if (job.status === 'queued') return `${pct} · Queued${job.position ? `, position ${job.position}` : ''}`;
  if (job.status === 'completed') return `${pct} · Completed`;
  if (job.status === 'failed') return `${pct} · ${isCancelled(job) ? 'Cancelled' : 'Failed'} at ${stageLabel(job.failedStage ?? job.stage)}`;
  if (job.status === 'retrying') return `${pct} · Retrying ${stageLabel(job.failedStage ?? job.stage)}`;
  return `${pct} · ${stageLabel(job.stage)}`;
}

/** "Estimated completion 14:32:05 (in about 40 s)", or null. */
export function etaText(job: JobView, now: number): string | null {
  if (job.status !== 'processing' || !job.estimatedCompletion) return null;
  const clock = formatClock(job.estimatedCompletion);
  const left = secondsUntil(job.estimatedCompletion, now);
  if (!clock || left === null) return null;
  return left > 1 ? `Estimated completion ${clock} (in about ${formatDuration(left)})` : `Estimated completion ${clock} (any moment now)`;
}

/** "Position 2 of 5 in the queue · starts in about 30 s", or null when not queued. */
export function queueText(job: JobView, now: number): string | null {
  if (job.status !== 'queued') return null;
  const place = job.position ? `Position ${job.position}${job.queueLength ? ` of ${job.queueLength}` : ''} in the queue` : 'In the queue';
  let wait: number | null = null;
  if (job.estimatedStart) wait = secondsUntil(job.estimatedStart, now);
  else if (job.estimatedWaitSeconds !== null) wait = job.estimatedWaitSeconds;
  if (wait === null) return `${place} · waiting for a worker`;
  return wait > 1 ? `${place} · starts in about ${formatDuration(wait)}` : `${place} · starting now`;
}

/** The error with its retry status, or null. */
export function errorText(job: JobView, now: number): string | null {
  if (!job.error) return null;
  if (isCancelled(job)) return 'Cancelled.';
  const attempts = job.attempt && job.maxAttempts ? `Attempt ${job.attempt} of ${job.maxAttempts} failed` : 'Failed';
  const where = job.failedStage ? ` during ${stageLabel(job.failedStage).toLowerCase()}` : '';
  if (job.status === 'retrying') {
    const left = secondsUntil(job.retryAt, now);
    const when = left === null ? '' : left > 1 ? ` in about ${formatDuration(left)}` : ' now';
    return `${attempts}${where}: ${job.error}. Retrying${when}.`;
  }
  if (job.status === 'failed') {
    const final = job.attempt && job.maxAttempts && job.attempt >= job.maxAttempts ? ' No more retries.' : '';
    return `${attempts}${where}: ${job.error}.${final}`;
  }
  return null;
}

/** What a screen reader hears when the job's status or stage changes (not on every percent). */
export function announcement(job: JobView, label: string): string {
  switch (job.status) {
    case 'queued':
      return `${label}: queued${job.position ? `, position ${job.position}` : ''}.`;
    case 'processing':
      return `${label}: ${stageLabel(job.stage)}.`;
    case 'retrying':
      return `${label}: failed, will retry.`;
    case 'completed':
      return `${label}: completed.`;
    case 'failed':
      return `${label}: ${isCancelled(job) ? 'cancelled' : 'failed'}.`;
  }
}
