/**
 * What is worth telling a person about their jobs, decided once for toasts and notifications alike:
 * - news as it happens (a live message): one notice each — except a retry that is already moot
 *   (its time has passed, or the job has moved on by the time it is announced);
 * - history (a replay after a reconnect or a reload, the offline queue, a poll after the service
 *   was out of reach): folded into one summary, "While you were away: 2 finished, 1 failed", from
 *   the jobs' state at the end of the replay, so a retry that already led to completion is not news.
 */
import { Emitter } from '../lib/emitter.js';
import type { MessageMeta } from '../lib/events.js';
import { secondsUntil } from '../lib/format.js';
import { jobLabel } from '../lib/jobs.js';
import type { ProcessingComplete, ProcessingError } from '../lib/messages.js';
import type { ProgressClient } from '../lib/ProgressClient.js';
import { Timer } from '../lib/timer.js';
import type { ToastKind } from './context.js';
import { isCancelled } from './jobText.js';

export type Outcome = 'done' | 'failed' | 'cancelled' | 'retry';

export interface Notice {
  kind: ToastKind;
  title: string;
  body: string;
  /** The job it is about; null for a summary. */
  jobId: string | null;
  outcome: Outcome | 'summary';
}

/** Every outcome as it reaches the client (once per message), for counters such as the tab title. */
export interface OutcomeEvent {
  outcome: Outcome;
  jobId: string;
}

export interface NoticeEvents {
  notice: [Notice];
  outcome: [OutcomeEvent];
}

function outcomeOf(msg: ProcessingComplete | ProcessingError): Outcome {
  if (msg.type === 'processing_complete') return 'done';
  if (msg.code === 'cancelled' || msg.error === 'cancelled') return 'cancelled';
  return msg.willRetry ? 'retry' : 'failed';
}

/** How long to wait for `replay_complete` before summing up what the replay brought anyway. */
const SUMMARY_FALLBACK_MS = 4000;

export class NoticeFeed extends Emitter<NoticeEvents> {
  private readonly away = new Set<string>();
  private readonly fallback = new Timer();

  constructor(private readonly client: ProgressClient) {
    super();
  }

  /** Listens to the client; returns the function that stops. */
  start(): () => void {
    const take = (msg: ProcessingComplete | ProcessingError, meta: MessageMeta): void => this.take(msg, meta);
    const offs = [
      this.client.on('processing_complete', take),
      this.client.on('processing_error', take),
      this.client.on('replay_complete', () => this.flushAway()),
    ];
    return () => {
      for (const off of offs) off();
      this.fallback.clear();
      this.away.clear();
    };
  }

  private take(msg: ProcessingComplete | ProcessingError, meta: MessageMeta): void {
    // A poll without a cursor lists each job's latest message: state, not news.
    if (meta.via === 'http' && meta.history) return;
    this.emit('outcome', { outcome: outcomeOf(msg), jobId: msg.jobId });
    if (meta.via === 'socket' && (meta.history || meta.replayed)) {
      this.away.add(msg.jobId);
      this.fallback.set(SUMMARY_FALLBACK_MS, () => this.flushAway());
    } else if (meta.via === 'http' && this.client.getState() !== 'polling') {
      // The first poll that answers after the service was out of reach: what was missed.
      this.away.add(msg.jobId);
      queueMicrotask(() => this.flushAway());
    } else {
      // After the rest of the same batch, so a retry that is already over is not announced.
      queueMicrotask(() => this.announce(msg));
    }
  }

  private label(jobId: string, title: string | null): string {
    const job = this.client.getJob(jobId);
    return job ? jobLabel(job) : (title ?? `Job ${jobId}`);
  }

  private announce(msg: ProcessingComplete | ProcessingError): void {
    const outcome = outcomeOf(msg);
    const name = this.label(msg.jobId, msg.type === 'processing_complete' ? msg.videoTitle : null);
    const notice = (kind: ToastKind, title: string, body: string): void =>
      this.emit('notice', { kind, title, body, jobId: msg.jobId, outcome });
    if (msg.type === 'processing_complete') {
      notice('success', 'Processing complete', name);
      return;
    }
    if (outcome === 'cancelled') {
      notice('info', 'Cancelled', name);
    } else if (outcome === 'retry') {
      const job = this.client.getJob(msg.jobId);
      const left = secondsUntil(msg.retryAt);
      if (job && job.status !== 'retrying') return;
      if (left !== null && left <= 0) return;
      const at = msg.retryAt ? new Date(msg.retryAt).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : null;
      notice('error', `Attempt ${msg.attempt ?? '?'} of ${msg.maxAttempts ?? '?'} failed`, `${name}: ${msg.error}.${at ? ` Retrying at ${at}.` : ' Retrying.'}`);
    } else {
      notice('error', 'Processing failed', `${name}: ${msg.error}`);
    }
  }

  /** One summary of the jobs the replay brought news of, from their state now. */
  private flushAway(): void {
    this.fallback.clear();
    if (!this.away.size) return;
    const ids = [...this.away];
    this.away.clear();
    const counts = { finished: 0, failed: 0, cancelled: 0, retrying: 0 };
    const names: string[] = [];
    for (const id of ids) {
      const job = this.client.getJob(id);
      if (!job) continue;
      if (job.status === 'completed') counts.finished++;
      else if (job.status === 'failed' && isCancelled(job)) counts.cancelled++;
      else if (job.status === 'failed') counts.failed++;
      else if (job.status === 'retrying') counts.retrying++;
      else continue;
      names.push(jobLabel(job));
    }
    if (!names.length) return;
    const parts = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([what, n]) => `${n} ${what}`);
    const body = names.length > 3 ? `${names.slice(0, 3).join(', ')} +${names.length - 3} more` : names.join(', ');
    const kind: ToastKind = counts.failed ? 'error' : counts.finished ? 'success' : 'info';
    this.emit('notice', { kind, title: `While you were away: ${parts.join(', ')}`, body, jobId: null, outcome: 'summary' });
  }
}
