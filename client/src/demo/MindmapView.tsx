import { useEffect, useState, type ReactNode } from 'react';
import { ApiError, jobLabel, type JobState } from 'realtime-client';
import { formatWhen, useJob, useProgressClient } from 'realtime-client/react';

interface OutlineNode {
  title: string;
  children: OutlineNode[];
}

/** The outline in a job's result, checked: anything else is ignored. */
function outlineOf(result: Record<string, unknown> | null | undefined): OutlineNode | null {
  const read = (value: unknown, depth: number): OutlineNode | null => {
    if (depth > 12 || typeof value !== 'object' || value === null) return null;
    const { title, children } = value as { title?: unknown; children?: unknown };
    if (typeof title !== 'string') return null;
    const kids = Array.isArray(children) ? children.map((c) => read(c, depth + 1)).filter((c): c is OutlineNode => c !== null) : [];
    return { title, children: kids };
  };
  return read(result?.outline, 0);
}

function Branch({ node }: { node: OutlineNode }): ReactNode {
  return (
    <li>
      <span className="outline__title">{node.title}</span>
      {node.children.length ? (
        <ul>
          {node.children.map((child, i) => (
            <Branch key={`${i}-${child.title}`} node={child} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

type Loaded = { state: 'loading' } | { state: 'ok'; job: JobState } | { state: 'error'; message: string };

/** `/mindmap/<jobId>`: what the job produced, its outline as a nested list (from `GET /api/jobs/{id}`). */
export function MindmapView({ jobId }: { jobId: string }): ReactNode {
  const client = useProgressClient();
  const live = useJob(jobId);
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const finishedLive = live?.status === 'completed';

  useEffect(() => {
    let current = true;
    setLoaded((l) => (l.state === 'ok' ? l : { state: 'loading' }));
    client.fetchJob(jobId).then(
      (job) => current && setLoaded({ state: 'ok', job }),
      (e: unknown) => {
        if (!current) return;
        const message =
          e instanceof ApiError && e.status === 404
            ? 'There is no such job among yours. It may belong to someone else, or the link is wrong.'
            : e instanceof ApiError && e.status === 401
              ? 'Your sign-in has expired. Sign in again to see this job.'
              : "This job can't be loaded right now. Check your connection and reload the page.";
        setLoaded({ state: 'error', message });
      },
    );
    return () => {
      current = false;
    };
    // Fetch again when the job completes while the page is open.
  }, [client, jobId, finishedLive]);

  const job = loaded.state === 'ok' ? loaded.job : null;
  const outline = outlineOf(job?.result ?? live?.result);
  const title = outline?.title ?? job?.videoTitle ?? (live ? jobLabel(live) : 'Mind map');
  const videoUrl = job?.videoUrl ?? live?.videoUrl ?? null;

  return (
    <article className="panel mindmap" aria-labelledby="mindmap-title">
      <p className="mindmap__back">
        <a className="rt-link" href="/">
          ← Back to your jobs
        </a>
      </p>
      <h1 id="mindmap-title" className="mindmap__title">
        {title}
      </h1>
      {job?.finishedAt ? <p className="hint">Finished {formatWhen(job.finishedAt)}</p> : null}
      {videoUrl ? (
        <p>
          <a className="rt-link" href={videoUrl} target="_blank" rel="noopener noreferrer">
            Watch the video on YouTube
          </a>
        </p>
      ) : null}
      {loaded.state === 'loading' && !outline ? <p className="hint">Loading…</p> : null}
      {loaded.state === 'error' ? (
        <p className="form-error" role="alert">
          {loaded.message}
        </p>
      ) : null}
      {job && job.status !== 'completed' && !outline ? (
        <p className="notice">This job has not finished yet: its mind map appears here once it has.</p>
      ) : null}
      {outline ? (
        <ul className="outline" aria-label="Mind map outline">
          {outline.children.map((child, i) => (
            <Branch key={`${i}-${child.title}`} node={child} />
          ))}
        </ul>
      ) : null}
    </article>
  );
}
