/** Human-facing helpers shared by the library and the components (no I/O). */
import { PIPELINE_STAGES, type PipelineStage, type Stage } from './messages.js';

export const STAGE_LABELS: Record<Stage, string> = {
  url_validation: 'URL validation',
  metadata_extraction: 'Metadata extraction',
  transcript_generation: 'Transcript generation',
  content_analysis: 'Content analysis',
  mindmap_generation: 'Mind map generation',
  data_storage: 'Data storage',
  indexing: 'Indexing',
  completed: 'Completed',
};

export function stageLabel(stage: Stage | null | undefined): string {
  if (!stage) return 'Waiting';
  return STAGE_LABELS[stage] ?? String(stage);
}

/** Index of a stage among the seven (completed = 7, unknown = -1). */
export function stageIndex(stage: Stage | null | undefined): number {
  if (stage === 'completed') return PIPELINE_STAGES.length;
  if (!stage) return -1;
  return PIPELINE_STAGES.indexOf(stage as PipelineStage);
}

const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;

/**
 * The 11-character video id of a YouTube URL (watch?v=, youtu.be/, /shorts/, /embed/, /live/,
 * m. and music. hosts), or null.
 */
export function youtubeVideoId(input: string | null | undefined): string | null {
  if (!input) return null;
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    return null;
  }
  const host = url.hostname.toLowerCase().replace(/^www\./, '');
  let candidate: string | null = null;
  if (host === 'youtu.be') {
    candidate = url.pathname.split('/')[1] ?? null;
  } else if (host === 'youtube.com' || host === 'm.youtube.com' || host === 'music.youtube.com') {
    if (url.pathname === '/watch') {
      candidate = url.searchParams.get('v');
    } else {
      const match = /^\/(?:shorts|embed|live)\/([^/?#]+)/.exec(url.pathname);
      candidate = match?.[1] ?? null;
    }
  }
  return candidate && VIDEO_ID.test(candidate) ? candidate : null;
}

/** "about 40 s", "about 3 min", "about 1 h 5 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** A wall-clock time for an ISO string, e.g. "14:32:05"; null for a missing or bad value. */
export function formatClock(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Seconds from `now` until an ISO time (negative when past); null for a missing or bad value. */
export function secondsUntil(iso: string | null | undefined, now: number = Date.now()): number | null {
  if (!iso) return null;
  const t = new Date(iso).getTime();
  return Number.isNaN(t) ? null : (t - now) / 1000;
}
