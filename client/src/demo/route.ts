/** The demo's two pages: the job list at `/` and one job's result at `/mindmap/<jobId>`. */
import { useCallback, useEffect, useState } from 'react';

export type Route = { page: 'jobs' } | { page: 'mindmap'; jobId: string };

export function parseRoute(pathname: string): Route | null {
  if (pathname === '/' || pathname === '/index.html') return { page: 'jobs' };
  const match = /^\/mindmap\/([^/]+)\/?$/.exec(pathname);
  return match?.[1] ? { page: 'mindmap', jobId: decodeURIComponent(match[1]) } : null;
}

/**
 * The current page, and in-app navigation: same-origin links to a known page change the page
 * without reloading (the connection stays up); Back and Forward work.
 */
export function useRoute(): [Route, (path: string) => void] {
  const [route, setRoute] = useState<Route>(() => parseRoute(location.pathname) ?? { page: 'jobs' });

  const navigate = useCallback((path: string) => {
    const next = parseRoute(new URL(path, location.href).pathname);
    if (!next) {
      location.assign(path);
      return;
    }
    history.pushState(null, '', path);
    setRoute(next);
    document.querySelector('.app__scroll')?.scrollTo(0, 0);
  }, []);

  useEffect(() => {
    const onPop = (): void => setRoute(parseRoute(location.pathname) ?? { page: 'jobs' });
    const onClick = (event: MouseEvent): void => {
      if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const link = (event.target as Element | null)?.closest?.('a');
      if (!link || (link.target && link.target !== '_self') || link.hasAttribute('download')) return;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || !parseRoute(url.pathname)) return;
      event.preventDefault();
      navigate(url.pathname + url.search + url.hash);
    };
    window.addEventListener('popstate', onPop);
    document.addEventListener('click', onClick);
    return () => {
      window.removeEventListener('popstate', onPop);
      document.removeEventListener('click', onClick);
    };
  }, [navigate]);

  return [route, navigate];
}
