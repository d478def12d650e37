/**
 * Clear finished: the unsolicited snapshot + replay_complete a server sends every connection of the
 * user after `POST /api/jobs/clear-finished`, and the client's own call.
 */
import type { Socket } from 'socket.io';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JobState } from '../src/lib/messages';
import { MemoryStorage } from '../src/lib/persist';
import { ProgressClient } from '../src/lib/ProgressClient';
import { emitAll, fakeToken, msg, sleep, startFakeServer, waitFor, type FakeServer } from './helpers/fakeServer';

const EPOCH = 'epoch-c';
let server: FakeServer | null = null;
let clients: ProgressClient[] = [];

afterEach(async () => {
  for (const c of clients) c.stop();
  clients = [];
  await server?.close();
  server = null;
});

function state(jobId: string, status: JobState['status'], progress: number): JobState {
  return {
    jobId,
    status,
    stage: status === 'completed' ? 'completed' : 'content_analysis',
    progress,
    videoTitle: `Video ${jobId}`,
    estimatedCompletion: null,
    position: null,
    error: null,
    videoUrl: 'https://youtu.be/dQw4w9WgXcQ',
    submittedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: status === 'completed' ? '2026-01-01T00:01:00.000Z' : null,
  };
}

describe('clear finished', () => {
  it('takes an unsolicited snapshot + replay_complete as the new job list, keeping the seq cursor', async () => {
    let live: Socket | null = null;
    server = await startFakeServer({
      onConnection: (socket) => {
        live = socket;
        emitAll(socket, [
          { type: 'snapshot', lastSeq: 4, epoch: EPOCH, jobs: [state('done1', 'completed', 100), state('done2', 'completed', 100), state('run', 'processing', 40)] },
          msg.replayComplete(1, 4, EPOCH, false),
        ]);
      },
    });
    const c = new ProgressClient({ url: server.url, getToken: async () => fakeToken('alice'), storage: new MemoryStorage(), ackDebounceMs: 50 });
    clients.push(c);
    const seen: number[] = [];
    c.on('message', (m) => seen.push(m.seq));
    c.start();
    await waitFor(() => c.state === 'connected' && c.getJobs().length === 3, 3000, 'three jobs');
    expect(c.getJob('done1')).toMatchObject({ videoUrl: 'https://youtu.be/dQw4w9WgXcQ', submittedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z' });

    emitAll(live!, [msg.progress(5, 'run', 'content_analysis', 50)]);
    await waitFor(() => c.cursor.lastSeq === 5, 2000, 'seq 5');

    // Another tab cleared: the same epoch, lastSeq = the current one, an empty range.
    emitAll(live!, [
      { type: 'snapshot', lastSeq: 5, epoch: EPOCH, jobs: [state('run', 'processing', 50)] },
      { type: 'replay_complete', fromSeq: 6, toSeq: 5, epoch: EPOCH, recovered: true, omitted: 0 },
    ]);
    await waitFor(() => c.getJobs().length === 1, 2000, 'finished jobs gone');
    expect(c.getJobs().map((j) => j.jobId)).toEqual(['run']);
    expect(c.getJob('run')).toMatchObject({ progress: 50 });
    expect(c.cursor).toEqual({ lastSeq: 5, epoch: EPOCH });

    // The next live message is neither a duplicate nor a gap.
    emitAll(live!, [msg.progress(6, 'run', 'content_analysis', 70)]);
    await waitFor(() => c.getJob('run')?.progress === 70, 2000, 'seq 6 applied');
    expect(c.cursor.lastSeq).toBe(6);
    expect(c.stats.duplicatesDropped).toBe(0);
    expect(c.stats.resumesSent).toBe(0);
    expect(seen).toEqual([5, 6]);
    await waitFor(() => server!.acks.includes(6), 2000, 'ack of 6');
  });

  it('clearFinished() posts to /api/processing/clear-finished (else /api/jobs/…) and drops the finished jobs at once', async () => {
    server = await startFakeServer({
      onConnection: (socket) =>
        emitAll(socket, [
          { type: 'snapshot', lastSeq: 2, epoch: EPOCH, jobs: [state('done', 'completed', 100), state('run', 'processing', 10)] },
          msg.replayComplete(1, 2, EPOCH, false),
        ]),
    });
    const fetchImpl = vi.fn<typeof fetch>(async (input) =>
      String(input).includes('/api/processing/')
        ? new Response(JSON.stringify({ error: 'not_found', message: 'no' }), { status: 404 })
        : new Response(JSON.stringify({ cleared: 1 }), { status: 200 }),
    );
    const c = new ProgressClient({ url: server.url, getToken: async () => fakeToken('alice'), storage: null, fetch: fetchImpl, transports: ['websocket'] });
    clients.push(c);
    c.start();
    await waitFor(() => c.getJobs().length === 2, 3000, 'jobs');
    await expect(c.clearFinished()).resolves.toBe(1);
    expect(fetchImpl.mock.calls.map(([url]) => url)).toEqual([`${server.url}/api/processing/clear-finished`, `${server.url}/api/jobs/clear-finished`]);
    const [, init] = fetchImpl.mock.calls[1]!;
    expect(init?.method).toBe('POST');
    expect(c.getJobs().map((j) => j.jobId)).toEqual(['run']);
    await sleep(10);
  });
});
