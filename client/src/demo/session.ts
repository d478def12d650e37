/** The demo's sign-in: a remembered name and demo tokens from `POST /demo/token`. */

const NAME_KEY = 'realtime-demo:name';

export function rememberedName(): string | null {
  try {
    return localStorage.getItem(NAME_KEY);
  } catch {
    return null;
  }
}

export function rememberName(name: string | null): void {
  try {
    if (name) localStorage.setItem(NAME_KEY, name);
    else localStorage.removeItem(NAME_KEY);
  } catch {
    // storage disabled: the name is simply not remembered
  }
}

/** A demo token for `name` (demo mode only). The server puts the name in the token's `sub`. */
export async function fetchDemoToken(name: string, signal?: AbortSignal): Promise<string> {
  const res = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ userId: name }),
    signal: signal ?? AbortSignal.timeout(10000),
  });
  let body: { token?: unknown; message?: unknown } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON
  }
  if (!res.ok || typeof body.token !== 'string') {
    const detail = typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
    throw new Error(res.status === 404 ? 'This server is not in demo mode.' : `Could not sign in: ${detail}`);
  }
  return body.token;
}

/** Socket.IO transports from the page URL: `?transport=polling` or `?transport=websocket`. */
export function transportsFromUrl(search: string = location.search): Array<'polling' | 'websocket'> | undefined {
  const wanted = new URLSearchParams(search).get('transport');
  if (wanted === 'polling') return ['polling'];
  if (wanted === 'websocket') return ['websocket'];
  return undefined;
}
