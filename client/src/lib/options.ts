/** The options of a ProgressClient and their defaults. */
import { defaultStorage, type StorageLike } from './persist.js';

export type Transport = 'polling' | 'websocket' | 'webtransport';

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
  /** Jobs kept (all active ones plus the newest finished); default 500. */
  maxJobs?: number;
}

/** The options with every default filled in. */
export interface ResolvedOptions
  extends Required<Omit<ProgressClientOptions, 'userId' | 'url' | 'transports' | 'storage' | 'fetch'>> {
  /** `url` without a trailing slash ('' for the page's own origin). */
  baseUrl: string;
  transports: Transport[] | undefined;
  storage: StorageLike | null;
  fetch: typeof fetch;
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

export function resolveOptions(options: ProgressClientOptions): ResolvedOptions {
  if (typeof options.getToken !== 'function') throw new TypeError('ProgressClient: getToken is required');
  return {
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
    maxJobs: options.maxJobs ?? 500,
    baseUrl: trimSlash(options.url ?? ''),
    transports: options.transports,
    storage: options.storage === undefined ? defaultStorage() : options.storage,
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
  };
}
