/**
 * Reads the `sub` claim of a JWT without verifying it.
 *
 * The server decides who the user is from the token; the client only needs the same id to name its
 * local storage and the `status-all/{userId}` path, so it takes it from the token rather than from
 * anything a URL or a form could say.
 */
export function tokenSubject(token: string): string | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims === 'object' && claims !== null && 'sub' in claims) {
      const sub = (claims as { sub: unknown }).sub;
      if (typeof sub === 'string' && sub) return sub;
      if (typeof sub === 'number') return String(sub);
    }
  } catch {
    // Not a JWT: the caller falls back to an explicit userId.
  }
  return null;
}

/** How long the token read at start-up (to learn the user id) may serve the first connection. */
const TOKEN_REUSE_MS = 2000;

/** The last token `getToken()` gave, shared by the socket's connection attempts and the HTTP API. */
export class TokenCache {
  private token: string | null = null;
  private tokenAt = 0;

  constructor(
    private readonly getToken: () => Promise<string>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The cached token, if any. */
  get cached(): string | null {
    return this.token;
  }

  /** Asks `getToken()` for a new token and caches it. */
  async fresh(): Promise<string> {
    const token = await this.getToken();
    if (typeof token !== 'string' || !token) throw new Error('getToken() returned no token');
    this.token = token;
    this.tokenAt = this.now();
    return token;
  }

  /** For a connection attempt: a fresh token, except that one read just before is reused once. */
  async forConnection(): Promise<string> {
    if (this.token && this.now() - this.tokenAt < TOKEN_REUSE_MS) {
      const token = this.token;
      this.tokenAt = 0;
      return token;
    }
    return this.fresh();
  }

  /** Forgets the cached token (the server refused it). */
  drop(): void {
    this.token = null;
  }
}
