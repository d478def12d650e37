/**
 * Honest connection states and plain words for every error a person can cause, in Chromium against
 * the real server: a cut connection (paused estimates, `Cannot reach the server`, what was missed
 * shown after reconnecting), offline submits, bad links, the connection cap, an expired sign-in,
 * and a node that is not in demo mode.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser, outputDir, progressOf, randomVideoId, screenshot, signIn, statusText, submit, TcpProxy, uniqueName, until, videoUrl, waitForStatus } from './helpers';
import { cardOf, cardSays, demoToken, jobState, textOf } from './pageHelpers';
import { freePort, migrate, pythonPath, realtimeEnv, startRealtime, stop, waitReady } from './servers';

const baseUrl = inject('baseUrl');
const serverPort = inject('serverPort');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** The toasts' text (the region is always there, empty when there is nothing to tell). */
async function toastsText(page: import('playwright-core').Page): Promise<string> {
  return textOf(page.getByRole('region', { name: 'Notifications' }));
}

describe('connection states', () => {
  it('says Cannot reach the server with paused estimates, then shows what it missed, folded into one summary', async () => {
    const proxy = new TcpProxy(serverPort);
    const port = await proxy.listen();
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await context.newPage();
    const toasts: string[] = [];
    try {
      const origin = `http://127.0.0.1:${port}`;
      const name = uniqueName('Away');
      await signIn(page, origin, name);
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, `${videoUrl(video)}&fail=content_analysis`);
      const card = cardOf(page, video);
      await cardSays(card, /Estimated completion/, 'an estimate', 30_000);
      const jobId = (await card.getAttribute('data-job-id'))!;

      proxy.cut();
      await waitForStatus(page, /^(Reconnecting…|Cannot reach the server)$/, 10_000);
      await waitForStatus(page, 'Cannot reach the server', 30_000);
      const text = await cardSays(card, /Estimate paused/, 'the paused estimate', 5000);
      expect(text).not.toContain('any moment now');
      await screenshot(page, 'page-cannot-reach', false);

      // The job fails once, is retried and completes while this page cannot hear of it.
      const { token } = await demoToken(baseUrl, name);
      await until(async () => (await jobState(baseUrl, token, jobId)).status === 'completed', 'the job completing meanwhile', 60_000, 500);
      expect(await textOf(card)).not.toContain('Completed');

      const seen = setInterval(() => {
        void toastsText(page).then((t) => t && toasts.push(t), () => undefined);
      }, 100);
      proxy.restore();
      await until(async () => ((await progressOf(page, video)) ?? 0) === 100, 'the page catching up', 40_000);
      await cardSays(card, /Finished in \d+ s · after 1 retry/, 'the missed retry, on the card', 5000);
      await until(() => toasts.some((t) => t.includes('While you were away: 1 finished')), 'the summary toast', 5000);
      clearInterval(seen);
      await screenshot(page, 'page-back-online-summary', false);
      expect(toasts.join(' ')).not.toContain('Attempt 1 of 3 failed');
      expect(toasts.join(' ')).not.toContain('Processing complete');
      await waitForStatus(page, 'Connected', 40_000);
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  it('says Offline (polling) while polls answer', async () => {
    const context = await browser.newContext();
    await context.route('**/socket.io/**', (route) => route.abort());
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('Polling'));
      await waitForStatus(page, 'Offline (polling)', 20_000);
      await screenshot(page, 'page-offline-polling', false);
    } finally {
      await context.close();
    }
  });
});

