/**
 * The client's view of a user's jobs, and the pure rules that fold messages into it.
 *
 * Ordering guarantee kept here: a job only ever moves forward in `seq`. A message whose `seq` is not
 * above the job's last applied `seq` is history and never rolls the job back (this covers duplicates,
 * the offline queue that follows a snapshot, and replays that answer a `resume`).
 */
import { youtubeVideoId } from './format.js';
import type { JobState, JobStatus, SequencedMessage, Snapshot, Stage, SubmitResponse } from './messages.js';

export interface JobView {
  jobId: string;
  status: JobStatus;
  stage: Stage | null;
  progress: number;
  /** Human text for the current stage (from `progress_update.message`). */
  message: string | null;
  videoTitle: string | null;
  videoUrl: string | null;
  videoId: string | null;
  estimatedCompletion: string | null;
  position: number | null;
  queueLength: number | null;
  estimatedWaitSeconds: number | null;
  estimatedStart: string | null;
  error: string | null;
  errorCode: string | null;
  attempt: number | null;
  maxAttempts: number | null;
  willRetry: boolean;
  retryAt: string | null;
  /** The stage the last error happened in. */
  failedStage: Stage | null;
  durationSeconds: number | null;
  result: Record<string, unknown> | null;
  /** When it was submitted (ISO): the server's time, else its first message's or this client's. */
  submittedAt: string | null;
  /** When it completed or failed for good (ISO); null while active. */
  finishedAt: string | null;
  /** A cancelled job: the user id who cancelled it; null = a backend (or not cancelled). */
  cancelledBy: string | null;
  /** Failed attempts that were retried, as far as this client saw them. */
  retries: number;
  /** Known from messages only: its URL and submit time are worth asking the server for. */
  needsDetails: boolean;
  /** `seq` of the last message applied to this job; 0 for a job known only from its submit answer. */
  seq: number;
  /** `ts` of the last message applied. */
  updatedAt: string | null;
  /** Insertion order, for a stable newest-first listing. */
  order: number;
}

export type JobMap = ReadonlyMap<string, JobView>;

export const ACTIVE_STATUSES: readonly JobStatus[] = ['queued', 'processing', 'retrying'];

export function isFinished(job: Pick<JobView, 'status'>): boolean {
  return job.status === 'completed' || job.status === 'failed';
}

function nextOrder(jobs: JobMap): number {
  let max = 0;
  for (const job of jobs.values()) max = Math.max(max, job.order);
  return max + 1;
}

function blankJob(jobId: string, order: number): JobView {
  return {
    jobId,
    status: 'queued',
    stage: null,
    progress: 0,
    message: null,
    videoTitle: null,
    videoUrl: null,
    videoId: null,
    estimatedCompletion: null,
    position: null,
    queueLength: null,
    estimatedWaitSeconds: null,
    estimatedStart: null,
    error: null,
    errorCode: null,
    attempt: null,
    maxAttempts: null,
    willRetry: false,
    retryAt: null,
    failedStage: null,
    durationSeconds: null,
    result: null,
    submittedAt: null,
    finishedAt: null,
    cancelledBy: null,
    retries: 0,
    needsDetails: false,
    seq: 0,
    updatedAt: null,
    order,
  };
}

function clampProgress(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : fallback;
}

/** A stored job view (possibly from an older version) with every field present. */
export function normalizeJob(job: JobView): JobView {
  return { ...blankJob(job.jobId, job.order ?? 0), ...job, retries: Number.isInteger(job.retries) ? job.retries : 0 };
}

