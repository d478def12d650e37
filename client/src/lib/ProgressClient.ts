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
 *
 * It composes the parts: options (options.ts), the seq cursor (cursor.ts), tokens (token.ts), the
 * HTTP API (http.ts), the Socket.IO connection (socket.ts), the replay window (replay.ts), acks
 * (acks.ts), the polling fallback (polling.ts), page events (page.ts), and the job views with their
 * storage (store.ts). What stays here is the protocol between them and the events it emits.
 */
import type { Socket } from 'socket.io-client';
import { AckScheduler } from './acks.js';
import { SeqCursor } from './cursor.js';
import { Emitter } from './emitter.js';
import { DetailsFetcher } from './details.js';
import type { ClientStats, ConnectionProblem, ConnectionState, MessageMeta, ProgressClientEvents } from './events.js';
import { ApiClient, ApiError } from './http.js';
import { applyDetails, applyMessage, applySnapshot, applySubmitted, dropFinished, type JobMap, type JobView } from './jobs.js';
import { isReplayComplete, isSequencedMessage, isSnapshot } from './messages.js';
import type { JobState, ResumePayload, SequencedMessage, SequencedType, StatusAllResponse, SubmitResponse } from './messages.js';
import { resolveOptions, type ProgressClientOptions, type ResolvedOptions } from './options.js';
import { listenToPage } from './page.js';
import { foldStatusAll, Poller } from './polling.js';
import { ReplayWindow } from './replay.js';
import { createSocket, refusalDelay, withJitter } from './socket.js';
import { JobStore } from './store.js';
import { Timer } from './timer.js';
import { TokenCache, tokenSubject } from './token.js';

export { ApiError } from './http.js';
export type { ClientErrorInfo, ConnectionProblem, ConnectionState, MessageMeta, ProgressClientEvents } from './events.js';
export type { ProgressClientOptions, Transport } from './options.js';

export class ProgressClient extends Emitter<ProgressClientEvents> {
  private readonly opts: ResolvedOptions;
  private readonly tokens: TokenCache;
  private readonly api: ApiClient;
  private readonly seqs = new SeqCursor();
  private readonly poller: Poller;
  private readonly replay: ReplayWindow;
  private readonly acks: AckScheduler;
  private readonly store: JobStore;
  private readonly details: DetailsFetcher;

  private userIdValue: string | null;
  private socket: Socket | null = null;
  private running = false;
  /** Bumped by stop(): an async step started before it must not act after it. */
  private generation = 0;

  private stateValue: ConnectionState = 'offline';
  private problemValue: ConnectionProblem | null = null;
  private unauthorizedInARow = 0;

  private failures = 0;
  private refusals = 0;

  private readonly manualTimer = new Timer();
  private readonly cleanups: Array<() => void> = [];

  readonly stats: ClientStats = { duplicatesDropped: 0, resumesSent: 0, acksSent: 0, polls: 0 };

  constructor(options: ProgressClientOptions) {
    super();
    this.opts = resolveOptions(options);
    this.tokens = new TokenCache(this.opts.getToken);
    const { baseUrl, fetch, requestTimeoutMs } = this.opts;
    this.api = new ApiClient({ baseUrl, fetch, requestTimeoutMs, tokens: this.tokens });
    this.poller = new Poller(
      {
        mayStart: () => this.running && !this.socket?.connected,
        userId: () => this.userIdValue,
        cursor: () => this.cursor,
        request: (path, signal) => this.api.request(path, { method: 'GET' }, signal),
        onAnswer: (body, incremental) => {
          this.stats.polls++;
          this.onStatusAll(body, incremental);
        },
        onError: (error) => {
          // Still 401 after a fresh token: the sign-in itself is no longer accepted.
          if (error instanceof ApiError && error.status === 401) this.setProblem('unauthorized');
          this.emit('error', { source: 'poll', message: String(error), cause: error });
        },
        onPolled: (ok) => {
          if (!this.socket?.connected) this.setState(ok ? 'polling' : 'offline');
        },
      },
      { enabled: this.opts.fallback, intervalMs: this.opts.pollIntervalMs, startAfterMs: this.opts.fallbackAfterMs },
    );
    this.replay = new ReplayWindow(this.opts.replayTimeoutMs);
    this.acks = new AckScheduler(this.opts.ackDebounceMs, this.seqs, (payload) => {
      if (!this.socket?.connected) return false;
      this.socket.emit('ack', payload);
      this.stats.acksSent++;
      return true;
    });
    this.details = new DetailsFetcher({
      wanted: (jobId) => this.getJob(jobId)?.needsDetails ?? false,
      fetch: (jobId) => this.api.fetchJob(jobId),
      apply: (state) => this.setJobs(applyDetails(this.store.map, state), true),
    });
    this.store = new JobStore(this.opts.storage, this.opts.maxJobs, this.seqs, () => this.userIdValue);
    this.userIdValue = options.userId ?? null;
    if (this.userIdValue) this.setJobs(this.store.load(this.userIdValue));
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
    return { lastSeq: this.seqs.lastSeq, epoch: this.seqs.epoch };
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
    return this.store.list;
  }
  getJob(jobId: string): JobView | undefined {
    return this.store.map.get(jobId);
  }
  getState(): ConnectionState {
    return this.stateValue;
  }
  /** A refusal a person can act on (sign in again, close a tab), or null. */
  get problem(): ConnectionProblem | null {
    return this.problemValue;
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
    this.acks.cancel();
    this.manualTimer.clear();
    this.replay.close();
    this.poller.stop();
    this.details.stop();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    while (this.cleanups.length) this.cleanups.pop()?.();
    this.store.save();
    this.seqs.closeHistory();
    this.setState('offline');
  }