describe('plain words', () => {
  it('for an offline submit, a link that is too long and one that is not YouTube', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('Errors'));
      await waitForStatus(page, 'Connected');
      const alert = page.getByRole('alert');

      await context.setOffline(true);
      await submit(page, videoUrl(randomVideoId()));
      await until(async () => (await alert.textContent()) === "You're offline — the job wasn't sent. Try again when you're back online.", 'the offline message');
      await screenshot(page, 'page-error-offline', false);
      await context.setOffline(false);

      await submit(page, `https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=${'1'.repeat(2100)}`);
      await until(async () => /^That link is too long \(2,14\d characters; at most 2,048\)\. Paste just the video's address\.$/.test((await alert.textContent()) ?? ''), 'the too-long message');
      await screenshot(page, 'page-error-too-long', false);

      await submit(page, 'https://vimeo.com/123456');
      await until(async () => ((await alert.textContent()) ?? '').startsWith("That isn't a link to a YouTube video."), 'the not-YouTube message');
      expect(await page.content()).not.toContain('invalid request body');
      expect(await page.getByRole('progressbar').count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('for the connection cap, then reconnects once there is room', async () => {
    const name = uniqueName('Crowded');
    const { token } = await demoToken(baseUrl, name);
    const sockets: Socket[] = [];
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    try {
      for (let i = 0; i < 20; i++) sockets.push(io(baseUrl, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false }));
      await until(() => sockets.every((s) => s.connected), '20 connections of that user', 15_000);
      const page = await context.newPage();
      await signIn(page, baseUrl, name);
      const banner = page.getByRole('alert').filter({ hasText: 'too many tabs' });
      await banner.waitFor({ timeout: 15_000 });
      expect(await textOf(banner)).toContain('reconnects on its own');
      await waitForStatus(page, 'Offline (polling)', 20_000);
      await screenshot(page, 'page-error-too-many-connections', false);

      for (const s of sockets.splice(0)) s.disconnect();
      await waitForStatus(page, 'Connected', 60_000);
      expect(await banner.count()).toBe(0);
    } finally {
      for (const s of sockets) s.disconnect();
      await context.close();
    }
  });

  it('for an expired sign-in: asks to sign in again, with the name already there', async () => {
    const proxy = new TcpProxy(serverPort);
    const port = await proxy.listen();
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await context.newPage();
    try {
      const origin = `http://127.0.0.1:${port}`;
      const name = uniqueName('Expired');
      await signIn(page, origin, name);
      await waitForStatus(page, 'Connected');
      // From now on the server refuses every token the page gets, as after its key changed.
      const { token } = await demoToken(baseUrl, name);
      const forged = `${token.split('.').slice(0, 2).join('.')}.${'A'.repeat(43)}`;
      await page.route('**/demo/token', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ token: forged, userId: 'x', name }) }));
      proxy.cut();
      await waitForStatus(page, /^(Reconnecting…|Cannot reach the server)$/, 10_000);
      proxy.restore();
      const banner = page.getByRole('alert').filter({ hasText: 'Your sign-in has expired' });
      await banner.waitFor({ timeout: 30_000 });
      expect(await statusText(page)).not.toBe('Connected');
      await screenshot(page, 'page-error-expired', false);

      await page.unroute('**/demo/token');
      await banner.getByRole('button', { name: 'Sign in again' }).click();
      expect(await page.getByLabel('Your name').inputValue()).toBe(name);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await waitForStatus(page, 'Connected', 20_000);
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  it('drops the demo wording on a node that is not in demo mode', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'realtime-nodemo-'));
    const env = realtimeEnv(join(dataDir, 'nodemo.db'), { REALTIME_JWT_SECRET: randomBytes(24).toString('hex') });
    const python = pythonPath();
    migrate(python, env);
    const port = await freePort();
    const log = join(outputDir, 'nodemo-server.log');
    const server = startRealtime(python, ['serve', '--port', String(port)], env, log);
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitReady(url, server, log);
      const page = await context.newPage();
      await page.goto(`${url}/`);
      await until(async () => (await page.getByText("isn't in demo mode").count()) === 1, 'the not-demo explanation');
      expect(await page.getByLabel('Your name').count()).toBe(0);
      expect(await page.getByText('Sign in with any name').count()).toBe(0);
      expect(await textOf(page.locator('footer'))).not.toContain('Demo mode');
      await screenshot(page, 'page-not-demo', false);
    } finally {
      await context.close();
      await stop(server);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
