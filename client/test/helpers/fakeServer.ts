/**
 * A real Socket.IO + HTTP server on an ephemeral loopback port, scripted by each test.
 *
 * It speaks the wire contract just enough for client tests: `auth` checked by a test-provided
 * function, `ack`/`resume` recorded, `status-all` answered by a test-provided function, and a
 * switch that makes the Socket.IO path fail (as when a proxy blocks it).
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server, type Socket } from 'socket.io';

export interface Handshake {
  token?: string;
  lastSeq?: number;
  epoch?: string;
}

export interface StatusAllRequest {
  userId: string;
  since: string | null;
  epoch: string | null;
  authorization: string | undefined;
}

export interface FakeServerOptions {
  /** Return an error text to refuse the connection (e.g. 'unauthorized'), or null to accept. */
  authorize?: (auth: Handshake) => string | null;
  /**
   * Called for each accepted connection; emits made in `beforeConnect` go out before the CONNECT
   * packet, like python-socketio's connect handler.
   */
  beforeConnect?: (socket: Socket, auth: Handshake) => void;
  onConnection?: (socket: Socket, auth: Handshake) => void;
  onResume?: (socket: Socket, payload: { lastSeq: number; epoch: string }) => void;
  statusAll?: (req: StatusAllRequest) => { status: number; body: unknown };
}

export interface FakeServer {
  url: string;
  io: Server;
  http: HttpServer;
  handshakes: Handshake[];
  acks: number[];
  resumes: Array<{ lastSeq: number; epoch: string }>;
  statusAllRequests: StatusAllRequest[];
  /** While true, every request and upgrade on /socket.io/ fails. */
  blockSocketIo: boolean;
  connectedSockets(): Socket[];
  close(): Promise<void>;
}

/** A JWT-shaped token (unsigned) with the given sub. */
export function fakeToken(sub: string, extra: Record<string, unknown> = {}): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub, ...extra })}.sig`;
}

export function subOf(token: string | undefined): string | null {
  const part = token?.split('.')[1];
  if (!part) return null;
  try {
    return (JSON.parse(Buffer.from(part, 'base64url').toString()) as { sub?: string }).sub ?? null;
  } catch {
    return null;
  }
}

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const http = createServer();
  const state: Omit<FakeServer, 'url' | 'io' | 'http' | 'close' | 'connectedSockets'> = {
    handshakes: [],
    acks: [],
    resumes: [],
    statusAllRequests: [],
    blockSocketIo: false,
  };

  // CORS for jsdom pages (origin http://localhost:3000) reaching this loopback server.
  const io = new Server(http, { pingInterval: 1000, pingTimeout: 1000, cors: { origin: true } });

  io.use((socket, next) => {
    const auth = (socket.handshake.auth ?? {}) as Handshake;
    state.handshakes.push(auth);
    const refusal = options.authorize ? options.authorize(auth) : auth.token ? null : 'unauthorized';
    if (refusal) {
      next(new Error(refusal));
      return;
    }
    socket.on('ack', (payload: { seq: number }) => state.acks.push(payload.seq));
    socket.on('resume', (payload: { lastSeq: number; epoch: string }) => {
      state.resumes.push(payload);
      options.onResume?.(socket, payload);
    });
    options.beforeConnect?.(socket, auth);
    next();
  });
  io.on('connection', (socket) => options.onConnection?.(socket, socket.handshake.auth as Handshake));

  // Wrap engine.io's request and upgrade listeners so the Socket.IO path can be "blocked".
  const requestListeners = http.listeners('request').slice() as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  http.removeAllListeners('request');
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/socket.io/')) {
      if (state.blockSocketIo) {
        res.writeHead(503).end('blocked');
        return;
      }
      for (const l of requestListeners) l.call(http, req, res);
      return;
    }
    const match = /^\/api\/processing\/status-all\/([^/]+)$/.exec(url.pathname);
    if (match && options.statusAll) {
      const request: StatusAllRequest = {
        userId: decodeURIComponent(match[1] ?? ''),
        since: url.searchParams.get('since'),
        epoch: url.searchParams.get('epoch'),
        authorization: req.headers.authorization,
      };
      state.statusAllRequests.push(request);
      const { status, body } = options.statusAll(request);
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'not_found', message: 'no' }));
  });
  const upgradeListeners = http.listeners('upgrade').slice() as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
  http.removeAllListeners('upgrade');
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (state.blockSocketIo) {
      socket.destroy();
      return;
    }
    for (const l of upgradeListeners) l.call(http, req, socket, head);
  });

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const server: FakeServer = Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    io,
    http,
    connectedSockets: () => [...io.sockets.sockets.values()],
    close: async () => {
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => {
        io.close(() => resolve());
      });
      http.closeAllConnections();
    },
  });
  return server;
}

/** Polls `check` every 10 ms until it is truthy (or fails after `timeoutMs`). */
export async function waitFor<T>(check: () => T, timeoutMs = 3000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let ts = Date.parse('2026-01-01T00:00:00Z');
const iso = (): string => new Date((ts += 1000)).toISOString();

export const msg = {
  progress(seq: number, jobId: string, stage: string, progress: number, videoTitle = 'A video') {
    return {
      type: 'progress_update',
      seq,
      jobId,
      ts: iso(),
      stage,
      progress,
      message: `${stage}…`,
      estimatedCompletion: null,
      videoTitle,
    };
  },
  queue(seq: number, jobId: string, position: number) {
    return {
      type: 'queue_update',
      seq,
      jobId,
      ts: iso(),
      position,
      queueLength: position,
      estimatedWaitSeconds: position * 10,
      estimatedStart: null,
    };
  },
  complete(seq: number, jobId: string) {
    return { type: 'processing_complete', seq, jobId, ts: iso(), videoTitle: 'A video', durationSeconds: 12, result: { mindmapId: 'm1' } };
  },
  error(seq: number, jobId: string, willRetry: boolean) {
    return {
      type: 'processing_error',
      seq,
      jobId,
      ts: iso(),
      error: 'transcript service timed out',
      code: 'timeout',
      attempt: 1,
      maxAttempts: 3,
      willRetry,
      retryAt: willRetry ? iso() : null,
    };
  },
  replayComplete(fromSeq: number, toSeq: number, epoch: string, recovered = true, omitted = 0) {
    return { type: 'replay_complete', fromSeq, toSeq, epoch, recovered, omitted };
  },
};

/** Emits each message as an event named by its type (as the server does). */
export function emitAll(socket: Socket, messages: Array<{ type: string; [key: string]: unknown }>): void {
  for (const m of messages) socket.emit(m.type, m);
}
