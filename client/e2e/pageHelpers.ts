/** Pieces of the page tests: a backend's side of things (tokens, publishing), cards, a hidden tab. */
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { until } from './helpers';

/** A demo token for a display name, as the page gets it (counts against the sign-in rate limit). */
export async function demoToken(baseUrl: string, name: string): Promise<{ token: string; userId: string }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const res = await fetch(`${baseUrl}/demo/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, 600));
      continue;
    }
    if (!res.ok) throw new Error(`demo token: HTTP ${res.status}`);
    return (await res.json()) as { token: string; userId: string };
  }
  throw new Error('demo token: rate limited');
}

/** `POST /api/publish` as a backend would (REALTIME_API_KEY). */
export async function publish(baseUrl: string, apiKey: string, userId: string, message: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${baseUrl}/api/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': apiKey },
    body: JSON.stringify({ userId, message }),
  });
  if (res.status !== 202) throw new Error(`publish: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { seq: number }).seq;
}

/** `GET /api/jobs/{id}` with a user's token. */
export async function jobState(baseUrl: string, token: string, jobId: string): Promise<{ status: string; [key: string]: unknown }> {
  const res = await fetch(`${baseUrl}/api/jobs/${jobId}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`job ${jobId}: HTTP ${res.status}`);
  return (await res.json()) as { status: string };
}

/** The card (article) whose progress bar is named after `name` (a video id or title). */
export function cardOf(page: Page, name: string | RegExp): Locator {
  const pattern = typeof name === 'string' ? new RegExp(name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : name;
  return page.locator('article', { has: page.getByRole('progressbar', { name: pattern }) });
}

export async function textOf(locator: Locator): Promise<string> {
  return ((await locator.textContent({ timeout: 2000 })) ?? '').replace(/\s+/g, ' ').trim();
}

/** Waits until the card's text matches. */
export async function cardSays(card: Locator, pattern: RegExp, what: string, timeoutMs = 40_000): Promise<string> {
  return until(async () => {
    const text = await textOf(card);
    return pattern.test(text) ? text : null;
  }, what, timeoutMs, 100);
}

/** Makes the page believe its tab is hidden (or visible again), as a switch to another tab would. */
export async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

/**
 * A stand-in for the Notification API that records what the page asks and shows (headless Chromium
 * has no notification centre): `window.__notes`, `window.__permissionAsks`.
 */
export async function stubNotifications(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const w = window as unknown as { __notes: Array<{ title: string; body: string }>; __permissionAsks: number; Notification: unknown };
    w.__notes = [];
    w.__permissionAsks = 0;
    class FakeNotification {
      static permission: NotificationPermission = 'default';
      static async requestPermission(): Promise<NotificationPermission> {
        w.__permissionAsks++;
        FakeNotification.permission = 'granted';
        return 'granted';
      }
      constructor(title: string, options?: NotificationOptions) {
        w.__notes.push({ title, body: options?.body ?? '' });
      }
      close(): void {}
    }
    w.Notification = FakeNotification;
  });
}

/** Whether `locator`'s centre is really what a tap there would hit (nothing covers it). */
export async function notCovered(locator: Locator): Promise<boolean> {
  return locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return hit !== null && (hit === el || el.contains(hit));
  });
}