/** The job after one message, ignoring the seq guard (see `applyMessage`). */
export function foldMessage(job: JobView, msg: SequencedMessage): JobView {
  const base = { ...job, seq: Math.max(job.seq, msg.seq), updatedAt: msg.ts ?? job.updatedAt, submittedAt: job.submittedAt ?? msg.ts ?? null };
  const url = (msg as { videoUrl?: unknown }).videoUrl;
  if (typeof url === 'string' && url) {
    base.videoUrl = url;
    base.videoId = youtubeVideoId(url) ?? base.videoId;
  }
  switch (msg.type) {
    case 'progress_update': {
      const done = msg.stage === 'completed';
      return {
        ...base,
        status: done ? 'completed' : 'processing',
        stage: msg.stage,
        progress: clampProgress(msg.progress, job.progress),
        message: msg.message ?? null,
        estimatedCompletion: msg.estimatedCompletion ?? null,
        finishedAt: done ? (msg.ts ?? null) : null,
        videoTitle: msg.videoTitle ?? job.videoTitle,
        position: null,
        queueLength: null,
        estimatedWaitSeconds: null,
        estimatedStart: null,
        // A new attempt has started: the previous error is no longer current.
        error: null,
        errorCode: null,
        willRetry: false,
        retryAt: null,
      };
    }
    case 'queue_update':
      return {
        ...base,
        status: job.status === 'retrying' ? 'retrying' : 'queued',
        position: msg.position ?? null,
        queueLength: msg.queueLength ?? null,
        estimatedWaitSeconds: msg.estimatedWaitSeconds ?? null,
        estimatedStart: msg.estimatedStart ?? null,
      };
    case 'processing_complete':
      return {
        ...base,
        status: 'completed',
        stage: 'completed',
        progress: 100,
        message: null,
        videoTitle: msg.videoTitle ?? job.videoTitle,
        durationSeconds: msg.durationSeconds ?? null,
        result: msg.result ?? null,
        finishedAt: msg.ts ?? null,
        estimatedCompletion: null,
        position: null,
        queueLength: null,
        estimatedWaitSeconds: null,
        estimatedStart: null,
        error: null,
        errorCode: null,
        willRetry: false,
        retryAt: null,
      };
    case 'processing_error':
      return {
        ...base,
        status: msg.willRetry ? 'retrying' : 'failed',
        error: msg.error,
        errorCode: msg.code ?? null,
        attempt: msg.attempt ?? job.attempt,
        maxAttempts: msg.maxAttempts ?? job.maxAttempts,
        willRetry: Boolean(msg.willRetry),
        retryAt: msg.retryAt ?? null,
        failedStage: job.stage,
        finishedAt: msg.willRetry ? null : (msg.ts ?? null),
        cancelledBy: msg.code === 'cancelled' || msg.error === 'cancelled' ? (msg.cancelledBy ?? null) : null,
        retries: msg.willRetry ? job.retries + 1 : job.retries,
        estimatedCompletion: null,
        position: null,
        queueLength: null,
        estimatedWaitSeconds: null,
        estimatedStart: null,
      };
    default:
      return job;
  }
}

/**
 * Folds one stored message into the map. Returns the same map when the message is not newer than
 * what the job already reflects (so callers can tell nothing changed).
 */
export function applyMessage(jobs: JobMap, msg: SequencedMessage): JobMap {
  const current = jobs.get(msg.jobId) ?? { ...blankJob(msg.jobId, nextOrder(jobs)), needsDetails: true };
  if (jobs.has(msg.jobId) && msg.seq <= current.seq) return jobs;
  const next = new Map(jobs);
  next.set(msg.jobId, foldMessage(current, msg));
  return next;
}

/** A job view from a `snapshot` entry (or `GET /api/jobs/{id}`), keeping what only the client knew. */
export function jobFromState(state: JobState, seq: number, previous: JobView | undefined, order: number): JobView {
  const job = previous ?? blankJob(state.jobId, order);
  const videoUrl = state.videoUrl ?? job.videoUrl;
  return {
    ...job,
    status: state.status,
    stage: state.stage ?? null,
    progress: clampProgress(state.progress, 0),
    videoTitle: state.videoTitle ?? job.videoTitle,
    videoUrl,
    videoId: youtubeVideoId(videoUrl) ?? job.videoId,
    estimatedCompletion: state.estimatedCompletion ?? null,
    position: state.position ?? null,
    error: state.error ?? null,
    errorCode: state.error === 'cancelled' ? 'cancelled' : state.status === 'failed' || state.status === 'retrying' ? job.errorCode : null,
    attempt: state.attempt ?? job.attempt,
    maxAttempts: state.maxAttempts ?? job.maxAttempts,
    willRetry: state.status === 'retrying',
    result: state.status === 'completed' ? (state.result ?? job.result) : null,
    submittedAt: state.submittedAt ?? job.submittedAt,
    finishedAt: state.status === 'completed' || state.status === 'failed' ? (state.finishedAt ?? job.finishedAt) : null,
    cancelledBy: state.cancelledBy !== undefined ? state.cancelledBy : job.cancelledBy,
    needsDetails: false,
    seq: Math.max(seq, 0),
  };
}

