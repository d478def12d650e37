/**
 * The wire contract's server-to-client messages (CONTRACT.md section 3), typed.
 *
 * Names and fields are fixed by the contract; every payload also carries its `type`,
 * so the Socket.IO events and the HTTP fallback (`status-all`) share these shapes.
 */

/** The seven pipeline stages, in order. */
export const PIPELINE_STAGES = [
  'url_validation',
  'metadata_extraction',
  'transcript_generation',
  'content_analysis',
  'mindmap_generation',
  'data_storage',
  'indexing',
] as const;

export type PipelineStage = (typeof PIPELINE_STAGES)[number];
/** A `progress_update` stage: one of the seven, or `completed`. */
export type Stage = PipelineStage | 'completed';

export const JOB_STATUSES = ['queued', 'processing', 'retrying', 'completed', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Fields every stored (sequenced) message has. */
export interface SequencedBase {
  /** Per-user integer, +1 for every stored message to that user. */
  seq: number;
  jobId: string;
  /** ISO-8601 UTC. */
  ts: string;
}

export interface ProgressUpdate extends SequencedBase {
  type: 'progress_update';
  stage: Stage;
  /** 0-100, never decreasing within one attempt. */
  progress: number;
  message: string | null;
  estimatedCompletion: string | null;
  videoTitle: string | null;
}

export interface QueueUpdate extends SequencedBase {
  type: 'queue_update';
  /** 1 = next. */
  position: number | null;
  queueLength: number | null;
  estimatedWaitSeconds: number | null;
  estimatedStart: string | null;
}

export interface ProcessingComplete extends SequencedBase {
  type: 'processing_complete';
  videoTitle: string | null;
  durationSeconds: number | null;
  result: Record<string, unknown> | null;
}

export interface ProcessingError extends SequencedBase {
  type: 'processing_error';
  error: string;
  code: string | null;
  attempt: number | null;
  maxAttempts: number | null;
  willRetry: boolean;
  retryAt: string | null;
  /** On a cancel (`code: "cancelled"`): the user id who cancelled it; null = a backend. */
  cancelledBy?: string | null;
}

/** A job's state as in `snapshot.jobs` and `GET /api/jobs/{jobId}`. */
export interface JobState {
  jobId: string;
  status: JobStatus;
  stage: Stage | null;
  progress: number;
  videoTitle: string | null;
  estimatedCompletion: string | null;
  position: number | null;
  error: string | null;
  /** Only on `GET /api/jobs/{jobId}`. */
  attempt?: number | null;
  maxAttempts?: number | null;
  /** Completed jobs only: what the job produced (e.g. `{url, outline, mindmapId}`). */
  result?: Record<string, unknown> | null;
  videoUrl?: string | null;
  /** ISO. */
  submittedAt?: string | null;
  /** ISO, or null while the job is active. */
  finishedAt?: string | null;
  /** Cancelled jobs: the user id who cancelled it; null = a backend. */
  cancelledBy?: string | null;
}

export interface Snapshot {
  type: 'snapshot';
  jobs: JobState[];
  /** The `seq` the job states reflect. */
  lastSeq: number;
  epoch: string;
  ts?: string;
}

export interface ReplayComplete {
  type: 'replay_complete';
  fromSeq: number | null;
  toSeq: number | null;
  epoch: string;
  /** false: messages after lastSeq could not be replayed; a snapshot was sent. */
  recovered: boolean;
  /** How many superseded messages were compacted away. */
  omitted: number;
  ts?: string;
}

/** A stored message: it has a `seq` and concerns one job. */
export type SequencedMessage = ProgressUpdate | QueueUpdate | ProcessingComplete | ProcessingError;
export type ServerMessage = SequencedMessage | Snapshot | ReplayComplete;
export type SequencedType = SequencedMessage['type'];
export type MessageType = ServerMessage['type'];

export const SEQUENCED_TYPES: readonly SequencedType[] = [
  'progress_update',
  'queue_update',
  'processing_complete',
  'processing_error',
];
export const MESSAGE_TYPES: readonly MessageType[] = [...SEQUENCED_TYPES, 'snapshot', 'replay_complete'];

/** The answer of `GET /api/processing/status-all/{userId}`. */
export interface StatusAllResponse {
  messages: SequencedMessage[];
  lastSeq: number | null;
  epoch: string | null;
  omitted: number;
  recovered: boolean;
}

/** `POST /api/jobs` answer (202). */
export interface SubmitResponse {
  jobId: string;
  status: 'queued';
  position: number | null;
  estimatedWaitSeconds: number | null;
}

/** `POST /api/jobs/clear-finished` answer. */
export interface ClearFinishedResponse {
  cleared: number;
}

/** The socket events the client sends. */
export interface AckPayload {
  seq: number;
}
export interface ResumePayload {
  lastSeq: number;
  epoch: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `value` looks like a stored message (a known type, an integer seq and a jobId). */
export function isSequencedMessage(value: unknown): value is SequencedMessage {
  return (
    isRecord(value) &&
    typeof value.type === 'string' &&
    (SEQUENCED_TYPES as readonly string[]).includes(value.type) &&
    Number.isInteger(value.seq) &&
    typeof value.jobId === 'string'
  );
}

export function isSnapshot(value: unknown): value is Snapshot {
  return (
    isRecord(value) &&
    value.type === 'snapshot' &&
    Array.isArray(value.jobs) &&
    typeof value.lastSeq === 'number' &&
    typeof value.epoch === 'string'
  );
}

export function isReplayComplete(value: unknown): value is ReplayComplete {
  return isRecord(value) && value.type === 'replay_complete';
}

export function isStatusAllResponse(value: unknown): value is StatusAllResponse {
  return isRecord(value) && Array.isArray(value.messages);
}
