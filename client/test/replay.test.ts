/**
 * ReplayWindow (whether seqs arriving now are live) and AckScheduler (debounced acks), with fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AckScheduler } from '../src/lib/acks';
import { SeqCursor } from '../src/lib/cursor';
import type { AckPayload } from '../src/lib/messages';
import { ReplayWindow } from '../src/lib/replay';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ReplayWindow', () => {
  it('is pending from a connection attempt until replay_complete', () => {
    const replay = new ReplayWindow(15000);
    expect(replay.pending).toBe(false);
    replay.connecting();
    expect(replay.pending).toBe(true);
    expect(replay.resuming).toBe(false);
    replay.close();
    expect(replay.pending).toBe(false);
  });

  it('marks a resume as sent until its replay completes', () => {
    const replay = new ReplayWindow(15000);
    replay.resumed();
    expect([replay.pending, replay.resuming]).toEqual([true, true]);
    replay.close();
    expect([replay.pending, replay.resuming]).toEqual([false, false]);
  });

  it('gives up waiting after the timeout, so gaps count as loss again', () => {
    const replay = new ReplayWindow(15000);
    replay.resumed();
    vi.advanceTimersByTime(14999);
    expect(replay.resuming).toBe(true);
    vi.advanceTimersByTime(1);
    expect([replay.pending, replay.resuming]).toEqual([false, false]);
  });

  it('restarts the timeout on each new attempt or resume', () => {
    const replay = new ReplayWindow(1000);
    replay.connecting();
    vi.advanceTimersByTime(800);
    replay.resumed();
    vi.advanceTimersByTime(800);
    expect(replay.pending).toBe(true);
    vi.advanceTimersByTime(200);
    expect(replay.pending).toBe(false);
  });

  it('a failed attempt ends the pending replay but not an unanswered resume', () => {
    const replay = new ReplayWindow(1000);
    replay.resumed();
    replay.attemptFailed();
    expect([replay.pending, replay.resuming]).toEqual([false, true]);
  });
});

describe('AckScheduler', () => {
  function setup(connected = true): { cursor: SeqCursor; sent: AckPayload[]; acks: AckScheduler; link: { up: boolean } } {
    const cursor = new SeqCursor(null, 'e');
    const sent: AckPayload[] = [];
    const link = { up: connected };
    const acks = new AckScheduler(500, cursor, (payload) => {
      if (!link.up) return false;
      sent.push(payload);
      return true;
    });
    return { cursor, sent, acks, link };
  }

  it('acks the watermark once, delayMs after the first request of a burst', () => {
    const { cursor, sent, acks } = setup();
    cursor.record(1);
    acks.schedule();
    vi.advanceTimersByTime(300);
    cursor.record(2);
    acks.schedule();
    vi.advanceTimersByTime(199);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([{ seq: 2 }]);
    vi.advanceTimersByTime(5000);
    expect(sent).toHaveLength(1);
  });

  it('does not ack the same watermark twice', () => {
    const { cursor, sent, acks } = setup();
    cursor.record(4);
    acks.schedule();
    vi.advanceTimersByTime(500);
    acks.schedule();
    vi.advanceTimersByTime(500);
    expect(sent).toEqual([{ seq: 4 }]);
  });

  it('acks again later what it could not send while disconnected', () => {
    const { cursor, sent, acks, link } = setup(false);
    cursor.record(4);
    acks.schedule();
    vi.advanceTimersByTime(500);
    expect(sent).toEqual([]);
    link.up = true;
    acks.schedule();
    vi.advanceTimersByTime(500);
    expect(sent).toEqual([{ seq: 4 }]);
  });

  it('cancel() drops a pending ack', () => {
    const { cursor, sent, acks } = setup();
    cursor.record(1);
    acks.schedule();
    acks.cancel();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([]);
  });
});
