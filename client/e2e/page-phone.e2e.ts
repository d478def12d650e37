/**
 * The page on a phone (390 × 844): the signed-in name stays in view, toasts never cover a card's
 * buttons, and the dialogs fit.
 */
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser, progressOf, randomVideoId, screenshot, signIn, submit, uniqueName, until, videoUrl, waitForStatus, watchProgress } from './helpers';
import { cardOf, notCovered } from './pageHelpers';

const baseUrl = inject('baseUrl');
const VIEWPORT = { width: 390, height: 844 };
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

async function inViewport(locator: Locator): Promise<boolean> {
  const box = await locator.boundingBox();
  return box !== null && box.x >= 0 && box.y >= 0 && box.x + box.width <= VIEWPORT.width + 0.5 && box.y + box.height <= VIEWPORT.height + 0.5;
}

/**
 * Every card button and link scrolled into view (inside the page's scrolling area, between the
 * header and the toasts), checked for being the thing a tap there hits.
 */
async function cardControlsUncovered(page: Page): Promise<number> {
  const area = (await page.locator('.app__scroll').boundingBox())!;
  const controls = page.locator('article').locator('button, a');
  let checked = 0;
  for (let i = 0; i < (await controls.count()); i++) {
    const control = controls.nth(i);
    if (!(await control.isVisible()) || !(await inViewport(control))) continue;
    const box = (await control.boundingBox())!;
    if (box.y < area.y || box.y + box.height > area.y + area.height) continue;
    expect(await notCovered(control), `${await control.textContent()} is covered`).toBe(true);
    checked++;
  }
  return checked;
}

describe('on a phone (390 × 844)', () => {
  it('keeps the name in view, toasts off the cards’ buttons, and dialogs on screen', async () => {
    const context = await browser.newContext({ viewport: VIEWPORT, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const page = await context.newPage();
    try {
      await page.goto(`${baseUrl}/`);
      await screenshot(page, 'phone-signin', false);
      const name = uniqueName('Zoë Phone');
      await signIn(page, baseUrl, name);
      await waitForStatus(page, 'Connected');
      const who = page.getByText(name, { exact: true });
      expect(await who.isVisible()).toBe(true);
      expect(await inViewport(who)).toBe(true);

      const first = randomVideoId();
      const second = randomVideoId();
      await submit(page, videoUrl(first));
      await watchProgress(page, first, 100, 60_000);
      const toast = page.getByRole('region', { name: 'Notifications' }).getByText('Processing complete').first();
      await toast.waitFor({ timeout: 10_000 });
      // A second job, still running while the toast shows.
      await submit(page, videoUrl(second));
      await until(async () => (await progressOf(page, second)) !== null, 'the second job');

      // With a toast showing, at the top of the list and scrolled down: nothing on a card is covered.
      expect(await cardControlsUncovered(page)).toBeGreaterThan(0);
      await screenshot(page, 'phone-toast-and-cards', false);
      await cardOf(page, first).scrollIntoViewIfNeeded();
      await page.locator('.app__scroll').evaluate((el) => el.scrollBy(0, el.scrollHeight));
      expect(await cardControlsUncovered(page)).toBeGreaterThan(0);
      expect(await inViewport(who)).toBe(true);
      await screenshot(page, 'phone-scrolled', false);

      // The cancel dialog fits, its buttons in reach.
      const running = cardOf(page, second);
      if ((await progressOf(page, second)) !== 100) {
        await running.getByRole('button', { name: /^Cancel / }).click();
        const dialog = page.getByRole('dialog');
        await dialog.waitFor({ timeout: 5000 });
        expect(await inViewport(dialog)).toBe(true);
        for (const label of ['Cancel job', 'Keep it']) {
          const button = dialog.getByRole('button', { name: label });
          expect(await inViewport(button)).toBe(true);
          expect(await notCovered(button)).toBe(true);
        }
        await screenshot(page, 'phone-cancel-dialog', false);
        // (The job may have finished meanwhile, which closes the question.)
        if (await dialog.count()) await dialog.getByRole('button', { name: 'Keep it' }).click();
      }

      // The details dialog fits too (it scrolls inside itself when it is long).
      await cardOf(page, first).getByRole('button', { name: /^Details of / }).click();
      const details = page.getByRole('dialog');
      await details.waitFor({ timeout: 5000 });
      expect(await inViewport(details)).toBe(true);
      expect(await notCovered(details.getByRole('button', { name: 'Close' }))).toBe(true);
      await screenshot(page, 'phone-details-dialog', false);
      await details.getByRole('button', { name: 'Close' }).click();

      // The result page.
      await cardOf(page, first).getByRole('link', { name: 'Open…' }).click();
      await page.getByRole('list', { name: 'Mind map outline' }).waitFor({ timeout: 10_000 });
      expect(await inViewport(who)).toBe(true);
      await screenshot(page, 'phone-mindmap', false);
    } finally {
      await context.close();
    }
  });
});
