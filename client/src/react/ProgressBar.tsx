import type { ReactNode } from 'react';

export interface ProgressBarProps {
  value: number;
  /** The accessible name (should contain the job's title or video id). */
  label: string;
  /** Spoken instead of the bare number, e.g. "37% · Transcript generation". */
  valueText: string;
  tone?: 'active' | 'done' | 'error' | 'idle';
  size?: 'regular' | 'large';
}

/** A determinate progress bar exposed as role="progressbar" with aria-valuenow/min/max/text. */
export function ProgressBar({ value, label, valueText, tone = 'active', size = 'regular' }: ProgressBarProps): ReactNode {
  const now = Math.round(Math.min(100, Math.max(0, value)));
  return (
    <div
      className={`rt-progress rt-progress--${tone} rt-progress--${size}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={now}
      aria-valuetext={valueText}
    >
      <div className="rt-progress__fill" style={{ width: `${now}%` }} />
    </div>
  );
}
