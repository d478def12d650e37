/**
 * The replay window: between a (re)connect or a `resume` and its `replay_complete`, seqs are not
 * live, so a gap among them is compaction, not loss (CONTRACT.md section 3). One resume at a time.
 */
import { Timer } from './timer.js';

export class ReplayWindow {
  private pendingValue = false;
  private resumingValue = false;
  private readonly timer = new Timer();

  /** `timeoutMs`: how long to wait for `replay_complete` before treating what comes as live again. */
  constructor(private readonly timeoutMs: number) {}

  /** A replay is under way: what arrives now is not live. */
  get pending(): boolean {
    return this.pendingValue;
  }
  /** A `resume` was sent and is not answered yet. */
  get resuming(): boolean {
    return this.resumingValue;
  }

  /** A connection attempt: on a new connection a replay precedes any live message. */
  connecting(): void {
    this.pendingValue = true;
    this.resumingValue = false;
    this.arm();
  }

  /** A `resume` was sent: its replay follows. */
  resumed(): void {
    this.resumingValue = true;
    this.pendingValue = true;
    this.arm();
  }

  /** The connection attempt failed: no replay comes on it. */
  attemptFailed(): void {
    this.pendingValue = false;
  }

  /** `replay_complete`, a disconnect, or stop(). */
  close(): void {
    this.pendingValue = false;
    this.resumingValue = false;
    this.timer.clear();
  }

  private arm(): void {
    // No replay_complete in time: treat what came as live from now on, so gaps are noticed again.
    this.timer.set(this.timeoutMs, () => this.close());
  }
}
