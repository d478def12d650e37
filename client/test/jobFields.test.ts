/** The job view's fields for the page: submit and finish times, who cancelled, retries, details. */
import { describe, expect, it } from 'vitest';
import { applyDetails, applyMessage, applySnapshot, dropFinished, type JobMap } from '../src/lib/jobs';
import type { SequencedMessage, Snapshot } from '../src/lib/messages';
import { cancelText, doneText, resultText, resultUrl } from '../src/react/jobText';
import { msg } from './helpers/fakeServer';

const m = (x: object): SequencedMessage => x as SequencedMessage;

describe('job fields', () => {
  it('keeps the submit time, the finish time, the retries and who cancelled', () => {
    let jobs: JobMap = new Map();
    jobs = applyMessage(jobs, m({ ...msg.queue(1, 'j', 1), ts: '2026-01-01T10:00:00.000Z' }));
    jobs = applyMessage(jobs, m(msg.progress(2, 'j', 'content_analysis', 50)));
    jobs = applyMessage(jobs, m(msg.error(3, 'j', true)));
    expect(jobs.get('j')).toMatchObject({ submittedAt: '2026-01-01T10:00:00.000Z', finishedAt: null, retries: 1, needsDetails: true });
    jobs = applyMessage(jobs, m(msg.progress(4, 'j', 'content_analysis', 55)));
    jobs = applyMessage(jobs, m({ ...msg.complete(5, 'j'), ts: '2026-01-01T10:01:00.000Z' }));
    const done = jobs.get('j')!;
    expect(done).toMatchObject({ status: 'completed', finishedAt: '2026-01-01T10:01:00.000Z', retries: 1 });
    expect(doneText(done)).toBe('Finished in 12 s · after 1 retry');

    jobs = applyMessage(jobs, m({ ...msg.error(6, 'c', false), code: 'cancelled', error: 'cancelled', cancelledBy: 'alice', ts: '2026-01-01T10:02:00.000Z' }));
    const cancelled = jobs.get('c')!;
    expect(cancelled).toMatchObject({ status: 'failed', cancelledBy: 'alice', finishedAt: '2026-01-01T10:02:00.000Z' });
    expect(cancelText(cancelled, 'alice')).toMatch(/^Cancelled by you at /);
    expect(cancelText(cancelled, 'bob')).toMatch(/^Cancelled by alice at /);
    expect(cancelText({ ...cancelled, cancelledBy: null }, 'alice')).toMatch(/^Cancelled by the service/);
    expect(dropFinished(jobs).size).toBe(0);
  });

  it('takes result, URL, times and cancelledBy from a snapshot, and details from GET /api/jobs/{id}', () => {
    const snapshot: Snapshot = {
      type: 'snapshot',
      lastSeq: 3,
      epoch: 'e',
      jobs: [
        { jobId: 'a', status: 'completed', stage: 'completed', progress: 100, videoTitle: 'T', estimatedCompletion: null, position: null, error: null, result: { url: '/mindmap/a', nodes: 3, outline: { title: 'T', children: [{ title: 'One', children: [] }, { title: 'Two', children: [] }] } }, videoUrl: 'https://youtu.be/dQw4w9WgXcQ', submittedAt: '2026-01-01T09:00:00Z', finishedAt: '2026-01-01T09:01:00Z' },
        { jobId: 'b', status: 'failed', stage: 'indexing', progress: 90, videoTitle: null, estimatedCompletion: null, position: null, error: 'cancelled', videoUrl: null, submittedAt: '2026-01-01T09:00:00Z', finishedAt: '2026-01-01T09:02:00Z', cancelledBy: null },
      ],
    };
    const jobs = applySnapshot(new Map(), snapshot, false);
    const a = jobs.get('a')!;
    expect(a).toMatchObject({ videoId: 'dQw4w9WgXcQ', submittedAt: '2026-01-01T09:00:00Z', finishedAt: '2026-01-01T09:01:00Z', needsDetails: false });
    expect(resultText(a.result)).toBe('Mind map · 3 nodes: One, Two');
    expect(resultUrl(a.result)).toBe('/mindmap/a');
    expect(resultUrl({ url: 'javascript:alert(1)' })).toBeNull();
    expect(jobs.get('b')).toMatchObject({ errorCode: 'cancelled', cancelledBy: null });

    let fromMessages: JobMap = applyMessage(new Map(), m(msg.progress(1, 'x', 'indexing', 90)));
    fromMessages = applyDetails(fromMessages, { ...snapshot.jobs[0]!, jobId: 'x', status: 'processing' });
    expect(fromMessages.get('x')).toMatchObject({ needsDetails: false, videoUrl: 'https://youtu.be/dQw4w9WgXcQ', submittedAt: '2026-01-01T09:00:00Z', progress: 90, result: null });
  });
});
