/** What a ProgressClient tells its listeners: connection states, message metadata, errors. */
import type { JobView } from './jobs.js';
import type {
  ProcessingComplete,
  ProcessingError,
  ProgressUpdate,
  QueueUpdate,
  ReplayComplete,
  SequencedMessage,
  Snapshot,
} from './messages.js';

/**
 * - `connected`: Socket.IO is connected (WebSocket or its own long-polling).
 * - `reconnecting`: connecting or reconnecting, nothing else running yet.
 * - `polling`: Socket.IO cannot connect; the HTTP fallback answers.
 * - `offline`: not started, stopped, or neither Socket.IO nor the HTTP fallback answers.
 */
export type ConnectionState = 'connected' | 'reconnecting' | 'polling' | 'offline';

/**
 * Why the client cannot get in, when it is something a person can act on:
 * - `unauthorized`: the server keeps refusing the tokens `getToken()` gives (sign in again);
 * - `too_many_connections`: this user has too many connections open (close a tab).
 * Cleared once a connection succeeds.
 */
export type ConnectionProblem = 'unauthorized' | 'too_many_connections';

export interface MessageMeta {
  /** How the message arrived. */
  via: 'socket' | 'http';
  /**
   * True for a message that happened before the state the client already shows: the offline queue
   * after a `snapshot` (seq <= snapshot.lastSeq) and the latest-per-job list of a non-incremental poll.
   * Apps should not notify about it again.
   */
  history: boolean;
  /** True when it came in a replay (before `replay_complete`) or from the HTTP fallback. */
  replayed: boolean;
}

export interface ClientErrorInfo {
  /** Where it happened. */
  source: 'connect' | 'poll' | 'token' | 'message';
  /** `unauthorized`, `too_many_connections`, a transport error text, an HTTP status... */
  message: string;
  cause?: unknown;
}

/** Events a ProgressClient emits; `on(event, listener)` returns the unsubscribe function. */
export interface ProgressClientEvents {
  progress_update: [ProgressUpdate, MessageMeta];
  queue_update: [QueueUpdate, MessageMeta];
  processing_complete: [ProcessingComplete, MessageMeta];
  processing_error: [ProcessingError, MessageMeta];
  snapshot: [Snapshot];
  replay_complete: [ReplayComplete];
  /** Every stored message, whatever its type, once. */
  message: [SequencedMessage, MessageMeta];
  /** The connection state changed. */
  state: [ConnectionState];
  /** A refusal a person can act on started or ended (null). */
  problem: [ConnectionProblem | null];
  /** The job views changed (newest first). */
  jobs: [readonly JobView[]];
  /** Something went wrong that the client handles itself (for logs). */
  error: [ClientErrorInfo];
}

/** Counters for diagnostics and tests. */
export interface ClientStats {
  duplicatesDropped: number;
  resumesSent: number;
  acksSent: number;
  polls: number;
}
