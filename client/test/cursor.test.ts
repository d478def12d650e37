/**
 * SeqCursor, the pure seq bookkeeping: no socket, no timers.
 */
import { describe, expect, it } from 'vitest';
import { SeqCursor, type SeqOrigin } from '../src/lib/cursor';

const LIVE: SeqOrigin = { socket: true, live: true };
const REPLAY: SeqOrigin = { socket: true, live: false };
const HTTP: SeqOrigin = { socket: false, live: false };

/** Classifies and, unless dropped, records `seqs` in order, as the client does; returns the verdicts. */
function feed(cursor: SeqCursor, seqs: number[], origin: SeqOrigin = LIVE): string[] {
  return seqs.map((seq) => {
    const verdict = cursor.classify(seq, origin);
    if (verdict === 'history') cursor.recordHistory(seq);
    else if (verdict !== 'duplicate') cursor.record(seq);
    return verdict;
  });
}

describe('SeqCursor watermark', () => {
  it('starts empty and takes the first seq it sees as the watermark', () => {
    const cursor = new SeqCursor();
    expect(cursor.lastSeq).toBeNull();
    expect(feed(cursor, [7])).toEqual(['new']);
    expect(cursor.lastSeq).toBe(7);
  });

  it('advances over contiguous seqs', () => {
    const cursor = new SeqCursor(3, 'e');
    expect(feed(cursor, [4, 5, 6])).toEqual(['new', 'new', 'new']);
    expect(cursor.lastSeq).toBe(6);
    expect(cursor.hasHoles).toBe(false);
  });

  it('stays below a hole while seqs above it arrive, and jumps over them once it is filled', () => {
    const cursor = new SeqCursor(2, 'e');
    feed(cursor, [5, 4], REPLAY);
    expect(cursor.lastSeq).toBe(2);
    expect(cursor.pending).toEqual([4, 5]);
    expect(cursor.hasHoles).toBe(true);
    feed(cursor, [3], REPLAY);
    expect(cursor.lastSeq).toBe(5);
    expect(cursor.pending).toEqual([]);
    expect(cursor.hasHoles).toBe(false);
  });

  it('drops a seq at or below the watermark and one already processed above a hole', () => {
    const cursor = new SeqCursor(5, 'e');
    expect(feed(cursor, [5, 3, 8, 8], REPLAY)).toEqual(['duplicate', 'duplicate', 'new', 'duplicate']);
    expect(cursor.lastSeq).toBe(5);
    expect(cursor.pending).toEqual([8]);
  });

  it('classify changes nothing', () => {
    const cursor = new SeqCursor(1, 'e');
    expect(cursor.classify(2, LIVE)).toBe('new');
    expect(cursor.classify(2, LIVE)).toBe('new');
    expect(cursor.lastSeq).toBe(1);
  });
});

describe('SeqCursor gaps', () => {
  it('flags a live seq above lastSeq + 1 as a gap', () => {
    const cursor = new SeqCursor(2, 'e');
    expect(cursor.classify(3, LIVE)).toBe('new');
    expect(cursor.classify(5, LIVE)).toBe('gap');
  });

  it('takes a hole inside a replay or an HTTP answer for compaction, not a gap', () => {
    const cursor = new SeqCursor(2, 'e');
    expect(cursor.classify(9, REPLAY)).toBe('new');
    expect(cursor.classify(9, HTTP)).toBe('new');
  });

  it('sees no gap before it has a watermark', () => {
    expect(new SeqCursor().classify(40, LIVE)).toBe('new');
  });

  it('keeps a gap seq above the hole until the hole fills', () => {
    const cursor = new SeqCursor(2, 'e');
    expect(feed(cursor, [5])).toEqual(['gap']);
    expect(cursor.lastSeq).toBe(2);
    expect(feed(cursor, [3, 4], REPLAY)).toEqual(['new', 'new']);
    expect(cursor.lastSeq).toBe(5);
  });
});

