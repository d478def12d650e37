/** The demo's sign-in: the remembered name, demo tokens from `POST /demo/token`, `GET /api/info`. */

const SESSION_KEY = 'realtime-demo:session';
/** Where earlier versions kept just the name. */
const NAME_KEY = 'realtime-demo:name';

export interface Session {
  /** The name as the person typed it (spaces, accents, any script). */
  name: string;
  /** The user id the server derived from it (e.g. `zoe-muller-5d7c2a`), once known. */
  userId: string | null;
}

export function rememberedSession(): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    if (raw) {
      const data = JSON.parse(raw) as Partial<Session>;
      if (typeof data.name === 'string' && data.name) return { name: data.name, userId: typeof data.userId === 'string' ? data.userId : null };
    }
    const name = localStorage.getItem(NAME_KEY);
    return name ? { name, userId: null } : null;
  } catch {
    return null;
  }
}

export function rememberSession(session: Session | null): void {
  try {
    localStorage.removeItem(NAME_KEY);
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
  } catch {
    // storage disabled: the name is simply not remembered
  }
}

/** The most characters a name may have (the server's rule). */
export const MAX_NAME = 100;

/** What is wrong with a name before asking the server, in plain words; null when it is fine. */
export function nameProblem(name: string): string | null {
  const trimmed = name.trim();
  if (!trimmed) return 'Type a name first — any name works.';
  const length = [...trimmed].length;
  if (length > MAX_NAME) return `A name can be at most ${MAX_NAME} characters; this one has ${length}.`;
  return null;
}

/** Why signing in did not work, in words for the person. */
export class SignInError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid' | 'busy' | 'not_demo' | 'network' | 'server',
  ) {
    super(message);
    this.name = 'SignInError';
  }
}

/** The server's field rule, in plain words (never its "invalid request body"). */
function plainNameRule(problem: string | undefined): string {
  if (!problem) return 'That name cannot be used. Try another one.';
  if (/^Length must be between/i.test(problem)) return `A name needs 1 to ${MAX_NAME} characters.`;
  return `That name cannot be used: ${problem.replace(/\.$/, '')}.`;
}

export interface DemoToken {
  token: string;
  userId: string;
  name: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A demo token for `name` (demo mode only): `{token, userId, name}`, the id derived from the name.
 * `retries`: how often to wait and ask again when the server says too many sign-ins (reconnects).
 */
export async function fetchDemoToken(name: string, { retries = 0, signal }: { retries?: number; signal?: AbortSignal } = {}): Promise<DemoToken> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch('/demo/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ name }),
        signal: signal ?? AbortSignal.timeout(10000),
      });
    } catch {
      throw new SignInError(
        navigator.onLine === false ? "You're offline — connect to the internet and try again." : "The server can't be reached right now. Try again in a moment.",
        'network',
      );
    }
    let body: { token?: unknown; userId?: unknown; name?: unknown; message?: unknown; fields?: { name?: string[] } } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not JSON
    }
    if (res.ok && typeof body.token === 'string') {
      return { token: body.token, userId: typeof body.userId === 'string' ? body.userId : '', name: typeof body.name === 'string' ? body.name : name };
    }
    if (res.status === 429 && attempt < retries) {
      await sleep(700 * (attempt + 1));
      continue;
    }
    if (res.status === 429) throw new SignInError('Too many sign-ins from this network just now. Wait a few seconds and try again.', 'busy');
    if (res.status === 404) throw new SignInError("This server isn't in demo mode, so it doesn't sign people in by name.", 'not_demo');
    if (res.status === 400) throw new SignInError(plainNameRule(body.fields?.name?.[0]), 'invalid');
    throw new SignInError(`Signing in didn't work (the server answered ${res.status}). Try again in a moment.`, 'server');
  }
}

export interface ServerInfo {
  demo: boolean;
  version: string | null;
}

/** `GET /api/info`: whether this node is in demo mode; null when it does not say. */
export async function fetchServerInfo(): Promise<ServerInfo | null> {
  try {
    const res = await fetch('/api/info', { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(10000) });
    if (!res.ok) return null;
    const body = (await res.json()) as { demo?: unknown; version?: unknown };
    return { demo: body.demo === true, version: typeof body.version === 'string' ? body.version : null };
  } catch {
    return null;
  }
}

/** Socket.IO transports from the page URL: `?transport=polling` or `?transport=websocket`. */
export function transportsFromUrl(search: string = location.search): Array<'polling' | 'websocket'> | undefined {
  const wanted = new URLSearchParams(search).get('transport');
  if (wanted === 'polling') return ['polling'];
  if (wanted === 'websocket') return ['websocket'];
  return undefined;
}
