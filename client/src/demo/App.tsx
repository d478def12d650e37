import { useCallback, useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, isFinished } from 'realtime-client';
import {
  ConnectionStatus,
  ProcessingJobCard,
  ProcessingProgressModal,
  ProgressProvider,
  Toasts,
  useJobs,
  useProgressClient,
} from 'realtime-client/react';
import { fetchDemoToken, rememberName, rememberedName, transportsFromUrl } from './session';

function Brand(): ReactNode {
  return (
    <div className="brand">
      <svg className="brand__mark" viewBox="0 0 32 32" aria-hidden="true">
        <circle cx="16" cy="16" r="12" fill="none" stroke="#d6dbe4" strokeWidth="5" />
        <path d="M16 4a12 12 0 0 1 12 12" fill="none" stroke="#3d5afe" strokeWidth="5" strokeLinecap="round" />
      </svg>
      <span className="brand__name">realtime</span>
      <span className="brand__tag">job progress</span>
    </div>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (name: string, token: string) => void }): ReactNode {
  const inputId = useId();
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) {
      setError('Please enter a name.');
      return;
    }
    setBusy(true);
    setError(null);
    fetchDemoToken(trimmed)
      .then((token) => onSignedIn(trimmed, token))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)))
      .finally(() => setBusy(false));
  };

  return (
    <section className="signin panel" aria-labelledby="signin-title">
      <h1 id="signin-title">Watch your videos being processed, live</h1>
      <p className="lead">
        Sign in with any name. Paste YouTube links and follow each one through its seven stages, from URL validation
        to indexing. Close the tab whenever you like: the work goes on, and the page catches up when you return.
      </p>
      <form className="inline-form" onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor={inputId}>Your name</label>
          <input
            id={inputId}
            type="text"
            autoComplete="username"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${inputId}-error` : undefined}
            autoFocus
          />
        </div>
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      {error ? (
        <p id={`${inputId}-error`} className="form-error" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}

function SubmitForm(): ReactNode {
  const client = useProgressClient();
  const inputId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    // Several links may be pasted at once, separated by spaces or new lines.
    const urls = value.split(/\s+/).filter(Boolean);
    if (urls.length === 0) {
      setError('Paste a YouTube link first.');
      return;
    }
    setBusy(true);
    setError(null);
    const failed: string[] = [];
    const problems: string[] = [];
    for (const url of urls) {
      try {
        await client.submitJob(url);
      } catch (e) {
        failed.push(url);
        if (e instanceof ApiError) {
          const fieldProblems = Object.values(e.fields).flat();
          problems.push(fieldProblems.length ? fieldProblems.join(' ') : e.message);
        } else {
          problems.push(e instanceof Error ? e.message : String(e));
        }
      }
    }
    setBusy(false);
    // Keep whatever was typed meanwhile; clear only what was sent (leaving the links that failed).
    const submitted = value;
    setValue((current) => (current === submitted ? failed.join(' ') : current));
    if (problems.length) setError([...new Set(problems)].map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join(' '));
    inputRef.current?.focus();
  };

  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)} noValidate>
      <div className="field field--grow">
        <label htmlFor={inputId}>YouTube URL</label>
        <input
          ref={inputRef}
          id={inputId}
          type="text"
          inputMode="url"
          autoComplete="off"
          spellCheck={false}
          placeholder="https://www.youtube.com/watch?v=…"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={`${inputId}-hint${error ? ` ${inputId}-error` : ''}`}
        />
        <p id={`${inputId}-hint`} className="hint">
          youtube.com, youtu.be, Shorts and music links work. Add <code>&amp;fail=content_analysis</code> to a link to
          watch a failed attempt being retried.
        </p>
        {error ? (
          <p id={`${inputId}-error`} className="form-error" role="alert">
            {error}
          </p>
        ) : null}
      </div>
      <button type="submit" className="primary" disabled={busy}>
        Process
      </button>
    </form>
  );
}

function Dashboard(): ReactNode {
  const jobs = useJobs();
  const [detail, setDetail] = useState<string | null>(null);
  const active = jobs.filter((j) => !isFinished(j)).length;

  return (
    <>
      <section className="panel" aria-labelledby="submit-title">
        <h2 id="submit-title">Process a video</h2>
        <SubmitForm />
      </section>

      <section className="jobs" aria-labelledby="jobs-title">
        <div className="section-head">
          <h2 id="jobs-title">Your jobs</h2>
          {jobs.length ? (
            <span className="count">
              {active} in progress · {jobs.length - active} finished
            </span>
          ) : null}
        </div>
        {jobs.length ? (
          <ul className="job-grid">
            {jobs.map((job) => (
              <li key={job.jobId}>
                <ProcessingJobCard job={job} onOpenDetails={setDetail} />
              </li>
            ))}
          </ul>
        ) : (
          <div className="empty">
            <p className="empty__title">No jobs yet</p>
            <p>Paste a link above: its progress appears here and updates on its own.</p>
          </div>
        )}
      </section>
      <ProcessingProgressModal jobId={detail} onClose={() => setDetail(null)} />
    </>
  );
}

export function App(): ReactNode {
  const [name, setName] = useState<string | null>(rememberedName);
  // The token from signing in serves the first connection; every later one asks for a new token.
  const firstToken = useRef<string | null>(null);
  const transports = useMemo(() => transportsFromUrl(), []);

  const getToken = useCallback(async (): Promise<string> => {
    const token = firstToken.current;
    firstToken.current = null;
    if (token) return token;
    if (!name) throw new Error('not signed in');
    return fetchDemoToken(name);
  }, [name]);

  const signOut = (): void => {
    rememberName(null);
    setName(null);
  };

  if (!name) {
    return (
      <div className="app">
        <header className="topbar">
          <Brand />
        </header>
        <main className="main main--narrow">
          <SignIn
            onSignedIn={(n, token) => {
              firstToken.current = token;
              rememberName(n);
              setName(n);
            }}
          />
        </main>
        <Footer />
      </div>
    );
  }

  return (
    <ProgressProvider key={name} getToken={getToken} options={transports ? { transports } : {}}>
      <div className="app">
        <header className="topbar">
          <Brand />
          <div className="topbar__right">
            <ConnectionStatus />
            <span className="user">
              Signed in as <strong>{name}</strong>
            </span>
            <button type="button" className="rt-button rt-button--ghost" onClick={signOut}>
              Sign out
            </button>
          </div>
        </header>
        <main className="main">
          <Dashboard />
        </main>
        <Footer />
      </div>
      <Toasts />
    </ProgressProvider>
  );
}

function Footer(): ReactNode {
  return (
    <footer className="footer">
      Demo mode · live over Socket.IO, with HTTP polling when it cannot connect
      {transportsFromUrl() ? ` · transport: ${transportsFromUrl()?.join(', ')}` : ''}
    </footer>
  );
}
