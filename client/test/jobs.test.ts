import { describe, expect, it } from 'vitest';
import { youtubeVideoId, stageIndex, formatDuration } from '../src/lib/format';
import { applyMessage, applySnapshot, applySubmitted, jobLabel, pruneJobs, sortJobs, type JobMap } from '../src/lib/jobs';
import type { SequencedMessage, Snapshot } from '../src/lib/messages';
import { tokenSubject } from '../src/lib/token';
import { fakeToken, msg } from './helpers/fakeServer';

const m = (x: object): SequencedMessage => x as SequencedMessage;

describe('job reducer', () => {
  it('walks a job from queued through processing to completed', () => {
    let jobs: JobMap = new Map();
    jobs = applyMessage(jobs, m(msg.queue(1, 'j', 3)));
    expect(jobs.get('j')).toMatchObject({ status: 'queued', position: 3, estimatedWaitSeconds: 30 });
    jobs = applyMessage(jobs, m(msg.progress(2, 'j', 'url_validation', 3, 'Talk')));
    expect(jobs.get('j')).toMatchObject({ status: 'processing', position: null, stage: 'url_validation', videoTitle: 'Talk' });
    jobs = applyMessage(jobs, m(msg.complete(3, 'j')));
    expect(jobs.get('j')).toMatchObject({ status: 'completed', progress: 100, stage: 'completed', durationSeconds: 12 });
  });

  it('never moves a job back for a message at or below its seq', () => {
    let jobs: JobMap = new Map();
    jobs = applyMessage(jobs, m(msg.progress(5, 'j', 'content_analysis', 60)));
    const before = jobs;
    jobs = applyMessage(jobs, m(msg.progress(4, 'j', 'metadata_extraction', 15)));
    expect(jobs).toBe(before);
    jobs = applyMessage(jobs, m(msg.progress(5, 'j', 'metadata_extraction', 15)));
    expect(jobs.get('j')?.progress).toBe(60);
  });

  it('records a retryable error as retrying with its attempt, and the stage it failed in', () => {
    let jobs: JobMap = new Map();
    jobs = applyMessage(jobs, m(msg.progress(1, 'j', 'transcript_generation', 30)));
    jobs = applyMessage(jobs, m(msg.error(2, 'j', true)));
    expect(jobs.get('j')).toMatchObject({ status: 'retrying', attempt: 1, maxAttempts: 3, willRetry: true, failedStage: 'transcript_generation' });
    jobs = applyMessage(jobs, m(msg.progress(3, 'j', 'transcript_generation', 32)));
    expect(jobs.get('j')).toMatchObject({ status: 'processing', error: null });
    jobs = applyMessage(jobs, m(msg.error(4, 'j', false)));
    expect(jobs.get('j')?.status).toBe('failed');
  });

  it('replaces jobs with a snapshot but keeps newer and just-submitted ones', () => {
    let jobs: JobMap = new Map();
    jobs = applySubmitted(jobs, { jobId: 'fresh', status: 'queued', position: 1, estimatedWaitSeconds: 0 }, 'https://youtu.be/dQw4w9WgXcQ');
    jobs = applyMessage(jobs, m(msg.progress(9, 'newer', 'indexing', 95)));
    jobs = applyMessage(jobs, m(msg.progress(2, 'gone', 'indexing', 95)));
    const snapshot: Snapshot = {
      type: 'snapshot',
      lastSeq: 5,
      epoch: 'e',
      jobs: [{ jobId: 'a', status: 'processing', stage: 'data_storage', progress: 85, videoTitle: 'A', estimatedCompletion: null, position: null, error: null }],
    };
    const next = applySnapshot(jobs, snapshot, true);
    expect([...next.keys()].sort()).toEqual(['a', 'fresh', 'newer']);
    expect(next.get('a')).toMatchObject({ seq: 5, progress: 85 });
    expect(next.get('fresh')?.videoId).toBe('dQw4w9WgXcQ');
    expect([...applySnapshot(jobs, snapshot, false).keys()].sort()).toEqual(['a', 'fresh']);
  });

  it('lists newest first and prunes finished jobs before active ones', () => {
    let jobs: JobMap = new Map();
    jobs = applyMessage(jobs, m(msg.complete(1, 'old')));
    jobs = applyMessage(jobs, m(msg.queue(2, 'mid', 1)));
    jobs = applyMessage(jobs, m(msg.complete(3, 'new')));
    expect(sortJobs(jobs).map((j) => j.jobId)).toEqual(['new', 'mid', 'old']);
    expect([...pruneJobs(jobs, 2).keys()].sort()).toEqual(['mid', 'new']);
  });

  it('labels a job by title and video id', () => {
    expect(jobLabel({ videoTitle: 'Talk', videoId: 'dQw4w9WgXcQ', jobId: 'j' })).toBe('Talk (dQw4w9WgXcQ)');
    expect(jobLabel({ videoTitle: null, videoId: 'dQw4w9WgXcQ', jobId: 'j' })).toBe('dQw4w9WgXcQ');
    expect(jobLabel({ videoTitle: null, videoId: null, jobId: 'j' })).toBe('Job j');
  });
});

describe('helpers', () => {
  it.each([
    ['https://www.youtube.com/watch?v=dQw4w9WgXcQ', 'dQw4w9WgXcQ'],
    ['https://youtube.com/watch?v=dQw4w9WgXcQ&fail=indexing', 'dQw4w9WgXcQ'],
    ['https://youtu.be/dQw4w9WgXcQ?t=3', 'dQw4w9WgXcQ'],
    ['https://m.youtube.com/shorts/dQw4w9WgXcQ', 'dQw4w9WgXcQ'],
    ['https://music.youtube.com/watch?v=dQw4w9WgXcQ', 'dQw4w9WgXcQ'],
    ['https://www.youtube.com/embed/dQw4w9WgXcQ', 'dQw4w9WgXcQ'],
    ['https://www.youtube.com/live/dQw4w9WgXcQ', 'dQw4w9WgXcQ'],
    ['https://vimeo.com/12345', null],
    ['https://www.youtube.com/watch?v=short', null],
    ['not a url', null],
  ])('youtubeVideoId(%s)', (url, id) => {
    expect(youtubeVideoId(url)).toBe(id);
  });

  it('orders stages and formats durations', () => {
    expect(stageIndex('url_validation')).toBe(0);
    expect(stageIndex('indexing')).toBe(6);
    expect(stageIndex('completed')).toBe(7);
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min');
    expect(formatDuration(3900)).toBe('1 h 5 min');
  });

  it('reads the sub claim of a JWT, and nothing from other strings', () => {
    expect(tokenSubject(fakeToken('zoë'))).toBe('zoë');
    expect(tokenSubject('opaque-token')).toBeNull();
  });
});
