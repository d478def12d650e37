/** Browser niceties: catch up at once when the network or the tab comes back; save on leave. */

export interface PageHandlers {
  /** The network or the tab is back: skip the remaining backoff. */
  wake(): void;
  /** The page is hidden or left: save now. */
  save(): void;
}

/** Listens to the page; returns the function that removes every listener (a no-op outside a browser). */
export function listenToPage(on: PageHandlers): () => void {
  const cleanups: Array<() => void> = [];
  const w = globalThis as unknown as Partial<Window>;
  if (typeof w.addEventListener === 'function' && typeof w.removeEventListener === 'function') {
    const add = (target: Pick<Window, 'addEventListener' | 'removeEventListener'>, type: string, fn: () => void) => {
      target.addEventListener(type, fn);
      cleanups.push(() => target.removeEventListener(type, fn));
    };
    const win = w as Window;
    add(win, 'online', () => on.wake());
    add(win, 'pagehide', () => on.save());
    if (typeof document !== 'undefined') {
      add(document as unknown as Window, 'visibilitychange', () => {
        if (document.visibilityState === 'visible') on.wake();
        else on.save();
      });
    }
  }
  return () => {
    while (cleanups.length) cleanups.pop()?.();
  };
}
