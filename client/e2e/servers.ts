/**
 * Processes and servers for the browser tests, shared by e2e/globalSetup.ts and the package test:
 * the real Python service and demo worker (started by PID, stopped by PID), free loopback ports,
 * and a tiny static file server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const clientDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(clientDir, '..');

/** REALTIME_PYTHON, or the repository's ../.venv/bin/python. */
export function pythonPath(): string {
  const python = process.env.REALTIME_PYTHON ?? resolve(clientDir, '../.venv/bin/python');
  if (!existsSync(python)) throw new Error(`e2e: no python at ${python} (set REALTIME_PYTHON)`);
  return python;
}

export async function freePort(): Promise<number> {
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

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * The environment for a private service: a SQLite database at `dbFile`, no Redis, a generated JWT
 * secret (demo mode), no inherited PORT; `extra` on top.
 */
export function realtimeEnv(dbFile: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REALTIME_DATABASE_URL: `sqlite+aiosqlite:///${dbFile}`,
    PYTHONUNBUFFERED: '1',
  };
  delete env.REALTIME_REDIS_URL;
  delete env.REALTIME_JWT_SECRET;
  delete env.REALTIME_CORS_ORIGINS;
  delete env.PORT;
  return { ...env, ...extra };
}

/** `python -m realtime migrate`, synchronously. */
export function migrate(python: string, env: NodeJS.ProcessEnv): void {
  const result = spawnSync(python, ['-m', 'realtime', 'migrate'], { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`e2e: realtime migrate failed:\n${result.stderr}`);
}

/** `python -m realtime <args>`, its output into `logFile`. */
export function startRealtime(python: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const log = createWriteStream(logFile);
  const child = spawn(python, ['-m', 'realtime', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

/** SIGTERM to the child's own PID, SIGKILL after 12 s; resolves when it has exited. */
export async function stop(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 12_000);
  await exited;
  clearTimeout(timer);
}

export async function waitReady(url: string, server: ChildProcess, logFile: string, timeoutMs = 45_000): Promise<void> {
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

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface StaticServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the files under `root` on 127.0.0.1 (`/` is index.html). `routes` maps a request path to
 * a file (absolute) or to a handler returning the body as JSON-ready text.
 */
export async function serveStatic(root: string, routes: Record<string, string | (() => Promise<string>)> = {}, port = 0): Promise<StaticServer> {
  const base = resolve(root);
  const server: HttpServer = createHttpServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const route = routes[path];
    if (typeof route === 'function') {
      route().then(
        (body) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body),
        (error: unknown) => res.writeHead(502, { 'Content-Type': 'text/plain' }).end(String(error)),
      );
      return;
    }
    const file = route ?? normalize(join(base, path === '/' ? 'index.html' : path));
    if (!route && !file.startsWith(base + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
