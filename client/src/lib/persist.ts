/**
 * Per-user persistence of the stream cursor (`lastSeq`, `epoch`) together with the job views it
 * describes, so that a reload resumes from `lastSeq` and still shows the jobs that had no news since.
 * Both are written in one item, so the stored cursor never runs ahead of the stored state.
 */
import type { JobView } from './jobs.js';

/** The subset of the Web Storage API the client uses (localStorage, or a stand-in in tests). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface PersistedStream {
  lastSeq: number | null;
  epoch: string | null;
  jobs: JobView[];
}

const PREFIX = 'realtime:v1:';

export function storageKey(userId: string): string {
  return PREFIX + userId;
}

/** `globalThis.localStorage` when usable (absent in Node, may throw in private modes). */
export function defaultStorage(): StorageLike | null {
  try {
    const storage = (globalThis as { localStorage?: StorageLike }).localStorage;
    if (!storage) return null;
    const probe = `${PREFIX}probe`;
    storage.setItem(probe, '1');
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

export function loadStream(storage: StorageLike | null, userId: string): PersistedStream {
  const empty: PersistedStream = { lastSeq: null, epoch: null, jobs: [] };
  if (!storage) return empty;
  try {
    const raw = storage.getItem(storageKey(userId));
    if (!raw) return empty;
    const data: unknown = JSON.parse(raw);
    if (typeof data !== 'object' || data === null) return empty;
    const { lastSeq, epoch, jobs } = data as Partial<PersistedStream>;
    const validCursor = Number.isInteger(lastSeq) && typeof epoch === 'string';
    return {
      lastSeq: validCursor ? (lastSeq as number) : null,
      epoch: validCursor ? (epoch as string) : null,
      // Jobs are only trusted together with the cursor they belong to.
      jobs: validCursor && Array.isArray(jobs) ? jobs.filter((j) => j && typeof j.jobId === 'string') : [],
    };
  } catch {
    return empty;
  }
}

export function saveStream(storage: StorageLike | null, userId: string, stream: PersistedStream): void {
  if (!storage) return;
  try {
    storage.setItem(storageKey(userId), JSON.stringify(stream));
  } catch {
    // Quota exceeded or storage disabled: the next connection falls back to a snapshot.
  }
}

export function clearStream(storage: StorageLike | null, userId: string): void {
  try {
    storage?.removeItem(storageKey(userId));
  } catch {
    // ignore
  }
}

/** An in-memory StorageLike (tests, or apps that want no persistence across reloads). */
export class MemoryStorage implements StorageLike {
  private readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}
