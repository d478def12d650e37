/**
 * ProgressClient: one user's live job progress over Socket.IO, with an HTTP polling fallback.
 *
 * Guarantees it keeps (see CONTRACT.md sections 2-4):
 * - every connection attempt asks `getToken()` for a token and sends `{token, lastSeq, epoch}`;
 * - each stored message (`seq`) is delivered to listeners at most once; a job never moves back;
 * - `lastSeq`/`epoch` and the job views they describe are kept per user in storage, so a reload
 *   or a tab that slept resumes from where it was;
 * - a gap in live `seq`s sends `resume`; what was processed is acked (debounced);
 * - when Socket.IO cannot connect, `status-all?since=` is polled until Socket.IO answers again.
 */
import { io, type Socket } from 'socket.io-client';
import { Emitter } from './emitter';
import {
  applyMessage,
  applySnapshot,
  applySubmitted,
  pruneJobs,
  sortJobs,
  type JobMap,
  type JobView,
} from './jobs';
import {
  isReplayComplete,
  isSequencedMessage,
  isSnapshot,
  isStatusAllResponse,
  SEQUENCED_TYPES,
  type AckPayload,
  type JobState,
  type ProcessingComplete,
  type ProcessingError,
  type ProgressUpdate,
  type QueueUpdate,
  type ReplayComplete,
  type ResumePayload,
  type SequencedMessage,
  type Snapshot,
  type StatusAllResponse,
  type SubmitResponse,
} from './messages';
import { clearStream, defaultStorage, loadStream, saveStream, type StorageLike } from './persist';
import { tokenSubject } from './token';

/**
 * - `connected`: Socket.IO is connected (WebSocket or its own long-polling).
 * - `reconnecting`: connecting or reconnecting, nothing else running yet.
 * - `polling`: Socket.IO cannot connect; the HTTP fallback answers.
 * - `offline`: not started, stopped, or neither Socket.IO nor the HTTP fallback answers.
 */
export type ConnectionState = 'connected' | 'reconnecting' | 'polling' | 'offline';

export type Transport = 'polling' | 'websocket' | 'webtransport';

export interface MessageMeta {
  /** How the message arrived. */
  via: 'socket' | 'http';
  /**
   * True for a message that happened before the state the client already shows: the offline queue
   * after a `snapshot` (seq <= snapshot.lastSeq) and the latest-per-job list of a non-incremental poll.
   * Apps should not notify about it again.
   */
  history: boolean;
  /** True when it came in a replay (before `replay_complete`) or from the HTTP fallback. */
  replayed: boolean;
}

export interface ClientErrorInfo {
  /** Where it happened. */
  source: 'connect' | 'poll' | 'token' | 'message';
  /** `unauthorized`, `too_many_connections`, a transport error text, an HTTP status... */
  message: string;
  cause?: unknown;
}

/** Events a ProgressClient emits; `on(event, listener)` returns the unsubscribe function. */
export interface ProgressClientEvents {
  progress_update: [ProgressUpdate, MessageMeta];
  queue_update: [QueueUpdate, MessageMeta];
  processing_complete: [ProcessingComplete, MessageMeta];
  processing_error: [ProcessingError, MessageMeta];
  snapshot: [Snapshot];
  replay_complete: [ReplayComplete];
  /** Every stored message, whatever its type, once. */
  message: [SequencedMessage, MessageMeta];
  /** The connection state changed. */
  state: [ConnectionState];
  /** The job views changed (newest first). */
  jobs: [readonly JobView[]];
  /** Something went wrong that the client handles itself (for logs). */
  error: [ClientErrorInfo];
}

