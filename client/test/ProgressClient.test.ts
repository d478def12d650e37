/**
 * ProgressClient against a real Socket.IO server on loopback, scripted per test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io';
import { ProgressClient, type ProgressClientOptions } from '../src/lib/ProgressClient';
import type { SequencedMessage } from '../src/lib/messages';
import { MemoryStorage, storageKey } from '../src/lib/persist';
import {
  emitAll,
  fakeToken,
  msg,
  sleep,
  startFakeServer,
  subOf,
  waitFor,
  type FakeServer,
  type FakeServerOptions,
} from './helpers/fakeServer';

const EPOCH = 'epoch-1';

let servers: FakeServer[] = [];
let clients: ProgressClient[] = [];

afterEach(async () => {
  for (const c of clients) c.stop();
  clients = [];
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function server(options: FakeServerOptions): Promise<FakeServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}

function client(s: FakeServer, extra: Partial<ProgressClientOptions> = {}): ProgressClient {
  let n = 0;
  const c = new ProgressClient({
    url: s.url,
    getToken: async () => fakeToken('alice', { n: ++n }),
    storage: new MemoryStorage(),
    ackDebounceMs: 100,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    pollIntervalMs: 100,
    fallbackAfterMs: 2000,
    ...extra,
  });
  clients.push(c);
  return c;
}

function collect(c: ProgressClient): SequencedMessage[] {
  const seen: SequencedMessage[] = [];
  c.on('message', (m) => seen.push(m));
  return seen;
}

describe('ProgressClient over Socket.IO', () => {
  it('connects with a token from getToken and the stored lastSeq/epoch, and reaches connected', async () => {
    const s = await server({
      onConnection: (socket) => emitAll(socket, [msg.replayComplete(8, 7, EPOCH)]),
    });
    const storage = new MemoryStorage();
    storage.setItem(storageKey('alice'), JSON.stringify({ lastSeq: 7, epoch: EPOCH, jobs: [] }));
    const c = client(s, { storage });
    c.start();
    await waitFor(() => c.state === 'connected', 3000, 'connected');
    expect(s.handshakes).toHaveLength(1);
    expect(subOf(s.handshakes[0]?.token)).toBe('alice');
    expect(s.handshakes[0]).toMatchObject({ lastSeq: 7, epoch: EPOCH });
  });

  it('omits lastSeq and epoch when it has none', async () => {
    const s = await server({});
    const c = client(s);
    c.start();
    await waitFor(() => c.state === 'connected');
    expect(s.handshakes[0]).not.toHaveProperty('lastSeq');
    expect(s.handshakes[0]).not.toHaveProperty('epoch');
  });

  it('asks for a fresh token on every reconnect', async () => {
    const s = await server({});
    let calls = 0;
    const c = client(s, { getToken: async () => fakeToken('alice', { n: ++calls }) });
    c.start();
    await waitFor(() => c.state === 'connected');
    // Cut the transport: Socket.IO reconnects by itself, calling auth() again.
    for (const socket of s.connectedSockets()) socket.conn.close();
    await waitFor(() => s.handshakes.length === 2 && c.state === 'connected', 3000, 'reconnect');
    expect(s.handshakes[0]?.token).not.toBe(s.handshakes[1]?.token);
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it('handles messages emitted before the CONNECT packet (python-socketio order)', async () => {
    const s = await server({
      beforeConnect: (socket) =>
        emitAll(socket, [
          { type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH },
          msg.queue(1, 'j1', 1),
          msg.progress(2, 'j1', 'url_validation', 5),
          msg.replayComplete(1, 2, EPOCH, false),
        ]),
    });
    const c = client(s);
    const seen = collect(c);
    c.start();
    await waitFor(() => c.state === 'connected' && seen.length === 2);
    expect(c.getJob('j1')).toMatchObject({ status: 'processing', stage: 'url_validation', progress: 5 });
    expect(c.cursor).toEqual({ lastSeq: 2, epoch: EPOCH });
  });

  it('drops duplicate seqs (replay and live overlapping)', async () => {
    let socketRef: Socket | null = null;
    const s = await server({
      onConnection: (socket) => {
        socketRef = socket;
        emitAll(socket, [
          { type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH },
          msg.progress(1, 'j1', 'url_validation', 5),
          msg.progress(2, 'j1', 'metadata_extraction', 15),
          msg.replayComplete(1, 2, EPOCH),
        ]);
      },
    });
    const c = client(s);
    const seen = collect(c);
    c.start();
    await waitFor(() => seen.length === 2);
    emitAll(socketRef!, [msg.progress(2, 'j1', 'metadata_extraction', 15), msg.progress(3, 'j1', 'metadata_extraction', 20)]);
    await waitFor(() => seen.length === 3);
    await sleep(100);
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(c.stats.duplicatesDropped).toBe(1);
    expect(c.getJob('j1')?.progress).toBe(20);
  });

  it('sends resume on a gap in live seqs and takes the replay that answers it', async () => {
    const log = [
      msg.queue(1, 'j1', 1),
      msg.progress(2, 'j1', 'url_validation', 5),
      msg.progress(3, 'j1', 'metadata_extraction', 20),
      msg.progress(4, 'j1', 'transcript_generation', 35),
      msg.progress(5, 'j1', 'transcript_generation', 40),
    ];
    let socketRef: Socket | null = null;
    const s = await server({
      onConnection: (socket) => {
        socketRef = socket;
        emitAll(socket, [{ type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH }, log[0]!, log[1]!, msg.replayComplete(1, 2, EPOCH)]);
      },
      onResume: (socket, { lastSeq }) => {
        emitAll(socket, [...log.filter((m) => m.seq > lastSeq), msg.replayComplete(lastSeq + 1, 5, EPOCH)]);
      },
    });
    const c = client(s);
    const seen = collect(c);
    c.start();
    await waitFor(() => seen.length === 2 && c.state === 'connected');
    // 3 and 4 are lost on the way: 5 arrives live.
    emitAll(socketRef!, [log[4]!]);
    await waitFor(() => s.resumes.length === 1, 3000, 'resume');
    expect(s.resumes[0]).toEqual({ lastSeq: 2, epoch: EPOCH });
    await waitFor(() => seen.length === 5, 3000, 'replayed messages');
    expect(seen.map((m) => m.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(c.stats.resumesSent).toBe(1);
    expect(c.cursor.lastSeq).toBe(5);
    // The late, lower messages never moved the job back.
    expect(c.getJob('j1')).toMatchObject({ stage: 'transcript_generation', progress: 40 });
  });

  it('does not take compaction gaps inside a replay for loss', async () => {
    const s = await server({
      onConnection: (socket) =>
        emitAll(socket, [
          msg.progress(5, 'j1', 'content_analysis', 60),
          msg.complete(9, 'j1'),
          msg.replayComplete(4, 9, EPOCH, true, 3),
        ]),
    });
    const storage = new MemoryStorage();
    storage.setItem(storageKey('alice'), JSON.stringify({ lastSeq: 3, epoch: EPOCH, jobs: [] }));
    const c = client(s, { storage });
    c.start();
    await waitFor(() => c.cursor.lastSeq === 9);
    await sleep(150);
    expect(s.resumes).toEqual([]);
    expect(c.getJob('j1')?.status).toBe('completed');
  });

  it('acks what it processed, debounced', async () => {
    let socketRef: Socket | null = null;
    const s = await server({
      onConnection: (socket) => {
        socketRef = socket;
        emitAll(socket, [{ type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH }, msg.replayComplete(1, 0, EPOCH)]);
      },
    });
    const c = client(s, { ackDebounceMs: 500 });
    c.start();
    await waitFor(() => c.state === 'connected');
    const burst = Array.from({ length: 10 }, (_, i) => msg.progress(i + 1, 'j1', 'content_analysis', 50 + i));
    emitAll(socketRef!, burst);
    await waitFor(() => c.cursor.lastSeq === 10);
    await sleep(100);
    expect(s.acks).toEqual([]);
    await waitFor(() => s.acks.length > 0, 2000, 'ack');
    await sleep(400);
    expect(s.acks).toEqual([10]);
  });

  it('takes the snapshot and never rolls a job back with the offline queue that follows it', async () => {
    const s = await server({
      onConnection: (socket) =>
        emitAll(socket, [
          {
            type: 'snapshot',
            lastSeq: 6,
            epoch: EPOCH,
            jobs: [
              {
                jobId: 'j1',
                status: 'processing',
                stage: 'content_analysis',
                progress: 55,
                videoTitle: 'Talk',
                estimatedCompletion: null,
                position: null,
                error: null,
              },
            ],
          },
          // Unacked history at or below the snapshot: must not move j1 back.
          msg.progress(3, 'j1', 'metadata_extraction', 15),
          msg.progress(6, 'j1', 'content_analysis', 55),
          msg.progress(7, 'j1', 'content_analysis', 60, 'Talk'),
          msg.replayComplete(1, 7, EPOCH, false),
        ]),
    });
    const c = client(s);
    const metas: Array<[number, boolean]> = [];
    c.on('message', (m, meta) => metas.push([m.seq, meta.history]));
    c.start();
    await waitFor(() => c.cursor.lastSeq === 7);
    expect(c.getJob('j1')).toMatchObject({ stage: 'content_analysis', progress: 60, videoTitle: 'Talk' });
    expect(metas).toEqual([
      [3, true],
      [6, true],
      [7, false],
    ]);
    await waitFor(() => s.acks.includes(7), 2000, 'ack of 7');
  });

  it('resets its cursor and jobs when the epoch changes', async () => {
    const s = await server({
      onConnection: (socket) =>
        emitAll(socket, [
          { type: 'snapshot', lastSeq: 2, epoch: 'epoch-2', jobs: [] },
          msg.queue(3, 'new', 1),
          msg.replayComplete(3, 3, 'epoch-2', false),
        ]),
    });
    const storage = new MemoryStorage();
    const oldJob = { jobId: 'old', status: 'processing', progress: 40, seq: 50, order: 1 };
    storage.setItem(storageKey('alice'), JSON.stringify({ lastSeq: 50, epoch: EPOCH, jobs: [oldJob] }));
    const c = client(s, { storage });
    expect(c.getJob('old')).toBeUndefined(); // userId unknown until the token is read
    c.start();
    await waitFor(() => c.cursor.epoch === 'epoch-2' && c.cursor.lastSeq === 3);
    expect(s.handshakes[0]).toMatchObject({ lastSeq: 50, epoch: EPOCH });
    expect(c.getJobs().map((j) => j.jobId)).toEqual(['new']);
  });

  it('persists the cursor with the jobs, and a new client (a reload) resumes from it', async () => {
    const s = await server({
      onConnection: (socket, auth) => {
        if (auth.lastSeq === undefined) {
          emitAll(socket, [
            { type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH },
            msg.queue(1, 'j1', 1),
            msg.progress(2, 'j1', 'transcript_generation', 30),
            msg.replayComplete(1, 2, EPOCH, false),
          ]);
        } else {
          emitAll(socket, [msg.progress(3, 'j1', 'content_analysis', 50), msg.replayComplete(3, 3, EPOCH)]);
        }
      },
    });
    const storage = new MemoryStorage();
    const first = client(s, { storage, userId: 'alice' });
    first.start();
    await waitFor(() => first.cursor.lastSeq === 2);
    first.stop(); // saves at once

    const second = client(s, { storage, userId: 'alice' });
    // Shown before connecting: what the page showed before the reload.
    expect(second.getJob('j1')).toMatchObject({ progress: 30 });
    second.start();
    await waitFor(() => second.cursor.lastSeq === 3);
    expect(s.handshakes[1]).toMatchObject({ lastSeq: 2, epoch: EPOCH });
    expect(second.getJob('j1')).toMatchObject({ stage: 'content_analysis', progress: 50 });
  });

  it('gets a fresh token and retries after an unauthorized refusal', async () => {
    const s = await server({
      authorize: (auth) => (subOf(auth.token) === 'alice' && auth.token?.includes('.') && !auth.token.endsWith('bad') ? null : 'unauthorized'),
    });
    const tokens = [`${fakeToken('alice')}bad`, fakeToken('alice')];
    let i = 0;
    const c = client(s, { userId: 'alice', getToken: async () => tokens[Math.min(i++, tokens.length - 1)]! });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.message));
    c.start();
    await waitFor(() => c.state === 'connected', 4000, 'connected after refusal');
    expect(errors).toContain('unauthorized');
    expect(s.handshakes.length).toBe(2);
  });

  it('stop() disconnects and removes its socket listeners', async () => {
    const s = await server({});
    const c = client(s);
    c.start();
    await waitFor(() => c.state === 'connected');
    const socket = c.rawSocket!;
    c.stop();
    expect(c.state).toBe('offline');
    expect(socket.connected).toBe(false);
    expect(socket.listeners('progress_update')).toHaveLength(0);
    await waitFor(() => s.connectedSockets().length === 0);
  });

  it('start() followed by stop() in the same tick opens no connection (StrictMode)', async () => {
    const s = await server({});
    const c = client(s);
    c.start();
    c.stop();
    c.start();
    await waitFor(() => c.state === 'connected');
    await sleep(200);
    expect(s.handshakes).toHaveLength(1);
  });
});

describe('ProgressClient HTTP polling fallback', () => {
  it('polls status-all when Socket.IO cannot connect, then goes back to Socket.IO', async () => {
    const log = [msg.queue(1, 'j1', 1), msg.progress(2, 'j1', 'url_validation', 5), msg.progress(3, 'j1', 'indexing', 95), msg.complete(4, 'j1')];
    let visible = 2;
    const s = await server({
      onConnection: (socket, auth) => {
        const from = auth.lastSeq ?? 0;
        emitAll(socket, [...log.filter((m) => m.seq > from && m.seq <= visible), msg.replayComplete(from + 1, visible, EPOCH)]);
      },
      statusAll: ({ since, epoch }) => {
        const after = since === null || epoch !== EPOCH ? 0 : Number(since);
        const messages = log.filter((m) => m.seq > after && m.seq <= visible);
        return { status: 200, body: { messages, lastSeq: visible, epoch: EPOCH, omitted: 0, recovered: since !== null } };
      },
    });
    s.blockSocketIo = true;
    const c = client(s);
    const states: string[] = [];
    c.on('state', (st) => states.push(st));
    c.start();
    await waitFor(() => c.state === 'polling', 5000, 'polling');
    expect(s.statusAllRequests[0]).toMatchObject({ userId: 'alice', since: null });
    expect(s.statusAllRequests[0]?.authorization).toMatch(/^Bearer /);
    expect(c.getJob('j1')).toMatchObject({ progress: 5 });

    visible = 3;
    await waitFor(() => c.getJob('j1')?.progress === 95, 3000, 'poll catches up');
    const incremental = s.statusAllRequests.at(-1)!;
    expect(incremental).toMatchObject({ since: '2', epoch: EPOCH });

    visible = 4;
    s.blockSocketIo = false;
    await waitFor(() => c.state === 'connected', 5000, 'back to Socket.IO');
    await waitFor(() => c.getJob('j1')?.status === 'completed');
    const polls = s.statusAllRequests.length;
    await sleep(400);
    expect(s.statusAllRequests.length).toBe(polls); // polling stopped
    expect(states).toEqual(['reconnecting', 'polling', 'connected']);
  });

  it('reads offline when neither Socket.IO nor the fallback answers', async () => {
    const s = await server({ statusAll: () => ({ status: 503, body: { error: 'unavailable', message: 'down' } }) });
    s.blockSocketIo = true;
    const c = client(s);
    c.start();
    await waitFor(() => c.state === 'offline' && c.stats.polls === 0 && s.statusAllRequests.length > 0, 5000, 'offline');
  });

  it('falls back to polling on too_many_connections', async () => {
    const s = await server({
      authorize: () => 'too_many_connections',
      statusAll: () => ({ status: 200, body: { messages: [msg.queue(1, 'j1', 2)], lastSeq: 1, epoch: EPOCH, omitted: 0, recovered: false } }),
    });
    const c = client(s);
    c.start();
    await waitFor(() => c.state === 'polling', 5000, 'polling');
    expect(c.getJob('j1')).toMatchObject({ status: 'queued', position: 2 });
  });

  it('refreshes the token once on a 401 from status-all', async () => {
    let calls = 0;
    const s = await server({
      statusAll: ({ authorization }) =>
        authorization?.includes(fakeToken('alice', { n: 1 }))
          ? { status: 401, body: { error: 'unauthorized', message: 'expired' } }
          : { status: 200, body: { messages: [], lastSeq: 0, epoch: EPOCH, omitted: 0, recovered: false } },
    });
    s.blockSocketIo = true;
    const c = client(s, { getToken: async () => fakeToken('alice', { n: ++calls }) });
    c.start();
    await waitFor(() => c.state === 'polling', 5000, 'polling');
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
