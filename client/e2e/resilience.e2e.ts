/**
 * The page keeps up when things go wrong: a reload mid-job, a cut connection, Socket.IO forced onto
 * long-polling, and Socket.IO blocked altogether (the HTTP polling fallback).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  launchBrowser,
  progressOf,
  randomVideoId,
  screenshot,
  signIn,
  statusText,
  submit,
  TcpProxy,
  uniqueName,
  until,
  videoUrl,
  waitForStatus,
  watchProgress,
} from './helpers';

const baseUrl = inject('baseUrl');
const serverPort = inject('serverPort');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('resilience', () => {
  it('continues after a reload mid-job instead of starting over', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('reload'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      const before = await until(async () => {
        const p = await progressOf(page, video);
        return p !== null && p >= 10 && p < 80 ? p : null;
      }, 'job mid-way');

      await page.reload();
      // The first value shown after the reload is not below the one before it.
      const after = await until(() => progressOf(page, video), 'progress bar after reload', 15_000);
      expect(after).toBeGreaterThanOrEqual(before);
      await waitForStatus(page, 'Connected');
      await watchProgress(page, video, 100, 60_000, before);
    } finally {
      await context.close();
    }
  });

  it('catches up after the connection is cut for a few seconds', async () => {
    const proxy = new TcpProxy(serverPort);
    const port = await proxy.listen();
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      const origin = `http://127.0.0.1:${port}`;
      await signIn(page, origin, uniqueName('cut'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      const before = await until(async () => {
        const p = await progressOf(page, video);
        return p !== null && p >= 5 && p < 60 ? p : null;
      }, 'job under way');

      proxy.cut();
      await waitForStatus(page, /^(Reconnecting…|Offline \(polling\))$/, 10_000);
      await new Promise((r) => setTimeout(r, 4000));
      const during = await statusText(page);
      expect(during).not.toBe('Connected');
      await screenshot(page, 'resilience-connection-cut');
      proxy.restore();

      await waitForStatus(page, 'Connected', 30_000);
      await watchProgress(page, video, 100, 60_000, before);
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  it('works with Socket.IO forced onto long-polling', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const websockets: string[] = [];
    page.on('websocket', (ws) => websockets.push(ws.url()));
    try {
      await signIn(page, baseUrl, uniqueName('longpoll'), '?transport=polling');
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      await watchProgress(page, video);
      expect(websockets).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('falls back to HTTP polling when /socket.io/ is blocked, and returns when it is not', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    await context.route('**/socket.io/**', (route) => route.abort());
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('blocked'));
      await waitForStatus(page, 'Offline (polling)', 20_000);
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      const seen = await watchProgress(page, video, 100, 60_000);
      expect(seen.length).toBeGreaterThan(1);
      expect(await statusText(page)).toBe('Offline (polling)');
      await screenshot(page, 'resilience-http-polling');

      await context.unroute('**/socket.io/**');
      await waitForStatus(page, 'Connected', 30_000);
      expect(await progressOf(page, video)).toBe(100);
    } finally {
      await context.close();
    }
  });
});
