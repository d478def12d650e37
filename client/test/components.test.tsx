// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyMessage, applySubmitted, type JobMap, type JobView } from '../src/lib/jobs';
import type { SequencedMessage } from '../src/lib/messages';
import { ProgressClient, type ConnectionState } from '../src/lib/ProgressClient';
import { ConnectionStatus } from '../src/react/ConnectionStatus';
import { ProgressContext } from '../src/react/context';
import { ProcessingJobCard } from '../src/react/ProcessingJobCard';
import { ProcessingProgressModal } from '../src/react/ProcessingProgressModal';
import { StageIndicators } from '../src/react/StageIndicators';
import { fakeToken, msg } from './helpers/fakeServer';

afterEach(cleanup);

function jobFrom(...messages: object[]): JobView {
  let jobs: JobMap = new Map();
  jobs = applySubmitted(jobs, { jobId: 'j1', status: 'queued', position: 1, estimatedWaitSeconds: 0 }, 'https://www.youtube.com/watch?v=dQw4w9WgXcQ');
  for (const m of messages) jobs = applyMessage(jobs, m as SequencedMessage);
  return jobs.get('j1')!;
}

function withClient(ui: ReactNode, fetchImpl = vi.fn<typeof fetch>()): { client: ProgressClient; fetchImpl: typeof fetchImpl } {
  const client = new ProgressClient({ getToken: async () => fakeToken('alice'), userId: 'alice', storage: null, fetch: fetchImpl, url: 'http://server.test' });
  render(<ProgressContext.Provider value={{ client, toasts: [], dismissToast: () => {} }}>{ui}</ProgressContext.Provider>);
  return { client, fetchImpl };
}

