/**
 * The demo page in Chromium against the real server and demo worker: signing in, several jobs,
 * a remembered name, and two users who never see each other's jobs.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  launchBrowser,
  progressOf,
  randomVideoId,
  screenshot,
  signIn,
  submit,
  uniqueName,
  until,
  videoUrl,
  waitForStatus,
  watchProgress,
} from './helpers';

const baseUrl = inject('baseUrl');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('demo page', () => {
  it('signs in, runs two jobs to 100 %, and remembers the name across a reload', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('ada'));
      await waitForStatus(page, 'Connected');

      const first = randomVideoId();
      const second = randomVideoId();
      await submit(page, videoUrl(first));
      await submit(page, `https://youtu.be/${second}`);

      await until(async () => (await progressOf(page, first)) !== null && (await progressOf(page, second)) !== null, 'both progress bars');
      await until(async () => ((await progressOf(page, first)) ?? 0) > 20, 'first job under way');
      await screenshot(page, 'demo-two-jobs-running');

      const [a, b] = await Promise.all([watchProgress(page, first), watchProgress(page, second)]);
      expect(a.at(-1)).toBe(100);
      expect(b.at(-1)).toBe(100);
      // It moved through intermediate values rather than jumping from nothing to done.
      expect(a.length + b.length).toBeGreaterThan(4);
      await screenshot(page, 'demo-two-jobs-done');

      await page.reload();
      await waitForStatus(page, 'Connected');
      expect(await page.getByLabel('Your name').count()).toBe(0);
      expect(await progressOf(page, first)).toBe(100);
      expect(await progressOf(page, second)).toBe(100);
    } finally {
      await context.close();
    }
  });

  it('shows a failed attempt with its retry status, then the job completing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('retry'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, `${videoUrl(video)}&fail=content_analysis`);
      const card = page.locator('article', { has: page.getByRole('progressbar', { name: new RegExp(video) }) });
      await until(async () => /Attempt 1 of 3 failed during content analysis/.test((await card.textContent()) ?? ''), 'the retry status', 30_000, 50);
      expect(await card.getByRole('progressbar').getAttribute('aria-valuetext')).toMatch(/Retrying Content analysis|Content analysis/);
      await watchProgress(page, video, 100, 60_000);
      expect(await card.textContent()).toContain('Completed');
    } finally {
      await context.close();
    }
  });

  it('cancels a job with its Cancel button', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('cancel'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      await until(async () => ((await progressOf(page, video)) ?? 0) > 0, 'job under way');
      await page.getByRole('button', { name: new RegExp(`^Cancel .*${video}`) }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
      const card = page.locator('article', { has: page.getByRole('progressbar', { name: new RegExp(video) }) });
      await until(async () => ((await card.textContent()) ?? '').includes('Cancelled'), 'cancelled', 15_000);
      expect(await card.getByRole('button', { name: /^Cancel / }).count()).toBe(0);
      expect(await progressOf(page, video)).toBeLessThan(100);
    } finally {
      await context.close();
    }
  });

  it('shows each user only their own jobs', async () => {
    const alice = await browser.newContext();
    const bob = await browser.newContext();
    try {
      const pa = await alice.newPage();
      const pb = await bob.newPage();
      await Promise.all([signIn(pa, baseUrl, uniqueName('alice')), signIn(pb, baseUrl, uniqueName('bob'))]);
      await Promise.all([waitForStatus(pa, 'Connected'), waitForStatus(pb, 'Connected')]);

      const va = randomVideoId();
      const vb = randomVideoId();
      await submit(pa, videoUrl(va));
      await submit(pb, videoUrl(vb));
      await Promise.all([watchProgress(pa, va), watchProgress(pb, vb)]);

      expect(await progressOf(pa, vb)).toBeNull();
      expect(await progressOf(pb, va)).toBeNull();
      expect(await pa.content()).not.toContain(vb);
      expect(await pb.content()).not.toContain(va);
      expect(await pa.getByRole('progressbar').count()).toBe(1);
      expect(await pb.getByRole('progressbar').count()).toBe(1);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });
});