describe('SeqCursor snapshot and history', () => {
  it('moves the watermark to the snapshot and treats queued socket seqs at or below it as history, once', () => {
    const cursor = new SeqCursor();
    cursor.snapshot(6, 'e', cursor.continues(6, 'e'));
    expect(cursor.lastSeq).toBe(6);
    expect(cursor.epoch).toBe('e');
    expect(feed(cursor, [3, 6, 3, 7], REPLAY)).toEqual(['history', 'history', 'duplicate', 'new']);
    expect(cursor.lastSeq).toBe(7);
  });

  it('does not count an HTTP seq below the snapshot as history', () => {
    const cursor = new SeqCursor();
    cursor.snapshot(6, 'e', false);
    expect(cursor.classify(4, HTTP)).toBe('duplicate');
  });

  it('closes the history window at replay_complete', () => {
    const cursor = new SeqCursor();
    cursor.snapshot(6, 'e', false);
    cursor.replayComplete(7, 'e');
    expect(cursor.classify(3, REPLAY)).toBe('duplicate');
  });

  it('a new snapshot starts a fresh history window', () => {
    const cursor = new SeqCursor();
    cursor.snapshot(6, 'e', false);
    feed(cursor, [3], REPLAY);
    cursor.snapshot(6, 'e', true);
    expect(cursor.classify(3, REPLAY)).toBe('history');
  });

  it('continues the stream only for the same epoch and not behind the watermark', () => {
    const cursor = new SeqCursor(10, 'e');
    expect(cursor.continues(10, 'e')).toBe(true);
    expect(cursor.continues(12, 'e')).toBe(true);
    expect(cursor.continues(9, 'e')).toBe(false);
    expect(cursor.continues(10, 'other')).toBe(false);
    expect(new SeqCursor(null, 'e').continues(0, 'e')).toBe(true);
  });

  it('keeps seqs processed above a continuing snapshot and advances over them', () => {
    const cursor = new SeqCursor(2, 'e');
    feed(cursor, [5, 6, 9], REPLAY);
    cursor.snapshot(4, 'e', true);
    expect(cursor.lastSeq).toBe(6);
    expect(cursor.pending).toEqual([9]);
  });

  it('prunes seqs the snapshot passed', () => {
    const cursor = new SeqCursor(2, 'e');
    feed(cursor, [5, 9], REPLAY);
    cursor.snapshot(7, 'e', true);
    expect(cursor.lastSeq).toBe(7);
    expect(cursor.pending).toEqual([9]);
  });

  it('drops everything above when the snapshot does not continue the stream', () => {
    const cursor = new SeqCursor(2, 'e');
    feed(cursor, [5, 9], REPLAY);
    cursor.snapshot(4, 'e', false);
    expect(cursor.lastSeq).toBe(4);
    expect(cursor.pending).toEqual([]);
    expect(cursor.classify(5, REPLAY)).toBe('new');
  });
});

describe('SeqCursor replay_complete', () => {
  it('raises the watermark to toSeq (compacted seqs count as sent), pruning and advancing', () => {
    const cursor = new SeqCursor(3, 'e');
    feed(cursor, [5, 9, 10], REPLAY);
    cursor.replayComplete(8, 'e');
    expect(cursor.lastSeq).toBe(10);
    expect(cursor.pending).toEqual([]);
  });

  it('never moves the watermark back', () => {
    const cursor = new SeqCursor(12, 'e');
    cursor.replayComplete(8, 'e');
    expect(cursor.lastSeq).toBe(12);
    cursor.replayComplete(null, null);
    expect(cursor.lastSeq).toBe(12);
  });

  it('leaves a hole above toSeq open', () => {
    const cursor = new SeqCursor(3, 'e');
    feed(cursor, [9], REPLAY);
    cursor.replayComplete(6, 'e');
    expect(cursor.lastSeq).toBe(6);
    expect(cursor.hasHoles).toBe(true);
  });

  it('with another epoch forgets the old cursor before taking toSeq', () => {
    const cursor = new SeqCursor(50, 'old');
    feed(cursor, [55], REPLAY);
    cursor.replayComplete(3, 'new');
    expect(cursor.epoch).toBe('new');
    expect(cursor.lastSeq).toBe(3);
    expect(cursor.pending).toEqual([]);
  });

  it('with another epoch and no toSeq leaves no watermark', () => {
    const cursor = new SeqCursor(50, 'old');
    cursor.replayComplete(null, 'new');
    expect(cursor.lastSeq).toBeNull();
    expect(cursor.epoch).toBe('new');
  });
});

