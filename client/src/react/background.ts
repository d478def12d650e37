/**
 * Telling a person who looks elsewhere: the tab's title while it is hidden, and (when they asked
 * for it) the browser's notifications.
 */
import { useEffect } from 'react';
import { activeCount } from '../lib/listing.js';
import { useNoticeFeed, useProgressClient } from './hooks.js';
import type { Notice } from './notices.js';

function hidden(): boolean {
  return typeof document !== 'undefined' && document.visibilityState === 'hidden';
}

/** "✓ 1 done · ✗ 1 failed · 2 active · realtime": the latest kind of outcome first. */
export function backgroundTitle(done: number, failed: number, active: number, latest: 'done' | 'failed' | null, appName: string): string {
  const doneText = done ? `✓ ${done} done` : null;
  const failedText = failed ? `✗ ${failed} failed` : null;
  const outcomes = latest === 'failed' ? [failedText, doneText] : [doneText, failedText];
  const parts = [...outcomes, active ? `${active} active` : null].filter(Boolean);
  return [...parts, appName].join(' · ');
}

/**
 * While the tab is hidden, its title counts the active jobs and the jobs that finished or failed
 * since it was hidden ("✓ 1 done · realtime"); the title comes back when the tab is visible.
 */
export function useBackgroundTitle(appName = 'realtime'): void {
  const client = useProgressClient();
  const feed = useNoticeFeed();
  useEffect(() => {
    if (typeof document === 'undefined') return undefined;
    let saved: string | null = null;
    const done = new Set<string>();
    const failed = new Set<string>();
    let latest: 'done' | 'failed' | null = null;
    const render = (): void => {
      if (saved === null) return;
      document.title = backgroundTitle(done.size, failed.size, activeCount(client.getJobs()), latest, appName);
    };
    const onVisibility = (): void => {
      if (hidden()) {
        if (saved === null) saved = document.title;
        done.clear();
        failed.clear();
        latest = null;
        render();
      } else if (saved !== null) {
        document.title = saved;
        saved = null;
      }
    };
    const offOutcome = feed?.on('outcome', ({ outcome, jobId }) => {
      if (saved === null) return;
      if (outcome === 'done') {
        done.add(jobId);
        failed.delete(jobId);
        latest = 'done';
      } else if (outcome === 'failed') {
        failed.add(jobId);
        latest = 'failed';
      }
      render();
    });
    const offJobs = client.on('jobs', render);
    document.addEventListener('visibilitychange', onVisibility);
    onVisibility();
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      offOutcome?.();
      offJobs();
      if (saved !== null) document.title = saved;
    };
  }, [client, feed, appName]);
}

/** Whether this browser can show notifications at all. */
export function notificationsSupported(): boolean {
  return typeof window !== 'undefined' && 'Notification' in window;
}

/**
 * Asks for the permission to notify: call it from a person's action (a click), never on load.
 * Resolves with whether notifications may be shown.
 */
export async function askNotificationPermission(): Promise<NotificationPermission | 'unsupported'> {
  if (!notificationsSupported()) return 'unsupported';
  if (Notification.permission !== 'default') return Notification.permission;
  return Notification.requestPermission();
}

/**
 * While `enabled` and the tab is hidden, shows a browser notification for each completion and
 * failure (and the summary of what a reconnect brought); retries and cancels are left out.
 */
export function useJobNotifications(enabled: boolean): void {
  const feed = useNoticeFeed();
  useEffect(() => {
    if (!enabled || !feed || !notificationsSupported()) return undefined;
    return feed.on('notice', (notice: Notice) => {
      if (!hidden() || Notification.permission !== 'granted') return;
      if (notice.outcome === 'retry' || notice.outcome === 'cancelled') return;
      try {
        new Notification(notice.title, { body: notice.body, tag: notice.jobId ?? 'summary' });
      } catch {
        // Some browsers only allow notifications from a service worker: the toast remains.
      }
    });
  }, [enabled, feed]);
}
