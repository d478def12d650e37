import { useId, useState, type ReactNode } from 'react';
import { stageLabel } from '../lib/format.js';
import { jobLabel, type JobView } from '../lib/jobs.js';
import { ApiError } from '../lib/ProgressClient.js';
import { Dialog } from './Dialog.js';
import { useProgressClient } from './hooks.js';

/** Cancels through the provider's client; returns [cancel, pending, error]. */
export function useCancel(jobId: string): [() => Promise<boolean>, boolean, string | null] {
  const client = useProgressClient();
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const cancel = async (): Promise<boolean> => {
    setPending(true);
    setError(null);
    try {
      await client.cancelJob(jobId);
      return true;
    } catch (e) {
      // 409: it finished in the meantime, which the next message shows anyway.
      if (e instanceof ApiError && e.status === 409) return true;
      if (e instanceof ApiError) setError(e.status === 404 ? 'this job no longer exists.' : e.message);
      else setError(typeof navigator !== 'undefined' && navigator.onLine === false ? "you're offline." : "the server can't be reached right now.");
      return false;
    } finally {
      setPending(false);
    }
  };
  return [cancel, pending, error];
}

/** Where the job is, for the question: "It is at Transcript generation (37%)". */
function whereText(job: JobView): string {
  if (job.status === 'queued') return 'It has not started yet.';
  if (job.status === 'retrying') return `It is waiting to retry ${stageLabel(job.failedStage ?? job.stage).toLowerCase()}.`;
  return `It is at ${stageLabel(job.stage).toLowerCase()} (${Math.round(job.progress)}%).`;
}

export interface ConfirmCancelDialogProps {
  job: JobView;
  /** The job's name as the page shows it (with its "#2" when the link was submitted before). */
  label?: string;
  onClose: () => void;
}

/** "Cancel this job?" naming the job, with the buttons `Cancel job` and `Keep it` (the default). */
export function ConfirmCancelDialog({ job, label = jobLabel(job), onClose }: ConfirmCancelDialogProps): ReactNode {
  const titleId = useId();
  const textId = useId();
  const [cancel, cancelling, error] = useCancel(job.jobId);
  const confirm = (): void => {
    void cancel().then((ok) => {
      if (ok) onClose();
    });
  };
  return (
    <Dialog labelledBy={titleId} describedBy={textId} onClose={onClose} className="rt-modal--confirm">
      <h2 id={titleId} className="rt-modal__title">
        Cancel “{label}”?
      </h2>
      <p id={textId} className="rt-modal__text">
        {whereText(job)} Cancelling stops it for good: to get a result you would submit the link again.
      </p>
      {error ? (
        <p className="rt-card__error" role="alert">
          Could not cancel: {error}
        </p>
      ) : null}
      <footer className="rt-modal__actions">
        <button type="button" className="rt-button" onClick={onClose} data-autofocus>
          Keep it
        </button>
        <button type="button" className="rt-button rt-button--danger" onClick={confirm} disabled={cancelling}>
          {cancelling ? 'Cancelling…' : 'Cancel job'}
        </button>
      </footer>
    </Dialog>
  );
}
