/** Shared pieces of the browser tests: Chromium, the page's accessible controls, waits, a TCP proxy. */
import { mkdirSync } from 'node:fs';
import { createServer, Socket as NetSocket, type Server as NetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const outputDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'e2e-output');

/** Debian's Chromium, headless; never a downloaded browser. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30_000,
  });
}

/** A random, well-formed 11-character YouTube video id. */
export function randomVideoId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let id = '';
  for (let i = 0; i < 11; i++) id += alphabet[Math.floor(Math.random() * alphabet.length)];
  return id;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function until<T>(check: () => Promise<T> | T, what: string, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function statusText(page: Page): Promise<string> {
  return ((await page.getByRole('status').textContent({ timeout: 2000 })) ?? '').trim();
}

export async function waitForStatus(page: Page, text: string | RegExp, timeoutMs = 20_000): Promise<string> {
  return until(
    async () => {
      const now = await statusText(page);
      return (typeof text === 'string' ? now === text : text.test(now)) ? now : null;
    },
    `status ${String(text)}`,
    timeoutMs,
  );
}

export async function signIn(page: Page, baseUrl: string, name: string, query = ''): Promise<void> {
  await page.goto(`${baseUrl}/${query}`);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export function videoUrl(videoId: string): string {
  return `https://www.youtube.com/watch?v=${videoId}`;
}

export async function submit(page: Page, url: string): Promise<void> {
  await page.getByLabel('YouTube URL').fill(url);
  await page.getByRole('button', { name: 'Process' }).click();
}

/** The aria-valuenow of the progress bar whose accessible name contains `videoId`, or null. */
export async function progressOf(page: Page, videoId: string): Promise<number | null> {
  const bars = page.getByRole('progressbar', { name: new RegExp(videoId) });
  if ((await bars.count()) === 0) return null;
  const value = await bars.first().getAttribute('aria-valuenow', { timeout: 2000 });
  return value === null ? null : Number(value);
}

/**
 * Waits until the job's progress reaches `target`, checking on the way that it never goes down.
 * Returns every distinct value seen.
 */
export async function watchProgress(page: Page, videoId: string, target = 100, timeoutMs = 60_000, floor = 0): Promise<number[]> {
  const seen: number[] = [];
  let highest = floor;
  await until(
    async () => {
      const value = await progressOf(page, videoId);
      if (value === null) return false;
      if (value < highest) throw new Error(`progress of ${videoId} went back from ${highest} to ${value}`);
      highest = value;
      if (seen.at(-1) !== value) seen.push(value);
      return value >= target;
    },
    `${videoId} at ${target}%`,
    timeoutMs,
    100,
  ).catch((error: unknown) => {
    if (error instanceof Error && error.message.includes('went back')) throw error;
    throw new Error(`${String(error)}; seen ${seen.join(',')}`);
  });
  return seen;
}

/** A PNG of the page into SHOTS_DIR (default e2e-output/). */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  const dir = process.env.SHOTS_DIR ?? outputDir;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage });
}

/**
 * A loopback TCP proxy in front of the server. `cut()` destroys every open connection and refuses
 * new ones until `restore()`: a real network cut, which Chromium's offline emulation is not for
 * WebSockets on localhost.
 */
export class TcpProxy {
  private server: NetServer | null = null;
  private readonly sockets = new Set<NetSocket>();
  private refusing = false;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      const upstream = new NetSocket();
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.connect(this.targetPort, '127.0.0.1', () => {
        client.pipe(upstream);
        upstream.pipe(client);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this.port;
  }

  cut(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