  /** Forgets what was stored for this user (e.g. on sign-out). */
  clearStoredState(): void {
    this.store.clear();
    this.seqs.clear();
    this.setJobs(new Map());
  }

  /** `POST /api/jobs`; the job shows at once (queued) and is then kept current by messages. */
  async submitJob(videoUrl: string, title?: string): Promise<SubmitResponse> {
    const data = await this.api.submitJob(videoUrl, title);
    this.setJobs(applySubmitted(this.store.map, data, videoUrl, title));
    this.store.scheduleSave();
    return data;
  }

  /** `POST /api/jobs/{jobId}/cancel`. */
  async cancelJob(jobId: string): Promise<void> {
    await this.api.cancelJob(jobId);
  }

  /**
   * `POST /api/processing/clear-finished`: hides the finished jobs on every tab and device of the user.
   * They go from this client's list at once; the server's fresh snapshot does the same elsewhere.
   */
  async clearFinished(): Promise<number> {
    const { cleared } = await this.api.clearFinished();
    this.setJobs(dropFinished(this.store.map), true);
    return cleared;
  }

  /** `GET /api/jobs/{jobId}`. */
  async fetchJob(jobId: string): Promise<JobState> {
    return this.api.fetchJob(jobId);
  }

  // ---------------------------------------------------------------- start-up

  private async boot(generation: number): Promise<void> {
    await Promise.resolve();
    if (generation !== this.generation) return;
    if (!this.userIdValue) {
      try {
        const token = await this.tokens.fresh();
        if (generation !== this.generation) return;
        const sub = tokenSubject(token);
        if (!sub) throw new Error('the token has no sub claim; pass userId');
        this.userIdValue = sub;
        this.setJobs(this.store.load(sub));
      } catch (error) {
        if (generation !== this.generation) return;
        this.emit('error', { source: 'token', message: String(error), cause: error });
        // Retry the whole start-up later; nothing can be named without a user id.
        this.manualTimer.set(withJitter(this.opts.reconnectionDelayMax, this.opts.randomizationFactor), () => {
          if (generation === this.generation) void this.boot(generation);
        });
        return;
      }
    }
    this.cleanups.push(listenToPage({ wake: () => this.wakeUp(), save: () => this.store.save() }));
    this.openSocket();
  }

  private openSocket(): void {
    const socket = createSocket(this.opts, {
      auth: () => this.authPayload(),
      sequenced: (payload) => this.onSequenced(payload, 'socket'),
      snapshot: (payload) => this.onSnapshot(payload),
      replayComplete: (payload) => this.onReplayComplete(payload),
      connect: () => this.onConnect(),
      disconnect: (reason) => this.onDisconnect(reason),
      connectError: (err) => this.onConnectError(err),
    });
    this.socket = socket;
    this.poller.arm();
    socket.connect();
  }

  /** Skips the remaining backoff: the page says the network or the tab is back. */
  private wakeUp(): void {
    if (!this.running) return;
    this.poller.wake();
    const socket = this.socket;
    if (socket && !socket.connected) {
      socket.disconnect();
      socket.connect();
    }
  }

  private async authPayload(): Promise<object> {
    this.replay.connecting();
    const payload: { token?: string; lastSeq?: number; epoch?: string } = {};
    try {
      payload.token = await this.tokens.forConnection();
    } catch (error) {
      // Sent without a token, the attempt is refused as unauthorized and retried with backoff.
      this.emit('error', { source: 'token', message: String(error), cause: error });
    }
    const { lastSeq, epoch } = this.seqs;
    if (lastSeq !== null && epoch !== null) {
      payload.lastSeq = lastSeq;
      payload.epoch = epoch;
    }
    return payload;
  }

  // ---------------------------------------------------------------- Socket.IO events

  private onConnect(): void {
    this.failures = 0;
    this.refusals = 0;
    this.unauthorizedInARow = 0;
    this.setProblem(null);
    this.poller.stop();
    this.setState('connected');
    this.scheduleAck();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    if (!this.running) return;
    this.acks.cancel();
    this.replay.close();
    this.setState(this.poller.active ? (this.poller.lastOk ? 'polling' : 'offline') : 'reconnecting');
    this.poller.arm();
    // Socket.IO reconnects by itself except after the server's or our own disconnect.
    if (reason === 'io server disconnect') this.scheduleManualReconnect(false);
  }