describe('ProcessingJobCard', () => {
  it('exposes a progressbar named after the job, with its value and stage', () => {
    const job = jobFrom(msg.progress(2, 'j1', 'transcript_generation', 37, 'Never Gonna Give You Up'));
    withClient(<ProcessingJobCard job={job} />);
    const bar = screen.getByRole('progressbar', { name: /dQw4w9WgXcQ/ });
    expect(bar).toHaveAttribute('aria-valuenow', '37');
    expect(bar).toHaveAttribute('aria-valuemin', '0');
    expect(bar).toHaveAttribute('aria-valuemax', '100');
    expect(bar.getAttribute('aria-valuetext')).toBe('37% · Transcript generation');
    expect(bar.getAttribute('aria-label')).toContain('Never Gonna Give You Up');
  });

  it('names a job without a title by its video id', () => {
    const job = jobFrom(msg.queue(1, 'j1', 2));
    withClient(<ProcessingJobCard job={job} />);
    expect(screen.getByRole('progressbar', { name: /dQw4w9WgXcQ/ })).toHaveAttribute('aria-valuenow', '0');
    expect(screen.getByText(/Position 2 of 2 in the queue · starts in about 20 s/)).toBeInTheDocument();
  });

  it('shows the seven stages, the current one as the current step', () => {
    const job = jobFrom(msg.progress(2, 'j1', 'content_analysis', 55));
    withClient(<ProcessingJobCard job={job} />);
    const stages = screen.getByRole('list', { name: 'Stages' });
    const items = within(stages).getAllByRole('listitem');
    expect(items.map((li) => li.dataset.stage)).toEqual([
      'url_validation',
      'metadata_extraction',
      'transcript_generation',
      'content_analysis',
      'mindmap_generation',
      'data_storage',
      'indexing',
    ]);
    expect(items.map((li) => li.dataset.state)).toEqual(['done', 'done', 'done', 'current', 'pending', 'pending', 'pending']);
    expect(items[3]).toHaveAttribute('aria-current', 'step');
  });

  it('shows the estimated completion', () => {
    const eta = new Date(Date.now() + 45_000).toISOString();
    const job = jobFrom({ ...msg.progress(2, 'j1', 'indexing', 90), estimatedCompletion: eta });
    withClient(<ProcessingJobCard job={job} />);
    expect(screen.getByText(/Estimated completion .* \(in about 4\d s\)/)).toBeInTheDocument();
  });

  it('shows the error with its retry status', () => {
    const job = jobFrom(msg.progress(2, 'j1', 'transcript_generation', 30), { ...msg.error(3, 'j1', true), retryAt: new Date(Date.now() + 20_000).toISOString() });
    withClient(<ProcessingJobCard job={job} />);
    expect(screen.getByText(/Attempt 1 of 3 failed during transcript generation: transcript service timed out\. Retrying in about (19|20) s\./)).toBeInTheDocument();
    expect(screen.getByRole('progressbar').getAttribute('aria-valuetext')).toBe('30% · Retrying Transcript generation');
  });

  it('has a polite live region that names the stage', () => {
    const job = jobFrom(msg.progress(2, 'j1', 'mindmap_generation', 70, 'Talk'));
    const { container } = render(<div />);
    void container;
    withClient(<ProcessingJobCard job={job} />);
    const live = document.querySelector('[aria-live="polite"]');
    expect(live?.textContent).toBe('Talk (dQw4w9WgXcQ): Mind map generation.');
  });

  it('cancels with POST /api/jobs/{jobId}/cancel and a bearer token', async () => {
    const job = jobFrom(msg.progress(2, 'j1', 'url_validation', 2));
    const fetchImpl = vi.fn<typeof fetch>(async () => new Response(JSON.stringify({ jobId: 'j1' }), { status: 200 }));
    withClient(<ProcessingJobCard job={job} />, fetchImpl);
    fireEvent.click(screen.getByRole('button', { name: /^Cancel / }));
    // It asks first, naming the job; "Keep it" is the safe default.
    const dialog = screen.getByRole('dialog', { name: /dQw4w9WgXcQ/ });
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Keep it' }));
    expect(fetchImpl).not.toHaveBeenCalled();
    await act(async () => {
      fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel job' }));
    });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe('http://server.test/api/jobs/j1/cancel');
    expect(init?.method).toBe('POST');
    expect(new Headers(init?.headers).get('Authorization')).toBe(`Bearer ${fakeToken('alice')}`);
  });

  it('offers no Cancel for a finished job', () => {
    withClient(<ProcessingJobCard job={jobFrom(msg.complete(2, 'j1'))} />);
    expect(screen.queryByRole('button', { name: /Cancel/ })).toBeNull();
    expect(screen.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
  });
});

describe('StageIndicators', () => {
  it('marks the failed stage of a failed job', () => {
    const job = jobFrom(msg.progress(2, 'j1', 'data_storage', 88), msg.error(3, 'j1', false));
    render(<StageIndicators job={job} />);
    const failed = screen.getByText('Data storage').closest('li');
    expect(failed?.dataset.state).toBe('failed');
  });
});

describe('ConnectionStatus', () => {
  it.each<[ConnectionState, string]>([
    ['connected', 'Connected'],
    ['reconnecting', 'Reconnecting\u2026'],
    ['polling', 'Offline (polling)'],
    ['offline', 'Cannot reach the server'],
  ])('reads exactly the contract text for %s', (state, text) => {
    const { client } = withClient(<ConnectionStatus />);
    act(() => {
      (client as unknown as { setState(s: ConnectionState): void }).setState(state);
    });
    expect(screen.getByRole('status')).toHaveTextContent(new RegExp(`^${text.replace(/[()]/g, '\\$&')}$`));
    expect(screen.getByRole('status').textContent).toBe(text);
  });
});

describe('ProcessingProgressModal', () => {
  it('is a labelled modal dialog that closes on Escape and gives focus back', () => {
    const { client } = withClient(<div />);
    cleanup();
    (client as unknown as { setJobs(m: JobMap): void }).setJobs(new Map([['j1', jobFrom(msg.progress(2, 'j1', 'indexing', 96, 'Talk'))]]));
    const onClose = vi.fn();
    const opener = document.createElement('button');
    document.body.append(opener);
    opener.focus();
    const ui = (jobId: string | null): ReactNode => (
      <ProgressContext.Provider value={{ client, toasts: [], dismissToast: () => {} }}>
        <ProcessingProgressModal jobId={jobId} onClose={onClose} />
      </ProgressContext.Provider>
    );
    const { rerender } = render(ui('j1'));
    const dialog = screen.getByRole('dialog', { name: 'Talk (dQw4w9WgXcQ)' });
    expect(dialog).toHaveAttribute('aria-modal', 'true');
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Close' }));
    expect(opener.closest('[inert]')).not.toBeNull();
    expect(within(dialog).getAllByRole('listitem')).toHaveLength(7);
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(onClose).toHaveBeenCalled();
    rerender(ui(null));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(opener);
    expect(opener.closest('[inert]')).toBeNull();
    opener.remove();
  });
});