export interface ProgressClientOptions {
  /** Returns a valid access token; called for every connection attempt (so reconnects get a fresh one). */
  getToken: () => Promise<string>;
  /** The user id; by default the token's `sub` claim (the server decides from the token alone). */
  userId?: string;
  /** Origin of the Socket.IO server and the HTTP API; default: the page's own origin. */
  url?: string;
  /** Socket.IO path; default `/socket.io/`. */
  path?: string;
  /** Socket.IO transports; default WebSocket with Socket.IO's own long-polling fallback. */
  transports?: Transport[];
  /** Where `lastSeq`/`epoch` and job views are kept; default `localStorage`, `null` for none. */
  storage?: StorageLike | null;
  /** `fetch` for the HTTP API and the polling fallback; default the global one. */
  fetch?: typeof fetch;
  /** Debounce of `ack` (ms); default 500. */
  ackDebounceMs?: number;
  /** Interval of the HTTP fallback (ms); default 3000. */
  pollIntervalMs?: number;
  /** Switch to the HTTP fallback after this many failed connection attempts in a row; default 2. */
  fallbackAfterFailures?: number;
  /** ...or when not connected for this long (ms); default 8000. */
  fallbackAfterMs?: number;
  /** `false` disables the HTTP fallback. */
  fallback?: boolean;
  /** Socket.IO reconnection backoff (ms): first delay, default 1000. */
  reconnectionDelay?: number;
  /** Socket.IO reconnection backoff (ms): cap, default 10000. */
  reconnectionDelayMax?: number;
  /** Socket.IO reconnection jitter (0-1), default 0.5. */
  randomizationFactor?: number;
  /** Time allowed for one connection attempt (ms); default 10000. */
  connectTimeoutMs?: number;
  /** Time allowed between a (re)connect or `resume` and its `replay_complete` (ms); default 15000. */
  replayTimeoutMs?: number;
  /** Time allowed for one HTTP request (ms); default 10000. */
  requestTimeoutMs?: number;
  /** Jobs kept (all active ones plus the newest finished); default 100. */
  maxJobs?: number;
}