/**
 * Replaces the map with a snapshot's jobs. Jobs the snapshot does not list are kept only when they
 * are newer than it (same epoch) or known only from a submit answer that the server has not yet
 * reflected; with a new epoch everything else is dropped.
 */
export function applySnapshot(jobs: JobMap, snapshot: Snapshot, sameEpoch: boolean): JobMap {
  const next = new Map<string, JobView>();
  let order = nextOrder(jobs);
  for (const state of snapshot.jobs) {
    if (!state || typeof state.jobId !== 'string') continue;
    const previous = jobs.get(state.jobId);
    if (sameEpoch && previous && previous.seq > snapshot.lastSeq) {
      next.set(state.jobId, previous);
    } else {
      next.set(state.jobId, jobFromState(state, snapshot.lastSeq, previous, previous ? previous.order : order++));
    }
  }
  for (const [jobId, job] of jobs) {
    if (next.has(jobId)) continue;
    if (job.seq === 0 || (sameEpoch && job.seq > snapshot.lastSeq)) next.set(jobId, job);
  }
  return next;
}

/** Adds a job from the 202 answer of `POST /api/jobs` (superseded by any message about it). */
export function applySubmitted(jobs: JobMap, answer: SubmitResponse, videoUrl: string, title?: string): JobMap {
  const existing = jobs.get(answer.jobId);
  const next = new Map(jobs);
  if (existing) {
    next.set(answer.jobId, {
      ...existing,
      needsDetails: false,
      submittedAt: existing.submittedAt ?? new Date().toISOString(),
      videoUrl: existing.videoUrl ?? videoUrl,
      videoId: existing.videoId ?? youtubeVideoId(videoUrl),
      videoTitle: existing.videoTitle ?? title ?? null,
    });
    return next;
  }
  next.set(answer.jobId, {
    ...blankJob(answer.jobId, nextOrder(jobs)),
    videoUrl,
    videoId: youtubeVideoId(videoUrl),
    videoTitle: title ?? null,
    submittedAt: new Date().toISOString(),
    position: answer.position ?? null,
    estimatedWaitSeconds: answer.estimatedWaitSeconds ?? null,
  });
  return next;
}

/**
 * Fills what only `GET /api/jobs/{id}` told about a job known from messages: its URL, submit time,
 * title and result. Progress and status stay as the messages made them.
 */
export function applyDetails(jobs: JobMap, state: JobState): JobMap {
  const job = jobs.get(state.jobId);
  if (!job) return jobs;
  const videoUrl = job.videoUrl ?? state.videoUrl ?? null;
  const next = new Map(jobs);
  next.set(job.jobId, {
    ...job,
    needsDetails: false,
    videoUrl,
    videoId: job.videoId ?? youtubeVideoId(videoUrl),
    videoTitle: job.videoTitle ?? state.videoTitle ?? null,
    submittedAt: state.submittedAt ?? job.submittedAt,
    result: job.result ?? (job.status === 'completed' ? (state.result ?? null) : null),
  });
  return next;
}

/** Without the finished jobs (what `POST /api/jobs/clear-finished` hid). */
export function dropFinished(jobs: JobMap): JobMap {
  const next = new Map<string, JobView>();
  for (const [id, job] of jobs) if (!isFinished(job)) next.set(id, job);
  return next.size === jobs.size ? jobs : next;
}

/** Newest first. */
export function sortJobs(jobs: JobMap): JobView[] {
  return [...jobs.values()].sort((a, b) => b.order - a.order);
}

/** Keeps at most `max` jobs: every active one, then the newest finished ones. */
export function pruneJobs(jobs: JobMap, max: number): JobMap {
  if (jobs.size <= max) return jobs;
  const sorted = sortJobs(jobs);
  const keep = new Map<string, JobView>();
  for (const job of sorted) if (!isFinished(job)) keep.set(job.jobId, job);
  for (const job of sorted) {
    if (keep.size >= max) break;
    if (isFinished(job)) keep.set(job.jobId, job);
  }
  return keep;
}

/** A label naming the job for people and tests: its title and/or video id, else its id. */
export function jobLabel(job: Pick<JobView, 'videoTitle' | 'videoId' | 'jobId'>): string {
  if (job.videoTitle && job.videoId && !job.videoTitle.includes(job.videoId)) {
    return `${job.videoTitle} (${job.videoId})`;
  }
  return job.videoTitle ?? job.videoId ?? `Job ${job.jobId}`;
}
