// @vitest-environment jsdom
/**
 * The list at 200 jobs: ordered for a person, repeats numbered, and memoized cards: an update to one
 * job renders that card only (counted through the progress bar each card renders once per render).
 */
import { act, cleanup, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyMessage, applySubmitted, type JobMap } from '../src/lib/jobs';
import { orderJobs, repeatNumbers } from '../src/lib/listing';
import type { SequencedMessage } from '../src/lib/messages';
import { ProgressClient, type ConnectionState } from '../src/lib/ProgressClient';
import { ProgressContext } from '../src/react/context';
import { JobList } from '../src/react/JobList';
import { fakeToken, msg } from './helpers/fakeServer';

const renders = vi.hoisted(() => new Map<string, number>());

vi.mock('../src/react/ProgressBar', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/react/ProgressBar')>();
  return {
    ProgressBar: (props: Parameters<typeof real.ProgressBar>[0]) => {
      renders.set(props.label, (renders.get(props.label) ?? 0) + 1);
      return real.ProgressBar(props);
    },
  };
});

afterEach(() => {
  cleanup();
  renders.clear();
});

interface Internals {
  setJobs(map: JobMap): void;
  setState(state: ConnectionState): void;
}

function submitted(jobs: JobMap, jobId: string, videoId: string, at: string): JobMap {
  const next = applySubmitted(jobs, { jobId, status: 'queued', position: null, estimatedWaitSeconds: null }, `https://youtu.be/${videoId}`);
  const job = next.get(jobId)!;
  return new Map(next).set(jobId, { ...job, submittedAt: at });
}

describe('JobList', () => {
  it('renders 200 jobs and re-renders only the card whose job changed', () => {
    const client = new ProgressClient({ getToken: async () => fakeToken('alice'), userId: 'alice', storage: null, maxJobs: 1000 });
    let jobs: JobMap = new Map();
    for (let i = 0; i < 200; i++) {
      const id = `j${String(i).padStart(3, '0')}`;
      jobs = submitted(jobs, id, `vid${String(i).padStart(8, '0')}`, new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString());
      jobs = applyMessage(jobs, (i % 2 ? msg.complete(i + 1, id) : msg.progress(i + 1, id, 'content_analysis', 40)) as SequencedMessage);
    }
    act(() => {
      (client as unknown as Internals).setJobs(jobs);
      (client as unknown as Internals).setState('connected');
    });
    render(
      <ProgressContext.Provider value={{ client }}>
        <JobList label="Jobs" />
      </ProgressContext.Provider>,
    );
    const list = screen.getByRole('list', { name: 'Jobs' });
    expect(within(list).getAllByRole('progressbar')).toHaveLength(200);
    expect(renders.size).toBe(200);

    renders.clear();
    act(() => (client as unknown as Internals).setJobs(applyMessage(client.getJobs().reduce((m, j) => m.set(j.jobId, j), new Map()) as JobMap, msg.progress(500, 'j100', 'content_analysis', 77) as SequencedMessage)));
    expect(screen.getByRole('progressbar', { name: /vid00000100/ })).toHaveAttribute('aria-valuenow', '77');
    expect([...renders.entries()]).toEqual([['Progress of A video (vid00000100)', 1]]);

    // The connection state re-renders the active cards (their estimates pause), never the finished ones.
    renders.clear();
    act(() => (client as unknown as Internals).setState('offline'));
    expect(renders.size).toBe(100);
    expect([...renders.keys()].every((label) => Number(/vid(\d+)/.exec(label)?.[1]) % 2 === 0)).toBe(true);
  });

  it('orders active jobs first, then finished ones newest first, and numbers repeated links', () => {
    let jobs: JobMap = new Map();
    jobs = submitted(jobs, 'old', 'dQw4w9WgXcQ', '2026-01-01T10:00:00Z');
    jobs = submitted(jobs, 'new', 'dQw4w9WgXcQ', '2026-01-01T11:00:00Z');
    jobs = submitted(jobs, 'other', 'aaaaaaaaaaa', '2026-01-01T09:00:00Z');
    jobs = applyMessage(jobs, { ...msg.complete(1, 'old'), ts: '2026-01-01T10:05:00Z' } as SequencedMessage);
    jobs = applyMessage(jobs, { ...msg.error(2, 'other', false), ts: '2026-01-01T12:00:00Z' } as SequencedMessage);
    const list = [...jobs.values()];
    expect(orderJobs(list).map((j) => j.jobId)).toEqual(['new', 'other', 'old']);
    expect(Object.fromEntries(repeatNumbers(list))).toEqual({ old: 1, new: 2 });
  });
});
