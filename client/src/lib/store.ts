/**
 * The job views one client shows, and their storage together with the cursor they describe
 * (persist.ts): saved at most 200 ms after a change, at once by `save()`, loaded per user.
 */
import type { SeqCursor } from './cursor.js';
import { normalizeJob, pruneJobs, sortJobs, type JobMap, type JobView } from './jobs.js';
import { clearStream, loadStream, saveStream, type StorageLike } from './persist.js';
import { Timer } from './timer.js';

const SAVE_DELAY_MS = 200;

export class JobStore {
  private mapValue: JobMap = new Map();
  private listValue: readonly JobView[] = [];
  private readonly saveTimer = new Timer();

  /** `userId()`: whose storage item to use (none: nothing is stored). */
  constructor(
    private readonly storage: StorageLike | null,
    private readonly maxJobs: number,
    private readonly cursor: SeqCursor,
    private readonly userId: () => string | null,
  ) {}

  get map(): JobMap {
    return this.mapValue;
  }
  /** Newest first (the same array until something changes). */
  get list(): readonly JobView[] {
    return this.listValue;
  }

  /** Replaces the views, keeping `maxJobs` of them; returns the new list. */
  set(map: JobMap): readonly JobView[] {
    this.mapValue = pruneJobs(map, this.maxJobs);
    this.listValue = sortJobs(this.mapValue);
    return this.listValue;
  }

  /** What was stored for `userId`: its cursor goes to the SeqCursor, its job views are returned. */
  load(userId: string): JobMap {
    const stored = loadStream(this.storage, userId);
    this.cursor.restore(stored.lastSeq, stored.epoch);
    const map = new Map<string, JobView>();
    for (const job of stored.jobs) map.set(job.jobId, normalizeJob(job));
    return map;
  }

  scheduleSave(): void {
    this.saveTimer.ensure(SAVE_DELAY_MS, () => this.save());
  }

  save(): void {
    this.saveTimer.clear();
    const userId = this.userId();
    if (!userId) return;
    saveStream(this.storage, userId, { lastSeq: this.cursor.lastSeq, epoch: this.cursor.epoch, jobs: [...this.listValue] });
  }

  /** Removes the stored item. */
  clear(): void {
    const userId = this.userId();
    if (userId) clearStream(this.storage, userId);
  }
}
