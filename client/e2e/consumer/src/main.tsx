/**
 * An app that installed realtime-client from its tarball: the server is on another origin
 * (`?server=`), the user is `?user=`. It uses all three entry points: the framework-free
 * ProgressClient (which it creates and hands to the provider, and listens to directly), the React
 * provider, hooks and components, and the styles.
 */
import { StrictMode, useState, type FormEvent, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { ProgressClient, type ConnectionState, type JobView, type ProcessingComplete } from 'realtime-client';
import { ConnectionStatus, ProcessingJobCard, ProgressProvider, Toasts, useJobs, useProgressClient } from 'realtime-client/react';
import 'realtime-client/styles.css';

const params = new URLSearchParams(location.search);
const server = params.get('server') ?? location.origin;
const user = params.get('user') ?? 'consumer';

async function getToken(): Promise<string> {
  const res = await fetch(`${server}/demo/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId: user }),
  });
  if (!res.ok) throw new Error(`demo token: HTTP ${res.status}`);
  const body = (await res.json()) as { token: string };
  return body.token;
}

const client = new ProgressClient({ getToken, url: server });

// Framework-free: count completions straight off the client.
let completed = 0;
client.on('processing_complete', (msg: ProcessingComplete) => {
  completed += 1;
  const out = document.getElementById('completed');
  if (out) out.textContent = `${completed} completed (last ${msg.jobId})`;
});
client.on('state', (state: ConnectionState) => {
  document.documentElement.dataset.state = state;
});

function Submit(): ReactNode {
  const progress = useProgressClient();
  const [url, setUrl] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    setError(null);
    progress.submitJob(url).then(
      () => setUrl(''),
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  };
  return (
    <form onSubmit={submit}>
      <label>
        YouTube URL <input value={url} onChange={(e) => setUrl(e.target.value)} />
      </label>
      <button type="submit">Process</button>
      {error ? <p role="alert">{error}</p> : null}
    </form>
  );
}

function Jobs(): ReactNode {
  const jobs: readonly JobView[] = useJobs();
  return (
    <ul aria-label="Jobs">
      {jobs.map((job) => (
        <li key={job.jobId}>
          <ProcessingJobCard job={job} />
        </li>
      ))}
    </ul>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ProgressProvider client={client} getToken={getToken}>
      <ConnectionStatus />
      <Submit />
      <Jobs />
      <section aria-label="Completed jobs">
        <p id="completed">0 completed</p>
      </section>
      <Toasts />
    </ProgressProvider>
  </StrictMode>,
);