describe('SeqCursor status-all answers', () => {
  it('tells another epoch apart from an unknown one', () => {
    const cursor = new SeqCursor(5, 'e');
    expect(cursor.isOtherEpoch('f')).toBe(true);
    expect(cursor.isOtherEpoch('e')).toBe(false);
    expect(cursor.isOtherEpoch(null)).toBe(false);
    expect(cursor.isOtherEpoch(undefined)).toBe(false);
    expect(new SeqCursor().isOtherEpoch('f')).toBe(false);
  });

  it('rewinds to no watermark, keeping the epoch, then catches up to the answer', () => {
    const cursor = new SeqCursor(5, 'e');
    feed(cursor, [9], REPLAY);
    cursor.rewind(false);
    expect(cursor.lastSeq).toBeNull();
    expect(cursor.pending).toEqual([]);
    expect(cursor.epoch).toBe('e');
    cursor.caughtUp(12, 'f');
    expect(cursor.lastSeq).toBe(12);
    expect(cursor.epoch).toBe('f');
  });

  it('catching up without an epoch keeps the known one', () => {
    const cursor = new SeqCursor(5, 'e');
    cursor.caughtUp(7, null);
    expect([cursor.lastSeq, cursor.epoch]).toEqual([7, 'e']);
  });
});

describe('SeqCursor acks and reset', () => {
  it('has an ack due only when the watermark moved past the last ack', () => {
    const cursor = new SeqCursor();
    expect(cursor.ackDue).toBeNull();
    feed(cursor, [1, 2]);
    expect(cursor.ackDue).toBe(2);
    cursor.acked(2);
    expect(cursor.ackDue).toBeNull();
    feed(cursor, [4]);
    expect(cursor.ackDue).toBeNull(); // 3 is missing: the watermark did not move
    feed(cursor, [3], REPLAY);
    expect(cursor.ackDue).toBe(4);
  });

  it('acks a lower seq again after the epoch changes', () => {
    for (const change of [
      (c: SeqCursor) => c.snapshot(1, 'new', false),
      (c: SeqCursor) => c.replayComplete(1, 'new'),
      (c: SeqCursor) => {
        c.rewind(true);
        c.caughtUp(1, 'new');
      },
    ]) {
      const cursor = new SeqCursor(9, 'old');
      cursor.acked(9);
      change(cursor);
      expect(cursor.ackDue).toBe(1);
    }
  });

  it('keeps the last ack across a rewind in the same epoch', () => {
    const cursor = new SeqCursor(9, 'e');
    cursor.acked(9);
    cursor.rewind(false);
    cursor.caughtUp(9, 'e');
    expect(cursor.ackDue).toBeNull();
  });

  it('a snapshot in the same epoch keeps the last ack', () => {
    const cursor = new SeqCursor(9, 'e');
    cursor.acked(9);
    cursor.snapshot(9, 'e', true);
    expect(cursor.ackDue).toBeNull();
  });

  it('clear() forgets watermark, epoch, seqs above and acks', () => {
    const cursor = new SeqCursor(4, 'e');
    feed(cursor, [6], REPLAY);
    cursor.acked(4);
    cursor.clear();
    expect(cursor.lastSeq).toBeNull();
    expect(cursor.epoch).toBeNull();
    expect(cursor.pending).toEqual([]);
    feed(cursor, [1]);
    expect(cursor.ackDue).toBe(1);
  });

  it('restore() takes a stored cursor', () => {
    const cursor = new SeqCursor();
    cursor.restore(7, 'e');
    expect(cursor.lastSeq).toBe(7);
    expect(cursor.epoch).toBe('e');
    expect(cursor.classify(7, LIVE)).toBe('duplicate');
    expect(cursor.classify(9, LIVE)).toBe('gap');
  });
});
