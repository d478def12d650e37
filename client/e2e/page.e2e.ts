/**
 * The page a person waits on (issue #13), in Chromium against the real server and demo worker, by
 * accessible names: results and the mind map, signing in with a name as people type it, a list that
 * stays usable (order, Clear finished on every device, 200 jobs), cancel that asks, a hidden tab.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser, progressOf, randomVideoId, screenshot, signIn, submit, uniqueName, until, videoUrl, waitForStatus, watchProgress } from './helpers';
import { cardOf, cardSays, demoToken, publish, setHidden, stubNotifications, textOf } from './pageHelpers';

const baseUrl = inject('baseUrl');
const apiKey = inject('apiKey');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('the page a person waits on', () => {
  it('shows what a job produced: Open… leads to the outline; every card links to its video and says when it was sent', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('Ada Lovelace'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      const url = videoUrl(video);
      await submit(page, url);
      await submit(page, url);
      // The same link twice: told apart by a number (and the time each was sent).
      const second = page.getByRole('progressbar', { name: new RegExp(`${video}.*#2`) });
      await until(async () => (await second.count()) === 1, 'the second job numbered #2');
      expect(await page.getByRole('progressbar', { name: new RegExp(`${video}.*#1`) }).count()).toBe(1);
      const card = cardOf(page, new RegExp(`${video}.*#2`));
      expect(await card.getByRole('link', { name: /on YouTube/ }).getAttribute('href')).toBe(url);
      expect(await textOf(card)).toMatch(/Submitted \d/);

      await watchProgress(page, video, 100, 60_000);
      await cardSays(card, /Mind map · \d+ nodes/, 'the result on the card');
      const open = card.getByRole('link', { name: 'Open…' });
      const href = await open.getAttribute('href');
      expect(href).toMatch(/^\/mindmap\/[0-9a-f]+$/);
      await screenshot(page, 'page-results-desktop', false);

      await open.click();
      await until(() => new URL(page.url()).pathname === href, 'the mind map page');
      const outline = page.getByRole('list', { name: 'Mind map outline' });
      await outline.waitFor({ timeout: 10_000 });
      expect(await outline.getByRole('listitem').count()).toBeGreaterThan(5);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain(video);
      expect(await page.getByRole('link', { name: /video on YouTube/ }).getAttribute('href')).toBe(url);
      expect(await page.getByRole('status').textContent()).toBe('Connected');
      await screenshot(page, 'page-mindmap-desktop', false);

      // The address works on its own (a reload, a shared link), and Back returns to the list.
      await page.reload();
      await outline.waitFor({ timeout: 15_000 });
      await page.getByRole('link', { name: /Back to your jobs/ }).click();
      await until(async () => (await progressOf(page, video)) === 100, 'back on the list');
    } finally {
      await context.close();
    }
  });

  it('signs in with a name as people type it, says who is signed in, and explains problems in plain words', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    try {
      await page.goto(`${baseUrl}/`);
      await until(async () => (await page.getByText('Sign in with any name').count()) === 1, 'the demo wording');
      expect(await textOf(page.locator('footer'))).toContain('Demo mode');
      expect(await textOf(page.locator('form'))).toMatch(/up to 100 characters/);

      await page.getByRole('button', { name: 'Sign in' }).click();
      expect(await page.getByRole('alert').textContent()).toBe('Type a name first — any name works.');
      await page.getByLabel('Your name').fill('x'.repeat(101));
      await page.getByRole('button', { name: 'Sign in' }).click();
      expect(await page.getByRole('alert').textContent()).toBe('A name can be at most 100 characters; this one has 101.');

      // Whatever the server's rule says, the person reads it in plain words, never "invalid request body".
      await page.route('**/demo/token', (route) =>
        route.fulfill({
          status: 400,
          contentType: 'application/json',
          body: JSON.stringify({ error: 'invalid', message: 'invalid request body', fields: { name: ['Length must be between 1 and 100.'] } }),
        }),
      );
      await page.getByLabel('Your name').fill('Someone');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await until(async () => (await page.getByRole('alert').textContent()) === 'A name needs 1 to 100 characters.', 'the plain rule');
      expect(await page.content()).not.toContain('invalid request body');
      await screenshot(page, 'page-signin-error', false);
      await page.unroute('**/demo/token');

      const name = `Zoë Müller-Ångström 山田 ${Math.random().toString(36).slice(2, 6)}`;
      await page.getByLabel('Your name').fill(`  ${name} `);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await waitForStatus(page, 'Connected');
      const header = page.locator('header.topbar');
      expect(await textOf(header)).toContain(`Signed in as ${name}`);
      const id = await page.locator('.user__id').textContent();
      expect(id).toMatch(/^zoe-muller-angstrom-[a-z0-9-]*[0-9a-f]{6}$/);
      await screenshot(page, 'page-signed-in', false);

      // The same name on another device is the same person.
      const other = await browser.newContext();
      try {
        const page2 = await other.newPage();
        await signIn(page2, baseUrl, name);
        await waitForStatus(page2, 'Connected');
        expect(await page2.locator('.user__id').textContent()).toBe(id);
      } finally {
        await other.close();
      }
    } finally {
      await context.close();
    }
  });

  it('lists active jobs first, and Clear finished hides finished jobs on every device', async () => {
    const name = uniqueName('Grace Hopper');
    const laptop = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const a = await laptop.newPage();
      const b = await phone.newPage();
      await signIn(a, baseUrl, name);
      await waitForStatus(a, 'Connected');
      const done = randomVideoId();
      await submit(a, videoUrl(done));
      await watchProgress(a, done, 100, 60_000);
      const running = randomVideoId();
      await submit(a, videoUrl(running));
      await until(async () => (await progressOf(a, running)) !== null, 'the second job');

      const inProgress = a.getByRole('list', { name: 'Jobs in progress' });
      const finished = a.getByRole('list', { name: 'Finished jobs' });
      expect(await inProgress.getByRole('progressbar', { name: new RegExp(running) }).count()).toBe(1);
      expect(await finished.getByRole('progressbar', { name: new RegExp(done) }).count()).toBe(1);
      const names = await a.getByRole('progressbar').evaluateAll((bars) => bars.map((bar) => bar.getAttribute('aria-label') ?? ''));
      expect(names.findIndex((n) => n.includes(running))).toBeLessThan(names.findIndex((n) => n.includes(done)));

      await signIn(b, baseUrl, name);
      await waitForStatus(b, 'Connected');
      await until(async () => (await progressOf(b, done)) === 100, 'the finished job on the other device');
      await screenshot(a, 'page-list-before-clear', false);

      await a.getByRole('button', { name: 'Clear finished' }).click();
      await until(async () => (await progressOf(a, done)) === null, 'cleared on this device');
      await until(async () => (await progressOf(b, done)) === null, 'cleared on the other device', 10_000);
      expect(await progressOf(a, running)).not.toBeNull();
      expect(await progressOf(b, running)).not.toBeNull();
      await screenshot(b, 'page-list-after-clear-other-device', false);
      await b.reload();
      await waitForStatus(b, 'Connected');
      await until(async () => (await progressOf(b, running)) !== null, 'the active job after a reload');
      expect(await progressOf(b, done)).toBeNull();
    } finally {
      await Promise.all([laptop.close(), phone.close()]);
    }
  });

  it('renders 200 jobs and updates one without touching the others', async () => {
    const name = uniqueName('Bulk');
    const { userId } = await demoToken(baseUrl, name);
    const tag = Math.random().toString(36).slice(2, 8);
    const ids = Array.from({ length: 200 }, (_, i) => `bulk-${tag}-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async (jobId, k) => {
          const n = i + k;
          await publish(baseUrl, apiKey, userId, { type: 'progress_update', jobId, stage: 'content_analysis', progress: 40, message: 'Analysing', videoTitle: `Bulk ${tag} ${String(n).padStart(3, '0')}` });
          if (n >= 20) await publish(baseUrl, apiKey, userId, { type: 'processing_complete', jobId, videoTitle: `Bulk ${tag} ${String(n).padStart(3, '0')}`, durationSeconds: 3, result: { nodes: 1 } });
        }),
      );
    }
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, name);
      await waitForStatus(page, 'Connected');
      await until(async () => (await page.getByRole('progressbar').count()) === 200, '200 progress bars', 30_000);
      expect(await page.getByRole('list', { name: 'Finished jobs' }).getByRole('progressbar').count()).toBe(180);
      await screenshot(page, 'page-200-jobs', false);

      // Watch every finished card for any change while one active job moves.
      await page.evaluate(() => {
        const w = window as unknown as { __touched: Set<string> };
        w.__touched = new Set();
        const list = document.querySelector('[aria-label="Finished jobs"]')!;
        new MutationObserver((records) => {
          for (const r of records) {
            const card = (r.target instanceof Element ? r.target : r.target.parentElement)?.closest('article');
            if (card) w.__touched.add(card.getAttribute('data-job-id') ?? '?');
          }
        }).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
      });
      const started = Date.now();
      await publish(baseUrl, apiKey, userId, { type: 'progress_update', jobId: ids[7]!, stage: 'mindmap_generation', progress: 77, message: 'Drawing', videoTitle: `Bulk ${tag} 007` });
      await until(async () => (await progressOf(page, `Bulk ${tag} 007`)) === 77, 'the update shown', 10_000);
      expect(Date.now() - started).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await page.evaluate(() => [...(window as unknown as { __touched: Set<string> }).__touched])).toEqual([]);
      expect(await progressOf(page, `Bulk ${tag} 008`)).toBe(40);
    } finally {
      await context.close();
      // Leave no job running for the other tests' queue estimates.
      await Promise.all(ids.slice(0, 20).map((jobId) => publish(baseUrl, apiKey, userId, { type: 'processing_complete', jobId, durationSeconds: 3, result: {} })));
    }
  });

  it('asks before cancelling, and a cancelled job is grey and says who cancelled it and when', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('Cancel Me'));
      await waitForStatus(page, 'Connected');
      const video = randomVideoId();
      await submit(page, videoUrl(video));
      await until(async () => ((await progressOf(page, video)) ?? 0) > 0, 'job under way');
      const card = cardOf(page, video);
      await card.getByRole('button', { name: /^Cancel / }).click();
      const dialog = page.getByRole('dialog', { name: new RegExp(`Cancel .*${video}`) });
      await dialog.waitFor({ timeout: 5000 });
      expect(await textOf(dialog)).toMatch(/stops it for good/);
      await screenshot(page, 'page-cancel-dialog', false);
      await dialog.getByRole('button', { name: 'Keep it' }).click();
      expect(await page.getByRole('dialog').count()).toBe(0);
      expect(await textOf(card)).not.toContain('Cancelled');

      await card.getByRole('button', { name: /^Cancel / }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
      await cardSays(card, /Cancelled by you at \d/, 'who cancelled it', 15_000);
      expect(await card.getAttribute('class')).toContain('rt-card--cancelled');
      const fill = await card.locator('.rt-progress__fill').evaluate((el) => getComputedStyle(el).backgroundColor);
      expect(fill).not.toBe('rgb(192, 57, 43)');
      expect(await card.locator('.rt-card__error').count()).toBe(0);
      await screenshot(page, 'page-cancelled', false);
    } finally {
      await context.close();
    }
  });

  it('while the tab is hidden its title counts and tells the finish; notifications only after a click', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    await stubNotifications(context);
    const page = await context.newPage();
    try {
      await signIn(page, baseUrl, uniqueName('Background'));
      await waitForStatus(page, 'Connected');
      const original = await page.title();
      const toggle = page.getByRole('switch', { name: 'Notify me when a job finishes or fails' });
      expect(await toggle.isChecked()).toBe(false);
      expect(await page.evaluate(() => (window as unknown as { __permissionAsks: number }).__permissionAsks)).toBe(0);
      await toggle.click();
      await until(() => toggle.isChecked(), 'notifications on');
      expect(await page.evaluate(() => (window as unknown as { __permissionAsks: number }).__permissionAsks)).toBe(1);

      const video = randomVideoId();
      await submit(page, videoUrl(video));
      await until(async () => ((await progressOf(page, video)) ?? 0) > 0, 'job under way');
      await setHidden(page, true);
      await until(async () => /^1 active · realtime$/.test(await page.title()), 'the title counting the active job', 5000);
      await until(async () => (await page.title()) === '✓ 1 done · realtime', 'the title telling the finish', 60_000);
      const notes = await page.evaluate(() => (window as unknown as { __notes: Array<{ title: string; body: string }> }).__notes);
      expect(notes).toEqual([{ title: 'Processing complete', body: expect.stringContaining(video) as unknown as string }]);
      await setHidden(page, false);
      expect(await page.title()).toBe(original);
    } finally {
      await context.close();
    }
  });
});
