/**
 * The HTTP polling fallback (CONTRACT.md section 4): once started (at once, or when `arm`ed and
 * still not stopped after a while), `GET status-all?since=&epoch=` now and then every interval, one
 * request at a time; `stop()` aborts the request in flight. What an answer means for the cursor
 * and the jobs is the host's business.
 */
import type { SeqCursor } from './cursor.js';
import { isSequencedMessage, isStatusAllResponse, type SequencedMessage, type StatusAllResponse } from './messages.js';
import { Timer } from './timer.js';

export interface PollerHost {
  /** Whether polling may start now (the client runs and Socket.IO is not connected). */
  mayStart(): boolean;
  /** The user whose stream is polled; no poll without one. */
  userId(): string | null;
  /** The cursor to poll from (both known: an incremental poll). */
  cursor(): { lastSeq: number | null; epoch: string | null };
  request(path: string, signal: AbortSignal): Promise<unknown>;
  /** A well-formed answer; `incremental` when it was asked with `since`. */
  onAnswer(body: StatusAllResponse, incremental: boolean): void;
  /** A poll failed (not counting an abort by `stop()`). */
  onError(error: unknown): void;
  /** A poll finished, answered or not; the next one is scheduled right after. */
  onPolled(ok: boolean): void;
}

/** `/api/processing/status-all/{userId}`, with `?since=&epoch=` when the cursor is known. */
export function statusAllPath(userId: string, lastSeq: number | null, epoch: string | null): string {
  const params = new URLSearchParams();
  if (lastSeq !== null && epoch !== null) {
    params.set('since', String(lastSeq));
    params.set('epoch', epoch);
  }
  const query = params.toString() ? `?${params.toString()}` : '';
  return `/api/processing/status-all/${encodeURIComponent(userId)}${query}`;
}

export interface PollerOptions {
  /** `false`: never polls. */
  enabled: boolean;
  /** Between the end of one poll and the next (ms). */
  intervalMs: number;
  /** From `arm()` to the start of polling (ms). */
  startAfterMs: number;
}

export class Poller {
  private activeValue = false;
  private lastOkValue = false;
  private abort: AbortController | null = null;
  private readonly timer = new Timer();
  private readonly startTimer = new Timer();

  constructor(
    private readonly host: PollerHost,
    private readonly options: PollerOptions,
  ) {}

  get active(): boolean {
    return this.activeValue;
  }
  /** Whether the last finished poll was answered (false until one was). */
  get lastOk(): boolean {
    return this.lastOkValue;
  }

  /** Starts after `startAfterMs` unless stopped before; a pending start keeps its time. */
  arm(): void {
    if (!this.options.enabled) return;
    this.startTimer.ensure(this.options.startAfterMs, () => this.start());
  }

  /** Polls at once, then every interval (idempotent; only when enabled and the host agrees). */
  start(): void {
    if (!this.options.enabled || this.activeValue || !this.host.mayStart()) return;
    this.activeValue = true;
    this.lastOkValue = false;
    this.soon(0);
  }

  /** Stops polling and a pending start. */
  stop(): void {
    this.startTimer.clear();
    this.activeValue = false;
    this.timer.clear();
    this.abort?.abort();
    this.abort = null;
  }

  /** Skips the rest of the interval. */
  wake(): void {
    if (this.activeValue) this.soon(0);
  }

  private soon(delay: number): void {
    this.timer.set(delay, () => void this.pollOnce());
  }

  private async pollOnce(): Promise<void> {
    const userId = this.host.userId();
    if (!this.activeValue || !userId || this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    let ok = false;
    try {
      const { lastSeq, epoch } = this.host.cursor();
      const body = await this.host.request(statusAllPath(userId, lastSeq, epoch), abort.signal);
      if (abort.signal.aborted) return;
      if (!isStatusAllResponse(body)) throw new Error('malformed status-all answer');
      this.host.onAnswer(body, lastSeq !== null && epoch !== null);
      ok = true;
    } catch (error) {
      if (abort.signal.aborted) return;
      this.host.onError(error);
    } finally {
      if (this.abort === abort) this.abort = null;
    }
    if (!this.activeValue) return;
    this.lastOkValue = ok;
    this.host.onPolled(ok);
    this.soon(this.options.intervalMs);
  }
}

export interface StatusAllFold {
  /** A new stream: what was shown belongs to one that no longer exists. */
  reset(): void;
  /** A latest-per-job message: state to show, not news to announce. */
  history(msg: SequencedMessage): void;
  /** An incremental message, through the same seq rules as the socket's. */
  sequenced(msg: SequencedMessage): void;
}

/** What one status-all answer means for the cursor and the jobs, in seq order. */
export function foldStatusAll(body: StatusAllResponse, incremental: boolean, seqs: SeqCursor, on: StatusAllFold): void {
  const otherEpoch = seqs.isOtherEpoch(body.epoch);
  const messages = body.messages.filter((m): m is SequencedMessage => isSequencedMessage(m)).sort((a, b) => a.seq - b.seq);
  if (otherEpoch) on.reset();
  if (!incremental || otherEpoch || body.recovered === false) {
    seqs.rewind(otherEpoch);
    for (const msg of messages) on.history(msg);
  } else {
    for (const msg of messages) on.sequenced(msg);
  }
  const top = typeof body.lastSeq === 'number' ? body.lastSeq : (messages.at(-1)?.seq ?? null);
  seqs.caughtUp(top, typeof body.epoch === 'string' ? body.epoch : null);
}
