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
