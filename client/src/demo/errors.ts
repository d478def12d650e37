/** Every error a person can cause by submitting a link, in plain words. */
import { ApiError } from 'realtime-client';

export const OFFLINE_SUBMIT = "You're offline — the job wasn't sent. Try again when you're back online.";

export interface SubmitProblem {
  text: string;
  /** The sign-in is no longer accepted: offer to sign in again. */
  signInAgain?: boolean;
}

function plainUrlRule(problem: string, url: string): string {
  if (/^Length must be between 1 and (\d+)/i.test(problem)) {
    const max = Number(/and (\d+)/.exec(problem)?.[1] ?? 2048);
    const length = [...url].length;
    return `That link is too long (${length.toLocaleString('en')} characters; at most ${max.toLocaleString('en')}). Paste just the video's address.`;
  }
  if (/not a YouTube video URL/i.test(problem)) {
    return "That isn't a link to a YouTube video. Paste one like https://www.youtube.com/watch?v=… or https://youtu.be/….";
  }
  return `That link can't be used: ${problem.replace(/\.$/, '')}.`;
}

/** What to tell the person when `POST /api/jobs` with `url` failed with `error`. */
export function submitProblem(error: unknown, url: string): SubmitProblem {
  if (!(error instanceof ApiError)) {
    if (typeof navigator !== 'undefined' && navigator.onLine === false) return { text: OFFLINE_SUBMIT };
    return { text: "The server can't be reached right now — the job wasn't sent. Try again in a moment." };
  }
  const urlProblem = error.fields.videoUrl?.[0];
  if (error.status === 400 && urlProblem) return { text: plainUrlRule(urlProblem, url) };
  switch (error.status) {
    case 400:
      return { text: "That link can't be used. Check that you pasted the whole YouTube address." };
    case 401:
      return { text: 'Your sign-in has expired — the job wasn’t sent. Sign in again, then resend it.', signInAgain: true };
    case 413:
      return { text: 'That is far too much text for one link. Paste just the video’s address.' };
    case 429:
      return { text: 'Too many jobs sent at once. Wait a few seconds and try again.' };
    case 503:
      return { text: 'The service is busy or restarting — the job wasn’t sent. Try again in a moment.' };
    default:
      return { text: `The job wasn’t sent: the server answered ${error.status}. Try again in a moment.` };
  }
}
