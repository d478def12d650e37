import { useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useProgressClient } from 'realtime-client/react';
import { OFFLINE_SUBMIT, submitProblem } from './errors';

/** The link box and `Process`: several links at once; what went wrong said in plain words. */
export function SubmitForm({ onSignInExpired }: { onSignInExpired: () => void }): ReactNode {
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
    if (navigator.onLine === false) {
      setError(OFFLINE_SUBMIT);
      return;
    }
    setBusy(true);
    setError(null);
    // The box empties at once, ready for the next link; links that fail come back into it.
    setValue('');
    const failed: string[] = [];
    const problems: string[] = [];
    let expired = false;
    for (const url of urls) {
      try {
        await client.submitJob(url);
      } catch (e) {
        failed.push(url);
        const problem = submitProblem(e, url);
        problems.push(problem.text);
        expired ||= Boolean(problem.signInAgain);
      }
    }
    setBusy(false);
    // Whatever was typed meanwhile stays; otherwise the links that failed come back.
    if (failed.length) setValue((current) => (current.trim() ? current : failed.join(' ')));
    if (problems.length) setError([...new Set(problems)].join(' '));
    if (expired) onSignInExpired();
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
