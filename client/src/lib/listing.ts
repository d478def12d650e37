/**
 * How a list of jobs reads best for a person: active jobs first (newest submitted first), then the
 * finished ones (newest finished first); and numbers that tell repeated links apart.
 */
import { isFinished, type JobView } from './jobs.js';

function time(iso: string | null | undefined): number {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

function submitted(job: JobView): number {
  return time(job.submittedAt ?? job.updatedAt);
}

function finished(job: JobView): number {
  return time(job.finishedAt ?? job.updatedAt);
}

/** Active jobs first, newest submitted first; then finished jobs, newest finished first. */
export function orderJobs(jobs: readonly JobView[]): JobView[] {
  return [...jobs].sort((a, b) => {
    const fa = isFinished(a);
    const fb = isFinished(b);
    if (fa !== fb) return fa ? 1 : -1;
    const diff = fa ? finished(b) - finished(a) : submitted(b) - submitted(a);
    return diff || b.order - a.order;
  });
}

/** What makes two jobs "the same link": the video id, else the URL. */
function linkKey(job: JobView): string | null {
  return job.videoId ?? job.videoUrl ?? null;
}

/**
 * For every job whose video was submitted more than once: its number among those, in submit order
 * (1 = the first). Jobs with a link of their own are absent.
 */
export function repeatNumbers(jobs: readonly JobView[]): ReadonlyMap<string, number> {
  const groups = new Map<string, JobView[]>();
  for (const job of jobs) {
    const key = linkKey(job);
    if (!key) continue;
    const group = groups.get(key);
    if (group) group.push(job);
    else groups.set(key, [job]);
  }
  const numbers = new Map<string, number>();
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    group.sort((a, b) => submitted(a) - submitted(b) || a.order - b.order);
    group.forEach((job, i) => numbers.set(job.jobId, i + 1));
  }
  return numbers;
}

/** The jobs still queued, running or waiting for a retry. */
export function activeCount(jobs: readonly JobView[]): number {
  let n = 0;
  for (const job of jobs) if (!isFinished(job)) n++;
  return n;
}
