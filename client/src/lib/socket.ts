/**
 * The Socket.IO connection: its options, every handler in place before connecting, and the backoff
 * for the retries Socket.IO leaves to us (after a refusal by the server).
 */
import { io, type Socket } from 'socket.io-client';
import { SEQUENCED_TYPES } from './messages.js';
import type { ResolvedOptions } from './options.js';

export interface SocketHandlers {
  /** The handshake's `auth` payload, built anew for every connection attempt. */
  auth(): Promise<object>;
  sequenced(payload: unknown): void;
  snapshot(payload: unknown): void;
  replayComplete(payload: unknown): void;
  connect(): void;
  disconnect(reason: Socket.DisconnectReason): void;
  connectError(err: Error): void;
}

/** A socket of its own with every handler attached, not connected yet. */
export function createSocket(opts: ResolvedOptions, on: SocketHandlers): Socket {
  const options = {
    path: opts.path,
    autoConnect: false,
    // A client of its own: two providers never share (and never close) one connection.
    forceNew: true,
    reconnection: true,
    reconnectionDelay: opts.reconnectionDelay,
    reconnectionDelayMax: opts.reconnectionDelayMax,
    randomizationFactor: opts.randomizationFactor,
    timeout: opts.connectTimeoutMs,
    ...(opts.transports ? { transports: opts.transports } : {}),
    auth: (cb: (data: object) => void) => {
      void on.auth().then(cb);
    },
  };
  const socket = opts.baseUrl ? io(opts.baseUrl, options) : io(options);
  // Every handler is in place before connecting: the server's replay is emitted from its connect
  // handler and arrives before socket.io-client's own `connect` event.
  for (const type of SEQUENCED_TYPES) {
    socket.on(type, (payload: unknown) => on.sequenced(payload));
  }
  socket.on('snapshot', (payload: unknown) => on.snapshot(payload));
  socket.on('replay_complete', (payload: unknown) => on.replayComplete(payload));
  socket.on('connect', () => on.connect());
  socket.on('disconnect', (reason) => on.disconnect(reason));
  socket.on('connect_error', (err) => on.connectError(err));
  return socket;
}

export function withJitter(ms: number, factor: number): number {
  const spread = ms * factor;
  return Math.max(0, Math.round(ms - spread + Math.random() * 2 * spread));
}

/**
 * The wait before reconnecting after the `refusals`-th refusal in a row: exponential with jitter,
 * five times slower to start (and three times the cap) when the server said too_many_connections.
 */
export function refusalDelay(
  refusals: number,
  crowded: boolean,
  opts: Pick<ResolvedOptions, 'reconnectionDelay' | 'reconnectionDelayMax' | 'randomizationFactor'>,
): number {
  const { reconnectionDelay, reconnectionDelayMax, randomizationFactor } = opts;
  const first = crowded ? reconnectionDelay * 5 : reconnectionDelay;
  const cap = crowded ? reconnectionDelayMax * 3 : reconnectionDelayMax;
  return withJitter(Math.min(cap, first * 2 ** Math.min(refusals - 1, 10)), randomizationFactor);
}
