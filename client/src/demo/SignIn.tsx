import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { fetchDemoToken, MAX_NAME, nameProblem, SignInError, type DemoToken, type ServerInfo } from './session';

export interface SignInProps {
  /** `GET /api/info`; undefined while loading, null when the server did not say. */
  info: ServerInfo | null | undefined;
  /** The name to start from (after "Sign in again"). */
  initialName?: string;
  /** Why the person is here again, e.g. their sign-in expired. */
  notice?: string | null;
  onSignedIn: (token: DemoToken) => void;
}

/** Sign in with a display name (demo mode): the rules said up front, problems in plain words. */
export function SignIn({ info, initialName = '', notice = null, onSignedIn }: SignInProps): ReactNode {
  const inputId = useId();
  const [name, setName] = useState(initialName);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const demo = info?.demo === true;

  if (info && !info.demo) {
    return (
      <section className="signin panel" aria-labelledby="signin-title">
        <h1 id="signin-title">Job progress</h1>
        <p className="lead">
          This server isn't in demo mode, so it doesn't sign people in by name here. Open the app that uses this service
          to follow your jobs.
        </p>
      </section>
    );
  }

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    const problem = nameProblem(name);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    fetchDemoToken(name.trim(), { retries: 1 })
      .then(onSignedIn)
      .catch((e: unknown) => setError(e instanceof SignInError ? e.message : "Signing in didn't work. Try again in a moment."))
      .finally(() => setBusy(false));
  };

  const length = [...name.trim()].length;
  return (
    <section className="signin panel" aria-labelledby="signin-title">
      <h1 id="signin-title">Watch your videos being processed, live</h1>
      <p className="lead">
        {demo ? 'Sign in with any name. ' : 'Sign in with your name. '}
        Paste YouTube links and follow each one through its seven stages, from URL validation to indexing. Close the
        tab whenever you like: the work goes on, and the page catches up when you return.
      </p>
      {notice ? (
        <p className="notice" role="alert">
          {notice}
        </p>
      ) : null}
      <form className="inline-form" onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor={inputId}>Your name</label>
          <input
            id={inputId}
            type="text"
            autoComplete="nickname"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={`${inputId}-rules${error ? ` ${inputId}-error` : ''}`}
            autoFocus
          />
          <p id={`${inputId}-rules`} className="hint">
            Any name up to {MAX_NAME} characters — spaces, accents and any alphabet are fine. Use the same name on another
            device to see the same jobs.
            {length > MAX_NAME - 20 ? <span className={length > MAX_NAME ? 'hint__over' : ''}>{` ${length}/${MAX_NAME}`}</span> : null}
          </p>
          {error ? (
            <p id={`${inputId}-error`} className="form-error" role="alert">
              {error}
            </p>
          ) : null}
        </div>
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </section>
  );
}
