/**
 * The seq cursor: which messages of one user's stream were processed (CONTRACT.md section 3).
 *
 * Pure bookkeeping, no timers, sockets or I/O. It keeps
 * - `lastSeq`, a contiguous watermark: every seq <= lastSeq was processed or compacted away,
 *   meaningful only with its `epoch`;
 * - the seqs processed above the watermark (a hole is below them), so nothing is taken twice and
 *   the watermark moves up as soon as the hole fills;
 * - the history window after a snapshot: until `replay_complete`, queued socket messages at or below
 *   `snapshot.lastSeq` are history the snapshot already shows;
 * - the last seq acked, so an ack is only due when the watermark moved.
 *
 * The client asks `classify(seq)` what a message is, delivers it, then `record`s it, and tells the
 * cursor what the server said about the stream (`snapshot`, `replayComplete`, a status-all answer).
 */

/** What an incoming seq is. */
export type SeqVerdict =
  /** At or below the watermark, above it but already processed, or a repeated history seq: drop it. */
  | 'duplicate'
  /** Inside the history window after a snapshot, first time: the snapshot already reflects it. */
  | 'history'
  /** Not processed yet. */
  | 'new'
  /** Not processed yet, and live with seqs missing below it: ask for a `resume`. */
  | 'gap';

export interface SeqOrigin {
  /** It came over Socket.IO (only socket messages can be the offline queue after a snapshot). */
  socket: boolean;
  /** It came over Socket.IO outside a replay: only then is a hole below it a loss, not compaction. */
  live: boolean;
}

export class SeqCursor {
  private lastSeqValue: number | null;
  private epochValue: string | null;
  /** seqs processed above the watermark (a gap below them). */
  private readonly above = new Set<number>();
  /** After a snapshot, until replay_complete: queued messages at or below it are history. */
  private historyBoundary: number | null = null;
  private readonly historySeen = new Set<number>();
  private lastAcked = -1;

  constructor(lastSeq: number | null = null, epoch: string | null = null) {
    this.lastSeqValue = lastSeq;
    this.epochValue = epoch;
  }

  get lastSeq(): number | null {
    return this.lastSeqValue;
  }
  get epoch(): string | null {
    return this.epochValue;
  }
  /** True while seqs were processed above a hole (that a resume should fill). */
  get hasHoles(): boolean {
    return this.above.size > 0;
  }
  /** The seqs processed above the watermark, ascending. */
  get pending(): number[] {
    return [...this.above].sort((a, b) => a - b);
  }
  /** The seq an `ack` should carry now: the watermark, when it moved since the last ack. */
  get ackDue(): number | null {
    return this.lastSeqValue !== null && this.lastSeqValue > this.lastAcked ? this.lastSeqValue : null;
  }

  /** Takes a stored cursor (a reload); what is above and the acks are left as they are. */
  restore(lastSeq: number | null, epoch: string | null): void {
    this.lastSeqValue = lastSeq;
    this.epochValue = epoch;
  }

  /** Forgets everything but the history window: no lastSeq, no epoch, nothing acked. */
  clear(): void {
    this.lastSeqValue = null;
    this.epochValue = null;
    this.above.clear();
    this.lastAcked = -1;
  }

  acked(seq: number): void {
    this.lastAcked = seq;
  }

  /** What `seq` is; changes nothing. */
  classify(seq: number, origin: SeqOrigin): SeqVerdict {
    if (origin.socket && this.historyBoundary !== null && seq <= this.historyBoundary) {
      return this.historySeen.has(seq) ? 'duplicate' : 'history';
    }
    if ((this.lastSeqValue !== null && seq <= this.lastSeqValue) || this.above.has(seq)) return 'duplicate';
    return origin.live && this.lastSeqValue !== null && seq > this.lastSeqValue + 1 ? 'gap' : 'new';
  }

  /** A history seq was delivered: its repeat within the same window is a duplicate. */
  recordHistory(seq: number): void {
    this.historySeen.add(seq);
  }

  /** A new seq was processed: it sets the first watermark, or joins those above it. */
  record(seq: number): void {
    if (this.lastSeqValue === null) this.lastSeqValue = seq;
    else this.above.add(seq);
    this.settle();
  }

  /**
   * Whether a snapshot at (lastSeq, epoch) continues this stream and is not behind the watermark;
   * otherwise (another epoch, or a server that lost messages) it is the whole truth.
   */
  continues(lastSeq: number, epoch: string): boolean {
    return this.epochValue === epoch && (this.lastSeqValue === null || lastSeq >= this.lastSeqValue);
  }

  /**
   * A snapshot: the watermark moves to its lastSeq (what was processed above it is kept only when
   * the snapshot `continues` the stream), and its history window opens until `replayComplete`.
   */
  snapshot(lastSeq: number, epoch: string, continued: boolean): void {
    if (this.epochValue !== epoch) this.lastAcked = -1;
    this.epochValue = epoch;
    this.lastSeqValue = lastSeq;
    if (!continued) this.above.clear();
    this.settle();
    this.historyBoundary = lastSeq;
    this.historySeen.clear();
  }

  /**
   * A replay_complete: another epoch (with no snapshot before it) makes the cursor meaningless;
   * every seq up to `toSeq` was sent or compacted away; the history window closes.
   */
  replayComplete(toSeq: number | null, epoch: string | null): void {
    if (epoch !== null && epoch !== this.epochValue) {
      this.epochValue = epoch;
      this.rewind(true);
    }
    this.raiseTo(toSeq);
    this.closeHistory();
  }

  /** True when `epoch` names a stream other than the known one. */
  isOtherEpoch(epoch: string | null | undefined): boolean {
    return epoch != null && this.epochValue !== null && epoch !== this.epochValue;
  }

  /** Starts the stream over (latest-per-job state follows): no watermark, nothing above it. */
  rewind(forgetAcks: boolean): void {
    this.lastSeqValue = null;
    this.above.clear();
    if (forgetAcks) this.lastAcked = -1;
  }

  /** A status-all answer: its epoch when it names one, and every seq up to `top` was covered. */
  caughtUp(top: number | null, epoch: string | null): void {
    if (epoch !== null) this.epochValue = epoch;
    this.raiseTo(top);
  }

  closeHistory(): void {
    this.historyBoundary = null;
    this.historySeen.clear();
  }

  private raiseTo(seq: number | null): void {
    if (seq !== null && (this.lastSeqValue === null || seq > this.lastSeqValue)) this.lastSeqValue = seq;
    this.settle();
  }

  /** Prunes what the watermark passed, then advances it over the contiguous seqs above it. */
  private settle(): void {
    if (this.lastSeqValue === null) return;
    for (const seq of this.above) if (seq <= this.lastSeqValue) this.above.delete(seq);
    while (this.above.has(this.lastSeqValue + 1)) {
      this.lastSeqValue++;
      this.above.delete(this.lastSeqValue);
    }
  }
}
