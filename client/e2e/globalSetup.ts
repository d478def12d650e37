/**
 * Starts the real service for the browser tests: builds the demo page when it is missing or older
 * than its sources, then `python -m realtime serve --demo` and the demo worker on a private SQLite
 * database and a free loopback port, waits for /readyz, and stops both by PID afterwards.
 *
 * REALTIME_PYTHON: the python to use (default ../.venv/bin/python, relative to client/).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    serverPort: number;
  }
}

const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(clientDir, '..');
export const outputDir = join(clientDir, 'e2e-output');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function ensureBuilt(): void {
  const index = join(repoRoot, 'realtime', 'static', 'index.html');
  const sources = Math.max(newestMtime(join(clientDir, 'src')), newestMtime(join(clientDir, 'index.html')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const built = spawnSync('npm', ['run', 'build'], { cwd: clientDir, stdio: 'inherit', timeout: 120_000 });
  if (built.status !== 0) throw new Error('e2e: npm run build failed');
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function start(python: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const log = createWriteStream(logFile);
  const child = spawn(python, ['-m', 'realtime', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

async function stop(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 12_000);
  await exited;
  clearTimeout(timer);
}

async function waitReady(url: string, server: ChildProcess, logFile: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`e2e: the server exited with ${server.exitCode}:\n${tail(logFile)}`);
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`e2e: ${url}/readyz did not answer 200 within ${timeoutMs} ms:\n${tail(logFile)}`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  mkdirSync(outputDir, { recursive: true });
  const python = process.env.REALTIME_PYTHON ?? resolve(clientDir, '../.venv/bin/python');
  if (!existsSync(python)) throw new Error(`e2e: no python at ${python} (set REALTIME_PYTHON)`);
  if (!existsSync('/usr/bin/chromium')) throw new Error('e2e: /usr/bin/chromium is missing (apt-get install -y chromium)');
  ensureBuilt();

  const dataDir = mkdtempSync(join(tmpdir(), 'realtime-e2e-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REALTIME_DATABASE_URL: `sqlite+aiosqlite:///${join(dataDir, 'e2e.db')}`,
    PYTHONUNBUFFERED: '1',
  };
  delete env.REALTIME_REDIS_URL;
  delete env.REALTIME_JWT_SECRET;
  delete env.PORT;

  const migrate = spawnSync(python, ['-m', 'realtime', 'migrate'], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 });
  if (migrate.status !== 0) throw new Error(`e2e: realtime migrate failed:\n${migrate.stderr}`);

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const serverLog = join(outputDir, 'server.log');
  const workerLog = join(outputDir, 'worker.log');
  let server: ChildProcess | null = start(python, ['serve', '--demo', '--port', String(port)], env, serverLog);
  let worker: ChildProcess | null = null;

  const teardown = async (): Promise<void> => {
    await Promise.all([stop(worker), stop(server)]);
    worker = server = null;
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await waitReady(baseUrl, server, serverLog);
    worker = start(python, ['worker', '--speed', '8', '--concurrency', '4'], env, workerLog);
    await new Promise((r) => setTimeout(r, 500));
    if (worker.exitCode !== null) throw new Error(`e2e: the worker exited with ${worker.exitCode}:\n${tail(workerLog)}`);
  } catch (error) {
    await teardown();
    throw error;
  }
  project.provide('baseUrl', baseUrl);
  project.provide('serverPort', port);
  return teardown;
}