  private onConnectError(err: Error): void {
    if (!this.running) return;
    this.failures++;
    this.replay.attemptFailed();
    this.emit('error', { source: 'connect', message: err.message, cause: err });
    const socket = this.socket;
    if (socket && !socket.active) {
      // Refused by the server (unauthorized, too_many_connections): Socket.IO gives up, we do not.
      const crowded = err.message === 'too_many_connections';
      if (crowded) this.setProblem('too_many_connections');
      if (err.message === 'unauthorized') {
        this.tokens.drop();
        // Once may be an expired token; again with a fresh one, the sign-in is not accepted.
        if (++this.unauthorizedInARow >= 2) this.setProblem('unauthorized');
      }
      if (crowded) this.poller.start();
      this.scheduleManualReconnect(crowded);
    } else if (this.failures >= this.opts.fallbackAfterFailures) {
      this.poller.start();
    }
    if (!this.poller.active) this.setState('reconnecting');
  }

  private scheduleManualReconnect(crowded: boolean): void {
    this.refusals++;
    const generation = this.generation;
    this.manualTimer.set(refusalDelay(this.refusals, crowded, this.opts), () => {
      if (generation === this.generation && this.socket && !this.socket.active) this.socket.connect();
    });
  }

  private onSnapshot(payload: unknown): void {
    if (!isSnapshot(payload)) {
      this.emit('error', { source: 'message', message: 'malformed snapshot', cause: payload });
      return;
    }
    // Same stream and not behind us: jobs newer than the snapshot may be kept. Otherwise the
    // snapshot is the whole truth.
    const continued = this.seqs.continues(payload.lastSeq, payload.epoch);
    this.setJobs(applySnapshot(this.store.map, payload, continued));
    this.seqs.snapshot(payload.lastSeq, payload.epoch, continued);
    this.store.scheduleSave();
    this.emit('snapshot', payload);
  }

  private onReplayComplete(payload: unknown): void {
    if (!isReplayComplete(payload)) return;
    this.replay.close();
    const epoch = typeof payload.epoch === 'string' && payload.epoch ? payload.epoch : null;
    this.seqs.replayComplete(typeof payload.toSeq === 'number' ? payload.toSeq : null, epoch);
    this.store.scheduleSave();
    this.scheduleAck();
    this.emit('replay_complete', payload);
    // A hole that the replay did not fill (messages seen above it) is asked for again.
    if (this.seqs.hasHoles) this.sendResume();
  }

  private onSequenced(payload: unknown, via: 'socket' | 'http'): void {
    if (!isSequencedMessage(payload)) {
      this.emit('error', { source: 'message', message: 'malformed message', cause: payload });
      return;
    }
    const msg = payload;
    const live = via === 'socket' && !this.replay.pending;
    const verdict = this.seqs.classify(msg.seq, { socket: via === 'socket', live });
    if (verdict === 'duplicate') {
      this.stats.duplicatesDropped++;
      return;
    }
    if (verdict === 'history') {
      // The offline queue after a snapshot: history, the snapshot already reflects it.
      this.seqs.recordHistory(msg.seq);
      this.deliver(msg, { via, history: true, replayed: true });
      this.scheduleAck();
      return;
    }
    this.deliver(msg, { via, history: false, replayed: !live });
    this.seqs.record(msg.seq);
    this.store.scheduleSave();
    this.scheduleAck();
    if (verdict === 'gap') this.sendResume();
  }

  private deliver(msg: SequencedMessage, meta: MessageMeta): void {
    const next = applyMessage(this.store.map, msg);
    if (next !== this.store.map) this.setJobs(next);
    if (!meta.history && next.get(msg.jobId)?.needsDetails) this.details.want(msg.jobId);
    // Each stored type has its own event of the same name (the type guarantees msg matches it).
    this.emit(msg.type, ...([msg, meta] as ProgressClientEvents[SequencedType]));
    this.emit('message', msg, meta);
  }

  private sendResume(): void {
    const socket = this.socket;
    const { lastSeq, epoch } = this.seqs;
    if (!socket?.connected || this.replay.resuming || lastSeq === null || epoch === null) return;
    this.replay.resumed();
    const payload: ResumePayload = { lastSeq, epoch };
    this.stats.resumesSent++;
    socket.emit('resume', payload);
  }

  private scheduleAck(): void {
    if (this.running) this.acks.schedule();
  }

  // ---------------------------------------------------------------- HTTP polling fallback

  private onStatusAll(body: StatusAllResponse, incremental: boolean): void {
    foldStatusAll(body, incremental, this.seqs, {
      reset: () => this.setJobs(new Map()),
      history: (msg) => this.deliver(msg, { via: 'http', history: true, replayed: true }),
      sequenced: (msg) => this.onSequenced(msg, 'http'),
    });
    this.store.scheduleSave();
  }

  // ---------------------------------------------------------------- state and jobs

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private setProblem(problem: ConnectionProblem | null): void {
    if (problem === this.problemValue) return;
    this.problemValue = problem;
    this.emit('problem', problem);
  }

  private setJobs(map: JobMap, save = false): void {
    this.emit('jobs', this.store.set(map));
    if (save) this.store.scheduleSave();
  }
}
