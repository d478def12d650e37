/**
 * What gets told: live news one by one; a replay's news folded into one summary; a retry that is
 * already over never announced.
 */
import type { Socket } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage, storageKey } from '../src/lib/persist';
import { ProgressClient } from '../src/lib/ProgressClient';
import { backgroundTitle } from '../src/react/background';
import { NoticeFeed, type Notice, type OutcomeEvent } from '../src/react/notices';
import { emitAll, fakeToken, msg, sleep, startFakeServer, waitFor, type FakeServer } from './helpers/fakeServer';

const EPOCH = 'epoch-n';
let server: FakeServer | null = null;
let stops: Array<() => void> = [];

afterEach(async () => {
  for (const stop of stops) stop();
  stops = [];
  await server?.close();
  server = null;
});

function retry(seq: number, jobId: string, inSeconds: number): Record<string, unknown> & { type: string } {
  return { ...msg.error(seq, jobId, true), retryAt: new Date(Date.now() + inSeconds * 1000).toISOString() };
}

async function watch(onConnection: (socket: Socket) => void, lastSeq: number | null): Promise<{ client: ProgressClient; notices: Notice[]; outcomes: OutcomeEvent[] }> {
  server = await startFakeServer({ onConnection });
  const storage = new MemoryStorage();
  if (lastSeq !== null) storage.setItem(storageKey('alice'), JSON.stringify({ lastSeq, epoch: EPOCH, jobs: [] }));
  const client = new ProgressClient({ url: server.url, getToken: async () => fakeToken('alice'), storage, transports: ['websocket'] });
  const feed = new NoticeFeed(client);
  const notices: Notice[] = [];
  const outcomes: OutcomeEvent[] = [];
  feed.on('notice', (n) => notices.push(n));
  feed.on('outcome', (o) => outcomes.push(o));
  const stopFeed = feed.start();
  stops.push(() => {
    stopFeed();
    client.stop();
  });
  client.start();
  await waitFor(() => client.state === 'connected', 3000, 'connected');
  return { client, notices, outcomes };
}

describe('NoticeFeed', () => {
  it('folds what a reconnect replays into one summary, from the jobs’ state at its end', async () => {
    const { notices, outcomes } = await watch(
      (socket) =>
        emitAll(socket, [
          msg.progress(11, 'a', 'indexing', 90, 'Talk A'),
          msg.complete(12, 'a'),
          msg.progress(13, 'b', 'content_analysis', 50, 'Talk B'),
          // A retry whose job completed later in the same replay: history, not news.
          retry(14, 'b', -5),
          msg.progress(15, 'b', 'content_analysis', 55, 'Talk B'),
          msg.complete(16, 'b'),
          msg.progress(17, 'c', 'indexing', 90, 'Talk C'),
          msg.error(18, 'c', false),
          msg.replayComplete(11, 18, EPOCH),
        ]),
      10,
    );
    await waitFor(() => notices.length > 0, 2000, 'the summary');
    await sleep(50);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ title: 'While you were away: 2 finished, 1 failed', kind: 'error', outcome: 'summary', jobId: null });
    expect(notices[0]?.body).toContain('A video');
    expect(outcomes.map((o) => o.outcome)).toEqual(['done', 'retry', 'done', 'failed']);
  });

  it('tells live news one by one, and skips a retry that the job already left behind', async () => {
    let live: Socket | null = null;
    const { notices } = await watch((socket) => {
      live = socket;
      emitAll(socket, [{ type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH }, msg.replayComplete(1, 0, EPOCH, false)]);
    }, null);
    emitAll(live!, [msg.progress(1, 'a', 'content_analysis', 50), retry(2, 'a', 20)]);
    await waitFor(() => notices.length === 1, 2000, 'the retry notice');
    expect(notices[0]).toMatchObject({ title: 'Attempt 1 of 3 failed', kind: 'error', jobId: 'a' });

    // A retry whose time is already past: nothing to announce.
    emitAll(live!, [retry(3, 'a', -1)]);
    await sleep(100);
    expect(notices).toHaveLength(1);

    emitAll(live!, [msg.progress(4, 'a', 'content_analysis', 55), msg.complete(5, 'a')]);
    await waitFor(() => notices.length === 2, 2000, 'the completion');
    expect(notices[1]).toMatchObject({ title: 'Processing complete', kind: 'success', outcome: 'done' });
  });
});

describe('backgroundTitle', () => {
  it('counts active jobs and shows the latest kind of outcome first', () => {
    expect(backgroundTitle(1, 0, 0, 'done', 'realtime')).toBe('✓ 1 done · realtime');
    expect(backgroundTitle(0, 0, 2, null, 'realtime')).toBe('2 active · realtime');
    expect(backgroundTitle(2, 1, 1, 'failed', 'realtime')).toBe('✗ 1 failed · ✓ 2 done · 1 active · realtime');
  });
});
