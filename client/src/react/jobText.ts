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

/**
 * "Estimated completion 14:32:05 (in about 40 s)", or null. `paused`: the service cannot be reached
 * now, so no countdown pretends to know ("any moment now" would be a guess).
 */
export function etaText(job: JobView, now: number, paused = false): string | null {
  if (job.status !== 'processing') return null;
  if (paused) return 'Estimate paused until the server can be reached again';
  if (!job.estimatedCompletion) return null;
  const clock = formatClock(job.estimatedCompletion);
  const left = secondsUntil(job.estimatedCompletion, now);
  if (!clock || left === null) return null;
  return left > 1 ? `Estimated completion ${clock} (in about ${formatDuration(left)})` : `Estimated completion ${clock} (any moment now)`;
}

/** "Position 2 of 5 in the queue · starts in about 30 s", or null when not queued. */
export function queueText(job: JobView, now: number, paused = false): string | null {
  if (job.status !== 'queued') return null;
  const place = job.position ? `Position ${job.position}${job.queueLength ? ` of ${job.queueLength}` : ''} in the queue` : 'In the queue';
  if (paused) return `${place} · wait estimate paused`;
  let wait: number | null = null;
  if (job.estimatedStart) wait = secondsUntil(job.estimatedStart, now);
  else if (job.estimatedWaitSeconds !== null) wait = job.estimatedWaitSeconds;
  if (wait === null) return `${place} · waiting for a worker`;
  return wait > 1 ? `${place} · starts in about ${formatDuration(wait)}` : `${place} · starting now`;
}

/** The error with its retry status, or null (a cancel is no error: see `cancelText`). */
export function errorText(job: JobView, now: number, paused = false): string | null {
  if (!job.error || isCancelled(job)) return null;
  const attempts = job.attempt && job.maxAttempts ? `Attempt ${job.attempt} of ${job.maxAttempts} failed` : 'Failed';
  const where = job.failedStage ? ` during ${stageLabel(job.failedStage).toLowerCase()}` : '';
  if (job.status === 'retrying') {
    const left = secondsUntil(job.retryAt, now);
    const at = formatClock(job.retryAt);
    if (paused) return `${attempts}${where}: ${job.error}.${at ? ` A retry was planned for ${at}.` : ' A retry is planned.'}`;
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

/** A date-and-time a person reads at a glance: "14:32" today, "3 Dec, 14:32" on another day. */
export function formatWhen(iso: string | null | undefined, now: number = Date.now()): string | null {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === new Date(now).toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })}, ${time}`;
}

/** "Cancelled by you at 14:32" (you: the signed-in user), "by another user", "by the service". */
export function cancelText(job: JobView, me: string | null): string | null {
  if (job.status !== 'failed' || !isCancelled(job)) return null;
  const who = job.cancelledBy === null ? 'by the service' : job.cancelledBy === me ? 'by you' : `by ${job.cancelledBy}`;
  const when = formatWhen(job.finishedAt ?? job.updatedAt);
  return `Cancelled ${who}${when ? ` at ${when}` : ''}`;
}

/** "Finished in 7 s · after 1 retry", or the finish time when the duration is unknown. */
export function doneText(job: JobView): string | null {
  if (job.status !== 'completed') return null;
  const took = job.durationSeconds !== null ? `Finished in ${formatDuration(job.durationSeconds)}` : null;
  const when = formatWhen(job.finishedAt);
  const base = took ?? (when ? `Finished at ${when}` : 'Finished');
  return job.retries > 0 ? `${base} · after ${job.retries} ${job.retries === 1 ? 'retry' : 'retries'}` : base;
}

interface OutlineNode {
  title?: unknown;
  children?: unknown;
}

function countNodes(node: OutlineNode): number {
  const children = Array.isArray(node.children) ? (node.children as OutlineNode[]) : [];
  return 1 + children.reduce((n, child) => n + countNodes(child), 0);
}

/** What a completed job produced, in one line: "Mind map · 19 nodes: Examples, Takeaways +3 more". */
export function resultText(result: Record<string, unknown> | null): string | null {
  if (!result) return null;
  const outline = (result.outline ?? null) as OutlineNode | null;
  const branches = outline && Array.isArray(outline.children) ? (outline.children as OutlineNode[]) : [];
  const nodes = typeof result.nodes === 'number' ? result.nodes : outline ? countNodes(outline) : null;
  const names = branches.map((b) => (typeof b.title === 'string' ? b.title : null)).filter((t): t is string => Boolean(t));
  const kind = outline || 'mindmapId' in result ? 'Mind map' : 'Result';
  const size = nodes !== null ? ` · ${nodes} ${nodes === 1 ? 'node' : 'nodes'}` : '';
  if (!names.length) return `${kind}${size}`;
  const shown = names.slice(0, 3).join(', ');
  return `${kind}${size}: ${shown}${names.length > 3 ? ` +${names.length - 3} more` : ''}`;
}

/** An in-app or outside address for a result's `url`, when it is a usable one. */
export function resultUrl(result: Record<string, unknown> | null): string | null {
  const url = result?.url;
  if (typeof url !== 'string' || !url) return null;
  if (url.startsWith('/') && !url.startsWith('//')) return url;
  return /^https?:\/\//i.test(url) ? url : null;
}
