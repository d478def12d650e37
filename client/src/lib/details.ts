/**
 * Asks `GET /api/jobs/{id}` about jobs this client learned of from messages alone (submitted on
 * another device, say), whose messages do not carry the video's URL or the submit time. A little
 * later than first seen (the tab's own submit answer usually fills them first), each job at most
 * once, a few at a time.
 */
import type { JobState } from './messages.js';
import { Timer } from './timer.js';

export interface DetailsHost {
  /** Whether the job still lacks its details (it may have got them meanwhile). */
  wanted(jobId: string): boolean;
  fetch(jobId: string): Promise<JobState>;
  apply(state: JobState): void;
}

export class DetailsFetcher {
  private readonly asked = new Set<string>();
  private readonly queue: string[] = [];
  private readonly timer = new Timer();
  private running = 0;
  private generation = 0;

  constructor(
    private readonly host: DetailsHost,
    private readonly delayMs = 1500,
    private readonly concurrency = 2,
    private readonly maxJobs = 200,
  ) {}

  want(jobId: string): void {
    if (this.asked.has(jobId) || this.asked.size >= this.maxJobs) return;
    this.asked.add(jobId);
    this.queue.push(jobId);
    this.timer.ensure(this.delayMs, () => this.pump());
  }

  stop(): void {
    this.generation++;
    this.timer.clear();
    this.queue.length = 0;
    this.running = 0;
  }

  private pump(): void {
    const generation = this.generation;
    while (this.running < this.concurrency && this.queue.length) {
      const jobId = this.queue.shift()!;
      if (!this.host.wanted(jobId)) continue;
      this.running++;
      this.host
        .fetch(jobId)
        .then((state) => {
          if (generation === this.generation) this.host.apply(state);
        })
        .catch(() => {
          // Not essential: the card simply shows no link.
        })
        .finally(() => {
          if (generation !== this.generation) return;
          this.running--;
          this.pump();
        });
    }
  }
}
