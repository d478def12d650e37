/**
 * The API reference page (realtime/static/docs.html, served at /docs): built with only local
 * assets, and rendering /openapi.json in Chromium without a single request to another host.
 *
 * It runs against the real server when that serves both /docs and /openapi.json; otherwise against
 * a loopback stand-in serving the same built files, with the server's /openapi.json when it has one
 * and e2e/fixtures/openapi.json when not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchBrowser, screenshot, until } from './helpers';
import { clientDir, repoRoot, serveStatic, type StaticServer } from './servers';

const baseUrl = inject('baseUrl');
const staticDir = join(repoRoot, 'realtime', 'static');
const docsHtml = join(staticDir, 'docs.html');

/**
 * Hosts that Swagger UI's bundle names in strings but never loads from: JSON Schema / OpenAPI
 * dialect identifiers, XML namespaces, links in its error and deprecation messages, links it
 * builds from a spec's own fields (licences, social tags in Markdown), URL-parsing bases, and the
 * generated examples ("spec examples"). `validator.swagger.io` is the default validator badge,
 * which `validatorUrl: null` turns off. A host that is not here fails the test: look at it first.
 */
const NAMED_NOT_LOADED = new Set([
  'www.w3.org',
  'json-schema.org',
  'spec.openapis.org',
  'datatracker.ietf.org',
  'www.rfc-editor.org',
  'spdx.org',
  'github.com',
  'reactjs.org',
  'react.dev',
  'redux.js.org',
  'fb.me',
  'swagger.io',
  'validator.swagger.io',
  'example.com',
  'base',
  'vladimirgorej.com',
  'twitter.com',
  'instagram.com',
  'www.tiktok.com',
  'www.facebook.com',
  'soundcloud.com',
]);
/** Where pages usually fetch scripts, styles and fonts from: never allowed, whatever the context. */
const CDN = /unpkg\.com|jsdelivr|cdnjs|googleapis|gstatic|fonts\.|bootstrapcdn|cloudflare/i;

function isLocal(ref: string): boolean {
  if (ref.startsWith('data:') || ref.startsWith('#')) return true;
  if (ref.startsWith('//')) return false; // protocol-relative: another host
  return !/^[a-z][a-z0-9+.-]*:/i.test(ref); // no scheme: a path on this origin
}

/** Strips data: URIs (their SVG namespaces are not requests) from CSS or HTML. */
function withoutDataUris(text: string): string {
  return text
    .replace(/url\(\s*"data:(?:[^"\\]|\\.)*"\s*\)/g, 'url()')
    .replace(/url\(\s*'data:(?:[^'\\]|\\.)*'\s*\)/g, 'url()')
    .replace(/url\(\s*data:[^)]*\)/g, 'url()')
    .replace(/(href|src)=("data:[^"]*"|'data:[^']*')/g, '$1=""');
}

function hosts(text: string): Set<string> {
  return new Set([...text.matchAll(/https?:\/\/([a-z0-9.-]+)/gi)].map((m) => m[1]!.toLowerCase()));
}

