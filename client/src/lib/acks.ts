/** Acks what was processed: `ack {seq: watermark}` once per debounce window, only when it moved. */
import type { SeqCursor } from './cursor.js';
import type { AckPayload } from './messages.js';
import { Timer } from './timer.js';

export class AckScheduler {
  private readonly timer = new Timer();

  /** `send` emits the ack and returns true, or returns false when it cannot (not connected). */
  constructor(
    private readonly delayMs: number,
    private readonly cursor: SeqCursor,
    private readonly send: (payload: AckPayload) => boolean,
  ) {}

  /** Acks after `delayMs`; a window already open takes this request along. */
  schedule(): void {
    this.timer.ensure(this.delayMs, () => this.flush());
  }

  cancel(): void {
    this.timer.clear();
  }

  private flush(): void {
    const seq = this.cursor.ackDue;
    if (seq === null || !this.send({ seq })) return;
    this.cursor.acked(seq);
  }
}
