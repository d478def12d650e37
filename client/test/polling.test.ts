/**
 * Poller, the HTTP polling fallback loop, with fake timers and a scripted host.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StatusAllResponse } from '../src/lib/messages';
import { Poller, statusAllPath, type PollerHost, type PollerOptions } from '../src/lib/polling';

const ANSWER: StatusAllResponse = { messages: [], lastSeq: 3, epoch: 'e', omitted: 0, recovered: true };

interface FakeHost extends PollerHost {
  paths: string[];
  answers: Array<[StatusAllResponse, boolean]>;
  errors: unknown[];
  polled: boolean[];
  signals: AbortSignal[];
  allow: boolean;
  user: string | null;
  position: { lastSeq: number | null; epoch: string | null };
  /** What the next requests do; default: answer ANSWER at once. */
  respond: (signal: AbortSignal) => Promise<unknown>;
}

function fakeHost(): FakeHost {
  const host: FakeHost = {
    paths: [],
    answers: [],
    errors: [],
    polled: [],
    signals: [],
    allow: true,
    user: 'alice',
    position: { lastSeq: null, epoch: null },
    respond: async () => ANSWER,
    mayStart: () => host.allow,
    userId: () => host.user,
    cursor: () => host.position,
    request: (path, signal) => {
      host.paths.push(path);
      host.signals.push(signal);
      return host.respond(signal);
    },
    onAnswer: (body, incremental) => host.answers.push([body, incremental]),
    onError: (error) => host.errors.push(error),
    onPolled: (ok) => host.polled.push(ok),
  };
  return host;
}

const OPTIONS: PollerOptions = { enabled: true, intervalMs: 3000, startAfterMs: 8000 };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Poller', () => {
  it('polls at once when started, then every interval after the previous poll', async () => {
    const host = fakeHost();
    const poller = new Poller(host, OPTIONS);
    poller.start();
    expect(poller.active).toBe(true);
    expect(poller.lastOk).toBe(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(host.paths).toEqual(['/api/processing/status-all/alice']);
    expect(host.answers).toEqual([[ANSWER, false]]);
    expect(host.polled).toEqual([true]);
    expect(poller.lastOk).toBe(true);
    await vi.advanceTimersByTimeAsync(2999);
    expect(host.paths).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(host.paths).toHaveLength(2);
    poller.stop();
  });

  it('polls incrementally from the cursor when lastSeq and epoch are both known', async () => {
    const host = fakeHost();
    host.position = { lastSeq: 7, epoch: 'e 1' };
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.paths).toEqual(['/api/processing/status-all/alice?since=7&epoch=e+1']);
    expect(host.answers[0]?.[1]).toBe(true);
    poller.stop();
  });

  it('reports a failed poll and keeps polling', async () => {
    const host = fakeHost();
    host.respond = async () => {
      throw new Error('503');
    };
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.errors).toHaveLength(1);
    expect(host.polled).toEqual([false]);
    expect(poller.lastOk).toBe(false);
    host.respond = async () => ANSWER;
    await vi.advanceTimersByTimeAsync(3000);
    expect(host.polled).toEqual([false, true]);
    poller.stop();
  });

  it('treats a malformed answer as a failed poll', async () => {
    const host = fakeHost();
    host.respond = async () => ({ nope: true });
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(String(host.errors[0])).toContain('malformed status-all answer');
    expect(host.answers).toEqual([]);
    expect(host.polled).toEqual([false]);
    poller.stop();
  });

  it('stop() aborts the request in flight and reports nothing more', async () => {
    const host = fakeHost();
    host.respond = (signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.signals[0]?.aborted).toBe(false);
    poller.stop();
    expect(host.signals[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(host.errors).toEqual([]);
    expect(host.polled).toEqual([]);
    expect(host.paths).toHaveLength(1);
  });

  it('sends one request at a time', async () => {
    const host = fakeHost();
    let finish: (value: unknown) => void = () => {};
    host.respond = () => new Promise((resolve) => (finish = resolve));
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    poller.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.paths).toHaveLength(1);
    finish(ANSWER);
    await vi.advanceTimersByTimeAsync(0);
    expect(host.polled).toEqual([true]);
    poller.stop();
  });

  it('wake() skips the rest of the interval', async () => {
    const host = fakeHost();
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(100);
    poller.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(host.paths).toHaveLength(2);
    poller.stop();
  });

  it('arm() starts polling after startAfterMs, and a second arm keeps the first time', async () => {
    const host = fakeHost();
    const poller = new Poller(host, OPTIONS);
    poller.arm();
    await vi.advanceTimersByTimeAsync(5000);
    poller.arm();
    await vi.advanceTimersByTimeAsync(2999);
    expect(poller.active).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(poller.active).toBe(true);
    // The first poll is a 0 ms timer, set inside the start timer's callback: fake timers (like
    // browsers for nested timers) run it 1 ms later.
    await vi.advanceTimersByTimeAsync(1);
    expect(host.paths).toHaveLength(1);
    poller.stop();
  });

  it('stop() cancels an armed start', async () => {
    const host = fakeHost();
    const poller = new Poller(host, OPTIONS);
    poller.arm();
    poller.stop();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(host.paths).toEqual([]);
  });

  it('never polls when disabled', async () => {
    const host = fakeHost();
    const poller = new Poller(host, { ...OPTIONS, enabled: false });
    poller.arm();
    poller.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(poller.active).toBe(false);
    expect(host.paths).toEqual([]);
  });

  it('does not start while the host says no (Socket.IO connected, or stopped)', async () => {
    const host = fakeHost();
    host.allow = false;
    const poller = new Poller(host, OPTIONS);
    poller.start();
    poller.arm();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(poller.active).toBe(false);
    expect(host.paths).toEqual([]);
  });

  it('sends nothing without a user id', async () => {
    const host = fakeHost();
    host.user = null;
    const poller = new Poller(host, OPTIONS);
    poller.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(host.paths).toEqual([]);
    poller.stop();
  });
});

describe('statusAllPath', () => {
  it('encodes the user id and adds since/epoch only when both are known', () => {
    expect(statusAllPath('a/b', null, null)).toBe('/api/processing/status-all/a%2Fb');
    expect(statusAllPath('u', 4, null)).toBe('/api/processing/status-all/u');
    expect(statusAllPath('u', null, 'e')).toBe('/api/processing/status-all/u');
    expect(statusAllPath('u', 0, 'e')).toBe('/api/processing/status-all/u?since=0&epoch=e');
  });
});
