/**
 * Starts the real service for the browser tests: builds the pages when either is missing or older
 * than its sources, then `python -m realtime serve --demo` and the demo worker on a private SQLite
 * database and a free loopback port, waits for /readyz, and stops both by PID afterwards.
 *
 * REALTIME_PYTHON: the python to use (default ../.venv/bin/python, relative to client/).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { clientDir, freePort, migrate, pythonPath, realtimeEnv, repoRoot, startRealtime, stop, tail, waitReady } from './servers';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    serverPort: number;
    /** REALTIME_API_KEY of that server (POST /api/publish), for tests that play a backend. */
    apiKey: string;
  }
}

export const outputDir = join(clientDir, 'e2e-output');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function ensureBuilt(): void {
  const pages = ['index.html', 'docs.html'].map((page) => join(repoRoot, 'realtime', 'static', page));
  const sources = Math.max(...['src', 'index.html', 'docs.html', 'vite.config.ts'].map((p) => newestMtime(join(clientDir, p))));
  if (pages.every((page) => existsSync(page) && statSync(page).mtimeMs >= sources)) return;
  // A production build, whatever NODE_ENV the test runner set (React's development build is slower).
  const built = spawnSync('npm', ['run', 'build'], { cwd: clientDir, stdio: 'inherit', timeout: 120_000, env: { ...process.env, NODE_ENV: 'production' } });
  if (built.status !== 0) throw new Error('e2e: npm run build failed');
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  mkdirSync(outputDir, { recursive: true });
  const python = pythonPath();
  if (!existsSync('/usr/bin/chromium')) throw new Error('e2e: /usr/bin/chromium is missing (apt-get install -y chromium)');
  ensureBuilt();

  const dataDir = mkdtempSync(join(tmpdir(), 'realtime-e2e-'));
  const apiKey = randomBytes(18).toString('hex');
  const env = realtimeEnv(join(dataDir, 'e2e.db'), { REALTIME_API_KEY: apiKey });
  migrate(python, env);

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const serverLog = join(outputDir, 'server.log');
  const workerLog = join(outputDir, 'worker.log');
  let server: ChildProcess | null = startRealtime(python, ['serve', '--demo', '--port', String(port)], env, serverLog);
  let worker: ChildProcess | null = null;

  const teardown = async (): Promise<void> => {
    await Promise.all([stop(worker), stop(server)]);
    worker = server = null;
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await waitReady(baseUrl, server, serverLog);
    worker = startRealtime(python, ['worker', '--speed', '8', '--concurrency', '4'], env, workerLog);
    await new Promise((r) => setTimeout(r, 500));
    if (worker.exitCode !== null) throw new Error(`e2e: the worker exited with ${worker.exitCode}:\n${tail(workerLog)}`);
  } catch (error) {
    await teardown();
    throw error;
  }
  project.provide('baseUrl', baseUrl);
  project.provide('serverPort', port);
  project.provide('apiKey', apiKey);
  return teardown;
}
