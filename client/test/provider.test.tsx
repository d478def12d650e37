// @vitest-environment jsdom
/**
 * The provider, hooks and toasts against a real Socket.IO server on loopback, in StrictMode.
 */
import { act, cleanup, render, screen } from '@testing-library/react';
import { StrictMode, type ReactNode } from 'react';
import type { Socket } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionStatus } from '../src/react/ConnectionStatus';
import { useJobs } from '../src/react/hooks';
import { ProcessingJobCard } from '../src/react/ProcessingJobCard';
import { ProgressProvider } from '../src/react/ProgressProvider';
import { Toasts } from '../src/react/Toasts';
import { emitAll, fakeToken, msg, startFakeServer, waitFor, type FakeServer } from './helpers/fakeServer';

const EPOCH = 'e1';
let server: FakeServer | null = null;

afterEach(async () => {
  cleanup();
  localStorage.clear();
  await server?.close();
  server = null;
});

function Jobs(): ReactNode {
  const jobs = useJobs();
  return (
    <ul>
      {jobs.map((job) => (
        <li key={job.jobId}>
          <ProcessingJobCard job={job} />
        </li>
      ))}
    </ul>
  );
}

describe('ProgressProvider', () => {
  it('keeps one socket under StrictMode, renders live jobs and toasts, and cleans up on unmount', async () => {
    let socketRef: Socket | null = null;
    server = await startFakeServer({
      onConnection: (socket) => {
        socketRef = socket;
        emitAll(socket, [{ type: 'snapshot', jobs: [], lastSeq: 0, epoch: EPOCH }, msg.replayComplete(1, 0, EPOCH, false)]);
      },
    });
    const url = server.url;
    const { unmount } = render(
      <StrictMode>
        <ProgressProvider getToken={async () => fakeToken('alice')} url={url} options={{ transports: ['websocket'] }}>
          <ConnectionStatus />
          <Jobs />
          <Toasts />
        </ProgressProvider>
      </StrictMode>,
    );
    await screen.findByText('Connected', undefined, { timeout: 5000 });
    expect(server.handshakes).toHaveLength(1);
    expect(server.connectedSockets()).toHaveLength(1);

    act(() => emitAll(socketRef!, [msg.progress(1, 'j1', 'content_analysis', 55, 'Talk')]));
    const bar = await screen.findByRole('progressbar', { name: /Talk/ });
    expect(bar).toHaveAttribute('aria-valuenow', '55');

    act(() => emitAll(socketRef!, [msg.complete(2, 'j1')]));
    await waitFor(() => bar.getAttribute('aria-valuenow') === '100', 3000, 'complete');
    expect(await screen.findByText('Processing complete')).toBeInTheDocument();

    act(() => emitAll(socketRef!, [msg.error(3, 'j2', false)]));
    expect(await screen.findByRole('alert')).toHaveTextContent('Processing failed');
    // One status element only: the connection state.
    expect(screen.getAllByRole('status')).toHaveLength(1);

    unmount();
    await waitFor(() => server!.connectedSockets().length === 0, 3000, 'socket closed on unmount');
  });
});