/** docs.html's own references, then every module and stylesheet they pull in, transitively. */
function docsAssets(): { html: string; refs: string[]; files: Map<string, string> } {
  const html = readFileSync(docsHtml, 'utf8');
  const refs = [...html.matchAll(/\b(?:src|href)=["']([^"']*)["']/g)].map((m) => m[1]!);
  const files = new Map<string, string>();
  const queue = refs.filter((r) => /^\/assets\/.*\.(js|css)$/.test(r));
  while (queue.length) {
    const ref = queue.shift()!;
    if (files.has(ref)) continue;
    const text = readFileSync(join(staticDir, ref), 'utf8');
    files.set(ref, text);
    if (ref.endsWith('.js')) {
      for (const m of text.matchAll(/(?:\bimport|\bfrom)\s*\(?\s*["'`]([^"'`]+\.(?:js|css))["'`]/g)) {
        const spec = m[1]!;
        expect(isLocal(spec), `${ref} imports ${spec}`).toBe(true);
        queue.push(spec.startsWith('/') ? spec : posix.join(posix.dirname(ref), spec));
      }
    }
  }
  return { html, refs, files };
}

describe('the API reference page', () => {
  it('is built with local assets only', () => {
    expect(existsSync(docsHtml), 'npm run build writes realtime/static/docs.html').toBe(true);
    const { html, refs, files } = docsAssets();
    expect(html).toContain('<title>realtime API</title>');
    expect(refs.filter((r) => !isLocal(r)), 'non-local src/href in docs.html').toEqual([]);
    expect([...hosts(withoutDataUris(html))], 'URLs in docs.html').toEqual([]);

    const scripts = [...files.keys()].filter((f) => f.endsWith('.js'));
    const styles = [...files.keys()].filter((f) => f.endsWith('.css'));
    expect(scripts.length).toBeGreaterThan(0);
    expect(styles.length).toBeGreaterThan(0);
    for (const file of styles) {
      const css = files.get(file)!;
      expect(css, `${file} has no @import`).not.toMatch(/@import/);
      const urls = [...css.matchAll(/url\(\s*["']?([^"')]*)/g)].map((m) => m[1]!);
      expect(urls.filter((u) => !isLocal(u)), `url() in ${file}`).toEqual([]);
      expect([...hosts(withoutDataUris(css))], `URLs in ${file}`).toEqual([]);
    }
    for (const file of scripts) {
      const js = files.get(file)!;
      expect(js, `${file} names no CDN or font host`).not.toMatch(new RegExp(`https?://[^\\s"'\`]*(${CDN.source})`, 'i'));
      const unknown = [...hosts(js)].filter((h) => !NAMED_NOT_LOADED.has(h));
      expect(unknown, `hosts named in ${file} that nobody has looked at`).toEqual([]);
    }
    // The page sends Swagger UI to the server's own document, and never to the online validator.
    const source = readFileSync(join(clientDir, 'src', 'docs', 'main.ts'), 'utf8');
    expect(source).toMatch(/url: '\/openapi\.json'/);
    expect(source).toMatch(/validatorUrl: null/);
  });

  describe('in Chromium', () => {
    let browser: Browser;
    let standIn: StaticServer | null = null;
    let origin = baseUrl;

    beforeAll(async () => {
      browser = await launchBrowser();
      const served = async (path: string): Promise<Response | null> => {
        const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
        return res && res.ok ? res : null;
      };
      const page = await served('/docs');
      const realPage = page !== null && (await page.text()).includes('<title>realtime API</title>');
      const spec = await served('/openapi.json');
      const realSpec = spec === null ? null : await spec.text();
      if (!realPage || realSpec === null) {
        // The server does not serve the reference (yet): the same built files on a loopback port.
        standIn = await serveStatic(staticDir, {
          '/docs': docsHtml,
          '/openapi.json': async () => realSpec ?? readFileSync(join(clientDir, 'e2e', 'fixtures', 'openapi.json'), 'utf8'),
        });
        origin = standIn.url;
      }
    });
    afterAll(async () => {
      await browser?.close();
      await standIn?.close();
    });

    it('renders /openapi.json with every request to its own origin', async () => {
      const spec = (await (await fetch(`${origin}/openapi.json`)).json()) as {
        info: { title: string };
        paths: Record<string, Record<string, unknown>>;
      };
      const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
      const operations = Object.values(spec.paths).flatMap((item) => Object.keys(item).filter((k) => methods.has(k)));
      expect(operations.length).toBeGreaterThan(0);

      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(String(error)));
      try {
        await page.goto(`${origin}/docs`);
        expect(await page.title()).toBe('realtime API');
        await page.getByRole('heading', { name: new RegExp(`^${spec.info.title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`) }).waitFor({ timeout: 20_000 });
        await until(async () => (await page.locator('.opblock').count()) === operations.length, `${operations.length} operations`, 20_000);

        // Deep linking: opening an operation puts it in the address, and the address opens it.
        const first = page.locator('.opblock').first();
        await first.locator('.opblock-summary-control').click();
        await until(async () => /^#\/.+/.test(await page.evaluate(() => location.hash)), 'a deep link in the address', 10_000);
        await page.getByRole('button', { name: 'Try it out' }).first().waitFor({ timeout: 10_000 });
        const hash = await page.evaluate(() => location.hash);
        await page.goto(`${origin}/docs${hash}`);
        await page.getByRole('button', { name: 'Try it out' }).first().waitFor({ timeout: 20_000 });
        await screenshot(page, 'docs-reference');

        const foreign = requests.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin);
        expect(foreign, 'requests to other hosts').toEqual([]);
        expect(requests).toContain(`${origin}/openapi.json`);
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    });
  });
});
