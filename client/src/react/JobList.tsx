import { useMemo, type ReactNode } from 'react';
import { isFinished, type JobView } from '../lib/jobs.js';
import { orderJobs, repeatNumbers } from '../lib/listing.js';
import { useConnectionState, useJobs } from './hooks.js';
import { ProcessingJobCard } from './ProcessingJobCard.js';

export interface JobListProps {
  /** The jobs to list (default: every job of the user); repeats are numbered across all of them. */
  jobs?: readonly JobView[];
  /** Passed to each card (keep it stable, e.g. a state setter, so cards stay memoized). */
  onOpenDetails?: (jobId: string) => void;
  /** Heading level of each card's title; default 3. */
  headingLevel?: 2 | 3 | 4;
  className?: string;
  /** An accessible name for the list. */
  label?: string;
}

/**
 * The jobs as a list a person can keep using at 200 jobs: active ones first (newest first), then
 * finished ones (newest first); repeated links numbered "#2"; estimates paused while the service
 * cannot be reached. Each card is memoized, so an update renders only the card it concerns.
 */
export function JobList({ jobs, onOpenDetails, headingLevel, className = 'rt-job-list', label }: JobListProps): ReactNode {
  const all = useJobs();
  const shown = jobs ?? all;
  const state = useConnectionState();
  const paused = state === 'offline' || state === 'reconnecting';
  const ordered = useMemo(() => orderJobs(shown), [shown]);
  const repeats = useMemo(() => repeatNumbers(all), [all]);
  return (
    <ul className={className} aria-label={label}>
      {ordered.map((job) => (
        <li key={job.jobId}>
          <ProcessingJobCard
            job={job}
            onOpenDetails={onOpenDetails}
            headingLevel={headingLevel}
            paused={paused && !isFinished(job)}
            repeat={repeats.get(job.jobId) ?? null}
          />
        </li>
      ))}
    </ul>
  );
}