/** An HTTP API error (`{"error": CODE, "message": TEXT, "fields"?}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string[]> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ClientStats {
  duplicatesDropped: number;
  resumesSent: number;
  acksSent: number;
  polls: number;
}

const TOKEN_REUSE_MS = 2000;

function withJitter(ms: number, factor: number): number {
  const spread = ms * factor;
  return Math.max(0, Math.round(ms - spread + Math.random() * 2 * spread));
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

export class ProgressClient extends Emitter<ProgressClientEvents> {
  private readonly opts: Required<
    Omit<ProgressClientOptions, 'userId' | 'url' | 'transports' | 'storage' | 'fetch'>
  >;
  private readonly baseUrl: string;
  private readonly transports: Transport[] | undefined;
  private readonly storage: StorageLike | null;
  private readonly fetchImpl: typeof fetch;

  private userIdValue: string | null;
  private socket: Socket | null = null;
  private running = false;
  /** Bumped by stop(): an async step started before it must not act after it. */
  private generation = 0;

  private stateValue: ConnectionState = 'offline';
  private jobMap: JobMap = new Map();
  private jobList: readonly JobView[] = [];

  /** Contiguous watermark: every seq <= lastSeq was processed (or compacted away). */
  private lastSeqValue: number | null = null;
  private epochValue: string | null = null;
  /** seqs processed above the watermark (a gap below them). */
  private readonly above = new Set<number>();
  /** After a snapshot, until replay_complete: queued messages at or below it are history. */
  private historyBoundary: number | null = null;
  private readonly historySeen = new Set<number>();
  /** Between a (re)connect or resume and its replay_complete: gaps are compaction, not loss. */
  private replayPending = false;
  private resumePending = false;
  private lastAcked = -1;

  private token: string | null = null;
  private tokenAt = 0;

  private failures = 0;
  private refusals = 0;
  private fallbackActive = false;
  private lastPollOk = false;
  private pollAbort: AbortController | null = null;

  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private persistTimer: ReturnType<typeof setTimeout> | null = null;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private replayTimer: ReturnType<typeof setTimeout> | null = null;
  private manualTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly cleanups: Array<() => void> = [];

  readonly stats: ClientStats = { duplicatesDropped: 0, resumesSent: 0, acksSent: 0, polls: 0 };

  constructor(options: ProgressClientOptions) {
    super();
    if (typeof options.getToken !== 'function') throw new TypeError('ProgressClient: getToken is required');
    this.opts = {
      getToken: options.getToken,
      path: options.path ?? '/socket.io/',
      ackDebounceMs: options.ackDebounceMs ?? 500,
      pollIntervalMs: options.pollIntervalMs ?? 3000,
      fallbackAfterFailures: options.fallbackAfterFailures ?? 2,
      fallbackAfterMs: options.fallbackAfterMs ?? 8000,
      fallback: options.fallback ?? true,
      reconnectionDelay: options.reconnectionDelay ?? 1000,
      reconnectionDelayMax: options.reconnectionDelayMax ?? 10000,
      randomizationFactor: options.randomizationFactor ?? 0.5,
      connectTimeoutMs: options.connectTimeoutMs ?? 10000,
      replayTimeoutMs: options.replayTimeoutMs ?? 15000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10000,
      maxJobs: options.maxJobs ?? 100,
    };
    this.baseUrl = trimSlash(options.url ?? '');
    this.transports = options.transports;
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.userIdValue = options.userId ?? null;
    if (this.userIdValue) this.restore(this.userIdValue);
  }

  // ---------------------------------------------------------------- public surface

  get state(): ConnectionState {
    return this.stateValue;
  }
  /** The user id (known once a token was read or when given). */
  get userId(): string | null {
    return this.userIdValue;
  }
  /** The cursor that the next connection sends. */
  get cursor(): { lastSeq: number | null; epoch: string | null } {
    return { lastSeq: this.lastSeqValue, epoch: this.epochValue };
  }
  get isRunning(): boolean {
    return this.running;
  }
  /** The underlying Socket.IO socket while running (for diagnostics). */
  get rawSocket(): Socket | null {
    return this.socket;
  }

  /** Job views, newest first (the same array until something changes). */
  getJobs(): readonly JobView[] {
    return this.jobList;
  }
  getJob(jobId: string): JobView | undefined {
    return this.jobMap.get(jobId);
  }
  getState(): ConnectionState {
    return this.stateValue;
  }

  /**
   * Connects (idempotent). The connection itself starts on a later tick, so a start() undone by
   * stop() in the same tick (React StrictMode's mount-unmount-mount) opens no socket.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    const generation = ++this.generation;
    this.setState('reconnecting');
    void this.boot(generation);
  }

  /** Disconnects, stops polling and every timer, removes the listeners it added, saves state. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    for (const timer of [this.ackTimer, this.fallbackTimer, this.pollTimer, this.replayTimer, this.manualTimer]) {
      if (timer) clearTimeout(timer);
    }
    this.ackTimer = this.fallbackTimer = this.pollTimer = this.replayTimer = this.manualTimer = null;
    this.stopFallback();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    while (this.cleanups.length) this.cleanups.pop()?.();
    this.flushPersist();
    this.replayPending = this.resumePending = false;
    this.historyBoundary = null;
    this.setState('offline');
  }

  /** Forgets what was stored for this user (e.g. on sign-out). */
  clearStoredState(): void {
    if (this.userIdValue) clearStream(this.storage, this.userIdValue);
    this.lastSeqValue = null;
    this.epochValue = null;
    this.above.clear();
    this.lastAcked = -1;
    this.setJobs(new Map());
  }

  /** `POST /api/jobs`; the job shows at once (queued) and is then kept current by messages. */
  async submitJob(videoUrl: string, title?: string): Promise<SubmitResponse> {
    const body: Record<string, string> = { videoUrl };
    if (title) body.title = title;
    const data = (await this.request('/api/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })) as SubmitResponse;
    this.setJobs(applySubmitted(this.jobMap, data, videoUrl, title));
    this.schedulePersist();
    return data;
  }

  /** `POST /api/jobs/{jobId}/cancel`. */
  async cancelJob(jobId: string): Promise<void> {
    await this.request(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: 'POST' });
  }

  /** `GET /api/jobs/{jobId}`. */
  async fetchJob(jobId: string): Promise<JobState> {
    return (await this.request(`/api/jobs/${encodeURIComponent(jobId)}`, { method: 'GET' })) as JobState;
  }

  // ---------------------------------------------------------------- start-up

  private async boot(generation: number): Promise<void> {
    await Promise.resolve();
    if (generation !== this.generation) return;
    if (!this.userIdValue) {
      try {
        const token = await this.freshToken();
        if (generation !== this.generation) return;
        const sub = tokenSubject(token);
        if (!sub) throw new Error('the token has no sub claim; pass userId');
        this.userIdValue = sub;
        this.restore(sub);
      } catch (error) {
        if (generation !== this.generation) return;
        this.emit('error', { source: 'token', message: String(error), cause: error });
        // Retry the whole start-up later; nothing can be named without a user id.
        this.manualTimer = setTimeout(() => {
          if (generation === this.generation) void this.boot(generation);
        }, withJitter(this.opts.reconnectionDelayMax, this.opts.randomizationFactor));
        return;
      }
    }
    this.listenToPage();
    this.openSocket();
  }

  private restore(userId: string): void {
    const stored = loadStream(this.storage, userId);
    this.lastSeqValue = stored.lastSeq;
    this.epochValue = stored.epoch;
    const map = new Map<string, JobView>();
    for (const job of stored.jobs) map.set(job.jobId, job);
    this.setJobs(map);
  }

  private openSocket(): void {
    const options = {
      path: this.opts.path,
      autoConnect: false,
      // A client of its own: two providers never share (and never close) one connection.
      forceNew: true,
      reconnection: true,
      reconnectionDelay: this.opts.reconnectionDelay,
      reconnectionDelayMax: this.opts.reconnectionDelayMax,
      randomizationFactor: this.opts.randomizationFactor,
      timeout: this.opts.connectTimeoutMs,
      ...(this.transports ? { transports: this.transports } : {}),
      auth: (cb: (data: object) => void) => {
        void this.authPayload().then(cb);
      },
    };
    const socket = this.baseUrl ? io(this.baseUrl, options) : io(options);
    this.socket = socket;
    // Every handler is in place before connecting: the server's replay is emitted from its connect
    // handler and arrives before socket.io-client's own `connect` event.
    for (const type of SEQUENCED_TYPES) {
      socket.on(type, (payload: unknown) => this.onSequenced(payload, 'socket'));
    }
    socket.on('snapshot', (payload: unknown) => this.onSnapshot(payload));
    socket.on('replay_complete', (payload: unknown) => this.onReplayComplete(payload));
    socket.on('connect', () => this.onConnect());
    socket.on('disconnect', (reason) => this.onDisconnect(reason));
    socket.on('connect_error', (err) => this.onConnectError(err));
    this.armFallbackTimer();
    socket.connect();
  }

  /** Browser niceties: catch up at once when the network or the tab comes back; save on leave. */
  private listenToPage(): void {
    const w = globalThis as unknown as Partial<Window>;
    if (typeof w.addEventListener !== 'function' || typeof w.removeEventListener !== 'function') return;
    const add = (target: Pick<Window, 'addEventListener' | 'removeEventListener'>, type: string, fn: () => void) => {
      target.addEventListener(type, fn);
      this.cleanups.push(() => target.removeEventListener(type, fn));
    };
    const win = w as Window;
    add(win, 'online', () => this.wakeUp());
    add(win, 'pagehide', () => this.flushPersist());
    if (typeof document !== 'undefined') {
      add(document as unknown as Window, 'visibilitychange', () => {
        if (document.visibilityState === 'visible') this.wakeUp();
        else this.flushPersist();
      });
    }
  }

  /** Skips the remaining backoff: the page says the network or the tab is back. */
  private wakeUp(): void {
    if (!this.running) return;
    if (this.fallbackActive) this.pollSoon(0);
    const socket = this.socket;
    if (socket && !socket.connected) {
      socket.disconnect();
      socket.connect();
    }
  }

  // ---------------------------------------------------------------- tokens and HTTP

  private async freshToken(): Promise<string> {
    const token = await this.opts.getToken();
    if (typeof token !== 'string' || !token) throw new Error('getToken() returned no token');
    this.token = token;
    this.tokenAt = Date.now();
    return token;
  }

  private async connectToken(): Promise<string> {
    // The token read at start-up to learn the user id is reused for the first attempt only.
    if (this.token && Date.now() - this.tokenAt < TOKEN_REUSE_MS) {
      const token = this.token;
      this.tokenAt = 0;
      return token;
    }
    return this.freshToken();
  }

  private async authPayload(): Promise<object> {
    // A replay precedes any live message on every new connection.
    this.replayPending = true;
    this.resumePending = false;
    this.armReplayTimer();
    const payload: { token?: string; lastSeq?: number; epoch?: string } = {};
    try {
      payload.token = await this.connectToken();
    } catch (error) {
      // Sent without a token, the attempt is refused as unauthorized and retried with backoff.
      this.emit('error', { source: 'token', message: String(error), cause: error });
    }
    if (this.lastSeqValue !== null && this.epochValue !== null) {
      payload.lastSeq = this.lastSeqValue;
      payload.epoch = this.epochValue;
    }
    return payload;
  }

  /**
   * One authorized JSON request: `Authorization: Bearer`, one retry with a fresh token on 401, a
   * time limit, errors as ApiError. Resolves with the parsed body (undefined when empty).
   */
  private async request(path: string, init: RequestInit, signal?: AbortSignal): Promise<unknown> {
    const attempt = async (token: string): Promise<{ res: Response; text: string }> => {
      const headers = new Headers(init.headers);
      headers.set('Authorization', `Bearer ${token}`);
      headers.set('Accept', 'application/json');
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('request timed out')), this.opts.requestTimeoutMs);
      const forward = (): void => controller.abort(signal?.reason);
      signal?.addEventListener('abort', forward, { once: true });
      try {
        const res = await this.fetchImpl(this.baseUrl + path, { ...init, headers, signal: controller.signal });
        return { res, text: await res.text() };
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', forward);
      }
    };
    let { res, text } = await attempt(this.token ?? (await this.freshToken()));
    if (res.status === 401) ({ res, text } = await attempt(await this.freshToken()));
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) {
      const err = (typeof body === 'object' && body !== null ? body : {}) as {
        error?: string;
        message?: string;
        fields?: Record<string, string[]>;
      };
      throw new ApiError(res.status, err.error ?? `http_${res.status}`, err.message ?? (res.statusText || `HTTP ${res.status}`), err.fields ?? {});
    }
    return body;
  }

  // ---------------------------------------------------------------- Socket.IO events

  private onConnect(): void {
    this.failures = 0;
    this.refusals = 0;
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
    this.stopFallback();
    this.setState('connected');
    this.scheduleAck();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    if (!this.running) return;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.replayPending = false;
    this.resumePending = false;
    this.setState(this.fallbackActive ? (this.lastPollOk ? 'polling' : 'offline') : 'reconnecting');
    this.armFallbackTimer();
    // Socket.IO reconnects by itself except after the server's or our own disconnect.
    if (reason === 'io server disconnect') this.scheduleManualReconnect(false);
  }

  private onConnectError(err: Error): void {
    if (!this.running) return;
    this.failures++;
    this.replayPending = false;
    this.emit('error', { source: 'connect', message: err.message, cause: err });
    const socket = this.socket;
    if (socket && !socket.active) {
      // Refused by the server (unauthorized, too_many_connections): Socket.IO gives up, we do not.
      const crowded = err.message === 'too_many_connections';
      if (err.message === 'unauthorized') this.token = null;
      if (crowded) this.startFallback();
      this.scheduleManualReconnect(crowded);
    } else if (this.failures >= this.opts.fallbackAfterFailures) {
      this.startFallback();
    }
    if (!this.fallbackActive) this.setState('reconnecting');
  }

  private scheduleManualReconnect(crowded: boolean): void {
    if (this.manualTimer) clearTimeout(this.manualTimer);
    this.refusals++;
    const { reconnectionDelay, reconnectionDelayMax, randomizationFactor } = this.opts;
    const first = crowded ? reconnectionDelay * 5 : reconnectionDelay;
    const cap = crowded ? reconnectionDelayMax * 3 : reconnectionDelayMax;
    const delay = withJitter(Math.min(cap, first * 2 ** Math.min(this.refusals - 1, 10)), randomizationFactor);
    const generation = this.generation;
    this.manualTimer = setTimeout(() => {
      this.manualTimer = null;
      if (generation === this.generation && this.socket && !this.socket.active) this.socket.connect();
    }, delay);
  }

  private onSnapshot(payload: unknown): void {
    if (!isSnapshot(payload)) {
      this.emit('error', { source: 'message', message: 'malformed snapshot', cause: payload });
      return;
    }
    // Same stream and not behind us: jobs newer than the snapshot may be kept. Otherwise (another
    // epoch, or a server that lost messages) the snapshot is the whole truth.
    const sameStream =
      this.epochValue === payload.epoch && (this.lastSeqValue === null || payload.lastSeq >= this.lastSeqValue);
    if (this.epochValue !== payload.epoch) this.lastAcked = -1;
    this.setJobs(applySnapshot(this.jobMap, payload, sameStream));
    this.epochValue = payload.epoch;
    this.lastSeqValue = payload.lastSeq;
    if (sameStream) {
      for (const seq of this.above) if (seq <= payload.lastSeq) this.above.delete(seq);
    } else {
      this.above.clear();
    }
    this.advanceWatermark();
    this.historyBoundary = payload.lastSeq;
    this.historySeen.clear();
    this.schedulePersist();
    this.emit('snapshot', payload);
  }

  private onReplayComplete(payload: unknown): void {
    if (!isReplayComplete(payload)) return;
    this.replayPending = false;
    this.resumePending = false;
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = null;
    if (typeof payload.epoch === 'string' && payload.epoch && payload.epoch !== this.epochValue) {
      // Another stream without a snapshot before it: our cursor means nothing there.
      this.epochValue = payload.epoch;
      this.lastSeqValue = null;
      this.above.clear();
      this.lastAcked = -1;
    }
    // Every seq up to toSeq was sent or compacted away.
    if (typeof payload.toSeq === 'number' && (this.lastSeqValue === null || payload.toSeq > this.lastSeqValue)) {
      this.lastSeqValue = payload.toSeq;
    }
    if (this.lastSeqValue !== null) {
      for (const seq of this.above) if (seq <= this.lastSeqValue) this.above.delete(seq);
    }
    this.advanceWatermark();
    this.historyBoundary = null;
    this.historySeen.clear();
    this.schedulePersist();
    this.scheduleAck();
    this.emit('replay_complete', payload);
    // A hole that the replay did not fill (messages seen above it) is asked for again.
    if (this.above.size > 0) this.sendResume();
  }

  private onSequenced(payload: unknown, via: 'socket' | 'http'): void {
    if (!isSequencedMessage(payload)) {
      this.emit('error', { source: 'message', message: 'malformed message', cause: payload });
      return;
    }
    const msg = payload;
    const seq = msg.seq;

    if (via === 'socket' && this.historyBoundary !== null && seq <= this.historyBoundary) {
      // The offline queue after a snapshot: history, the snapshot already reflects it.
      if (this.historySeen.has(seq)) {
        this.stats.duplicatesDropped++;
        return;
      }
      this.historySeen.add(seq);
      this.deliver(msg, { via, history: true, replayed: true });
      this.scheduleAck();
      return;
    }
    if ((this.lastSeqValue !== null && seq <= this.lastSeqValue) || this.above.has(seq)) {
      this.stats.duplicatesDropped++;
      return;
    }
    const live = via === 'socket' && !this.replayPending;
    const gap = live && this.lastSeqValue !== null && seq > this.lastSeqValue + 1;

    this.deliver(msg, { via, history: false, replayed: !live });
    if (this.lastSeqValue === null) this.lastSeqValue = seq;
    else this.above.add(seq);
    this.advanceWatermark();
    this.schedulePersist();
    this.scheduleAck();
    if (gap) this.sendResume();
  }

  private deliver(msg: SequencedMessage, meta: MessageMeta): void {
    const next = applyMessage(this.jobMap, msg);
    if (next !== this.jobMap) this.setJobs(next);
    switch (msg.type) {
      case 'progress_update':
        this.emit('progress_update', msg, meta);
        break;
      case 'queue_update':
        this.emit('queue_update', msg, meta);
        break;
      case 'processing_complete':
        this.emit('processing_complete', msg, meta);
        break;
      case 'processing_error':
        this.emit('processing_error', msg, meta);
        break;
    }
    this.emit('message', msg, meta);
  }

  private advanceWatermark(): void {
    if (this.lastSeqValue === null) return;
    while (this.above.has(this.lastSeqValue + 1)) {
      this.lastSeqValue++;
      this.above.delete(this.lastSeqValue);
    }
  }

  private sendResume(): void {
    const socket = this.socket;
    if (!socket?.connected || this.resumePending || this.lastSeqValue === null || this.epochValue === null) return;
    this.resumePending = true;
    this.replayPending = true;
    this.armReplayTimer();
    const payload: ResumePayload = { lastSeq: this.lastSeqValue, epoch: this.epochValue };
    this.stats.resumesSent++;
    socket.emit('resume', payload);
  }

  private armReplayTimer(): void {
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = setTimeout(() => {
      // No replay_complete: treat what came as live from now on, so gaps are noticed again.
      this.replayTimer = null;
      this.replayPending = false;
      this.resumePending = false;
    }, this.opts.replayTimeoutMs);
  }

  private scheduleAck(): void {
    if (this.ackTimer || !this.running) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.flushAck();
    }, this.opts.ackDebounceMs);
  }

  private flushAck(): void {
    const socket = this.socket;
    const seq = this.lastSeqValue;
    if (!socket?.connected || seq === null || seq <= this.lastAcked) return;
    const payload: AckPayload = { seq };
    socket.emit('ack', payload);
    this.lastAcked = seq;
    this.stats.acksSent++;
  }

  // ---------------------------------------------------------------- HTTP polling fallback

  private armFallbackTimer(): void {
    if (this.fallbackTimer || !this.opts.fallback) return;
    this.fallbackTimer = setTimeout(() => {
      this.fallbackTimer = null;
      if (this.running && !this.socket?.connected) this.startFallback();
    }, this.opts.fallbackAfterMs);
  }

  private startFallback(): void {
    if (!this.opts.fallback || this.fallbackActive || !this.running || this.socket?.connected) return;
    this.fallbackActive = true;
    this.lastPollOk = false;
    this.pollSoon(0);
  }

  private stopFallback(): void {
    this.fallbackActive = false;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.pollAbort?.abort();
    this.pollAbort = null;
  }

  private pollSoon(delay: number): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      void this.pollOnce();
    }, delay);
  }

  private async pollOnce(): Promise<void> {
    if (!this.fallbackActive || !this.userIdValue || this.pollAbort) return;
    const abort = new AbortController();
    this.pollAbort = abort;
    const generation = this.generation;
    let ok = false;
    try {
      const params = new URLSearchParams();
      if (this.lastSeqValue !== null && this.epochValue !== null) {
        params.set('since', String(this.lastSeqValue));
        params.set('epoch', this.epochValue);
      }
      const query = params.toString() ? `?${params.toString()}` : '';
      const path = `/api/processing/status-all/${encodeURIComponent(this.userIdValue)}${query}`;
      const body = await this.request(path, { method: 'GET' }, abort.signal);
      if (generation !== this.generation || abort.signal.aborted) return;
      if (!isStatusAllResponse(body)) throw new Error('malformed status-all answer');
      this.stats.polls++;
      this.onStatusAll(body, query !== '');
      ok = true;
    } catch (error) {
      if (abort.signal.aborted || generation !== this.generation) return;
      this.emit('error', { source: 'poll', message: String(error), cause: error });
    } finally {
      if (this.pollAbort === abort) this.pollAbort = null;
    }
    if (!this.fallbackActive || generation !== this.generation) return;
    this.lastPollOk = ok;
    if (!this.socket?.connected) this.setState(ok ? 'polling' : 'offline');
    this.pollSoon(this.opts.pollIntervalMs);
  }

  private onStatusAll(body: StatusAllResponse, incremental: boolean): void {
    const epochChanged = body.epoch != null && this.epochValue !== null && body.epoch !== this.epochValue;
    const messages = body.messages
      .filter((m): m is SequencedMessage => isSequencedMessage(m))
      .sort((a, b) => a.seq - b.seq);
    if (epochChanged) {
      // A new stream: what we showed belongs to one that no longer exists.
      this.setJobs(new Map());
      this.lastAcked = -1;
    }
    if (!incremental || epochChanged || body.recovered === false) {
      // The latest message of each job: state to show, not news to announce.
      this.lastSeqValue = null;
      this.above.clear();
      for (const msg of messages) this.deliver(msg, { via: 'http', history: true, replayed: true });
    } else {
      for (const msg of messages) this.onSequenced(msg, 'http');
    }
    if (typeof body.epoch === 'string') this.epochValue = body.epoch;
    const top = typeof body.lastSeq === 'number' ? body.lastSeq : (messages.at(-1)?.seq ?? null);
    if (top !== null && (this.lastSeqValue === null || top > this.lastSeqValue)) this.lastSeqValue = top;
    if (this.lastSeqValue !== null) {
      for (const seq of this.above) if (seq <= this.lastSeqValue) this.above.delete(seq);
    }
    this.advanceWatermark();
    this.schedulePersist();
  }

  // ---------------------------------------------------------------- state, jobs, persistence

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private setJobs(map: JobMap): void {
    this.jobMap = pruneJobs(map, this.opts.maxJobs);
    this.jobList = sortJobs(this.jobMap);
    this.emit('jobs', this.jobList);
  }

  private schedulePersist(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => this.flushPersist(), 200);
  }

  private flushPersist(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    if (!this.userIdValue) return;
    saveStream(this.storage, this.userIdValue, {
      lastSeq: this.lastSeqValue,
      epoch: this.epochValue,
      jobs: [...this.jobList],
    });
  }
}
