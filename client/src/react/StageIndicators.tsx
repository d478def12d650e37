import type { ReactNode } from 'react';
import { STAGE_LABELS, stageIndex } from '../lib/format.js';
import type { JobView } from '../lib/jobs.js';
import { PIPELINE_STAGES } from '../lib/messages.js';

export type StepState = 'done' | 'current' | 'pending' | 'failed';

/** Where each of the seven stages stands for a job. */
export function stageSteps(job: Pick<JobView, 'stage' | 'status' | 'failedStage'>): Array<{ stage: (typeof PIPELINE_STAGES)[number]; state: StepState }> {
  const completed = job.status === 'completed' || job.stage === 'completed';
  const erred = job.status === 'failed' || job.status === 'retrying';
  const current = stageIndex(erred ? (job.failedStage ?? job.stage) : job.stage);
  return PIPELINE_STAGES.map((stage, i) => {
    let state: StepState = 'pending';
    if (completed || i < current) state = 'done';
    else if (i === current) state = erred ? 'failed' : job.status === 'queued' ? 'pending' : 'current';
    return { stage, state };
  });
}

const STATE_TEXT: Record<StepState, string> = {
  done: 'done',
  current: 'in progress',
  pending: 'not started',
  failed: 'failed',
};

export interface StageIndicatorsProps {
  job: Pick<JobView, 'stage' | 'status' | 'failedStage'>;
  /** Dots only (names for screen readers and on hover); the default shows names too. */
  compact?: boolean;
}

/** The seven stages as an ordered list of steps, the current one marked `aria-current="step"`. */
export function StageIndicators({ job, compact = false }: StageIndicatorsProps): ReactNode {
  const steps = stageSteps(job);
  return (
    <ol className={`rt-stages${compact ? ' rt-stages--compact' : ''}`} aria-label="Stages">
      {steps.map(({ stage, state }) => (
        <li
          key={stage}
          className={`rt-step rt-step--${state}`}
          aria-current={state === 'current' ? 'step' : undefined}
          title={`${STAGE_LABELS[stage]}: ${STATE_TEXT[state]}`}
          data-stage={stage}
          data-state={state}
        >
          <span className="rt-step__dot" aria-hidden="true" />
          <span className={compact ? 'rt-visually-hidden' : 'rt-step__name'}>{STAGE_LABELS[stage]}</span>
          <span className="rt-visually-hidden">{`: ${STATE_TEXT[state]}`}</span>
        </li>
      ))}
    </ol>
  );
}
