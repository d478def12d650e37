/**
 * The package test (npm run test:package): `npm pack` gives realtime-client-<version>.tgz; a minimal
 * Vite + React + TypeScript app (e2e/consumer/) in a temporary folder installs it with npm, imports
 * `realtime-client`, `realtime-client/react` and `realtime-client/styles.css`, type-checks and
 * builds; then, served from its own loopback port, it shows a job going live to completion in
 * Chromium against the real server and demo worker on another origin (REALTIME_CORS_ORIGINS).
 *
 * Everything on 127.0.0.1; every process started here is stopped by its PID; the temporary folder
 * is removed unless KEEP_PACKAGE_TEST=1. Logs go to e2e-output/package-*.log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, uniqueName, until, waitForStatus, watchProgress } from './helpers';
import {
  clientDir,
  freePort,
  migrate,
  pythonPath,
  realtimeEnv,
  serveStatic,
  startRealtime,
  stop,
  tail,
  waitReady,
  type StaticServer,
} from './servers';

const outputDir = join(clientDir, 'e2e-output');
mkdirSync(outputDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'realtime-package-'));
const appDir = join(work, 'app');
const pkg = JSON.parse(readFileSync(join(clientDir, 'package.json'), 'utf8')) as { name: string; version: string };
const VIDEO = 'dQw4w9WgXcQ';

let tarball = '';
let browser: Browser | null = null;
let appServer: StaticServer | null = null;
let server: ChildProcess | null = null;
let worker: ChildProcess | null = null;

/** Runs a command to completion (no shell), its output into e2e-output/package-<log>.log. */
async function run(command: string, args: string[], cwd: string, log: string, timeoutMs: number): Promise<string> {
  const logFile = join(outputDir, `package-${log}.log`);
  const out = createWriteStream(logFile);
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    out.write(chunk);
  });
  child.stderr.pipe(out);
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  await new Promise((r) => out.end(r));
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${tail(logFile, 40)}`);
  return stdout;
}

/** The version installed in client/node_modules, so that npm finds it in its cache. */
function installed(name: string): string {
  return (JSON.parse(readFileSync(join(clientDir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

afterAll(async () => {
  await browser?.close();
  await Promise.all([stop(worker), stop(server)]);
  await appServer?.close();
  if (process.env.KEEP_PACKAGE_TEST !== '1') rmSync(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('packs compiled ESM and declarations only', async () => {
    const out = await run('npm', ['pack', '--json', '--pack-destination', work], clientDir, 'pack', 60_000);
    const [packed] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
    expect(packed!.filename).toBe(`${pkg.name}-${pkg.version}.tgz`);
    tarball = join(work, packed!.filename);
    expect(existsSync(tarball)).toBe(true);

    const files = packed!.files.map((f) => f.path).sort();
    for (const entry of ['dist/index.js', 'dist/index.d.ts', 'dist/react/index.js', 'dist/react/index.d.ts', 'dist/styles.css', 'README.md', 'package.json']) {
      expect(files).toContain(entry);
    }
    expect(files.filter((f) => !/^dist\/.+\.(js|d\.ts|css)$/.test(f) && f !== 'README.md' && f !== 'package.json')).toEqual([]);
    // Relative imports carry their extensions: the output works in Node and in every bundler.
    const react = readFileSync(join(clientDir, 'dist', 'react', 'index.js'), 'utf8');
    expect(react).toMatch(/from '\.\/ProgressProvider\.js'/);
  });

  it('installs into a fresh Vite + React app that type-checks and builds', async () => {
    expect(tarball, 'the tarball from the previous test').not.toBe('');
    cpSync(join(clientDir, 'e2e', 'consumer'), appDir, { recursive: true, filter: (src) => !/node_modules|[\\/]dist$/.test(src) });
    const manifest = {
      name: 'realtime-client-consumer',
      private: true,
      type: 'module',
      dependencies: {
        [pkg.name]: `file:${tarball}`,
        react: installed('react'),
        'react-dom': installed('react-dom'),
      },
      devDependencies: {
        '@types/react': installed('@types/react'),
        '@types/react-dom': installed('@types/react-dom'),
        '@vitejs/plugin-react': installed('@vitejs/plugin-react'),
        typescript: installed('typescript'),
        vite: installed('vite'),
      },
    };
    writeFileSync(join(appDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], appDir, 'install', 150_000);

    const lib = join(appDir, 'node_modules', pkg.name);
    expect(existsSync(join(lib, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(lib, 'src')), 'no sources in the package').toBe(false);
    // React is the app's own copy (a peer dependency), never a second one inside the package.
    expect(existsSync(join(lib, 'node_modules', 'react'))).toBe(false);

    await run(process.execPath, [join(appDir, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', appDir], appDir, 'tsc', 60_000);
    await run(process.execPath, [join(appDir, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], appDir, 'vite-build', 60_000);
    expect(existsSync(join(appDir, 'dist', 'index.html'))).toBe(true);
  });

  it('shows a live job to completion in Chromium, the server on another origin', async () => {
    expect(existsSync(join(appDir, 'dist', 'index.html')), 'the app from the previous test').toBe(true);
    appServer = await serveStatic(join(appDir, 'dist'));

    const python = pythonPath();
    const dbDir = join(work, 'db');
    mkdirSync(dbDir);
    const env = realtimeEnv(join(dbDir, 'package.db'), { REALTIME_CORS_ORIGINS: appServer.url });
    migrate(python, env);
    const port = await freePort();
    const serverUrl = `http://127.0.0.1:${port}`;
    const serverLog = join(outputDir, 'package-server.log');
    server = startRealtime(python, ['serve', '--demo', '--port', String(port)], env, serverLog);
    await waitReady(serverUrl, server, serverLog);
    worker = startRealtime(python, ['worker', '--speed', '20'], env, join(outputDir, 'package-worker.log'));
    expect(new URL(serverUrl).origin).not.toBe(new URL(appServer.url).origin);

    browser = await launchBrowser();
    const page: Page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const user = uniqueName('package');
    await page.goto(`${appServer.url}/?server=${encodeURIComponent(serverUrl)}&user=${user}`);
    await waitForStatus(page, 'Connected');

    await page.getByLabel('YouTube URL').fill(`https://youtu.be/${VIDEO}`);
    await page.getByRole('button', { name: 'Process' }).click();
    const bar = page.getByRole('progressbar', { name: new RegExp(VIDEO) });
    await bar.waitFor({ timeout: 20_000 });
    const seen = await watchProgress(page, VIDEO, 100, 60_000);
    expect(seen.at(-1)).toBe(100);
    await until(async () => /Completed/.test((await bar.getAttribute('aria-valuetext')) ?? ''), 'the completed state', 10_000);
    // The framework-free ProgressClient (the `realtime-client` entry) saw it too.
    await until(async () => /^1 completed/.test((await page.getByRole('region', { name: 'Completed jobs' }).textContent()) ?? ''), 'the completion event', 10_000);
    expect(await page.getByRole('alert').count()).toBe(0);
    await screenshot(page, 'package-consumer-done');

    // Token, job and socket all went across origins, from the app's page.
    expect(requests).toContain(`${serverUrl}/demo/token`);
    expect(requests).toContain(`${serverUrl}/api/jobs`);
    expect(requests.some((url) => url.startsWith(`${serverUrl}/socket.io/`))).toBe(true);
    expect(requests.filter((url) => !url.startsWith(appServer!.url) && !url.startsWith(serverUrl) && !url.startsWith('data:'))).toEqual([]);
  });
});
