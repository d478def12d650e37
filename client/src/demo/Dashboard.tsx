import { useMemo, useState, type ReactNode } from 'react';
import { ApiError, isFinished } from 'realtime-client';
import { JobList, ProcessingProgressModal, useJobs, useProgressClient } from 'realtime-client/react';
import { NotifyToggle } from './Notify';
import { SubmitForm } from './SubmitForm';

/** `Clear finished`: hides the finished jobs on every tab and device of this user. */
function ClearFinished({ count }: { count: number }): ReactNode {
  const client = useProgressClient();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const clear = (): void => {
    setBusy(true);
    setError(null);
    client
      .clearFinished()
      .catch((e: unknown) =>
        setError(
          e instanceof ApiError
            ? `Couldn't clear the finished jobs (the server answered ${e.status}). Try again in a moment.`
            : navigator.onLine === false
              ? "You're offline — nothing was cleared. Try again when you're back online."
              : "The server can't be reached — nothing was cleared. Try again in a moment.",
        ),
      )
      .finally(() => setBusy(false));
  };
  return (
    <>
      <button type="button" className="rt-button" onClick={clear} disabled={busy || count === 0} title="Hide finished jobs on all your tabs and devices">
        Clear finished
      </button>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
    </>
  );
}

export function Dashboard({ onSignInExpired }: { onSignInExpired: () => void }): ReactNode {
  const jobs = useJobs();
  const [detail, setDetail] = useState<string | null>(null);
  const [active, finished] = useMemo(() => {
    const a = jobs.filter((j) => !isFinished(j));
    const f = jobs.filter((j) => isFinished(j));
    return [a, f];
  }, [jobs]);

  return (
    <>
      <section className="panel" aria-labelledby="submit-title">
        <h2 id="submit-title">Process a video</h2>
        <SubmitForm onSignInExpired={onSignInExpired} />
      </section>

      <section className="jobs" aria-labelledby="jobs-title">
        <div className="section-head">
          <h2 id="jobs-title">Your jobs</h2>
          {jobs.length ? (
            <span className="count">
              {active.length} in progress · {finished.length} finished
            </span>
          ) : null}
          <span className="section-head__spacer" />
          <NotifyToggle />
        </div>
        {jobs.length === 0 ? (
          <div className="empty">
            <p className="empty__title">No jobs yet</p>
            <p>Paste a link above: its progress appears here and updates on its own.</p>
          </div>
        ) : null}
        {active.length ? (
          <>
            <h3 className="list-title">In progress</h3>
            <JobList jobs={active} onOpenDetails={setDetail} headingLevel={4} className="job-grid" label="Jobs in progress" />
          </>
        ) : null}
        {finished.length ? (
          <>
            <div className="list-head">
              <h3 className="list-title">Finished</h3>
              <ClearFinished count={finished.length} />
            </div>
            <JobList jobs={finished} onOpenDetails={setDetail} headingLevel={4} className="job-grid" label="Finished jobs" />
          </>
        ) : null}
      </section>
      <ProcessingProgressModal jobId={detail} onClose={() => setDetail(null)} />
    </>
  );
}
