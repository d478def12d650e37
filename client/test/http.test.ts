/**
 * ApiClient (token retry on 401, errors, time limit) and TokenCache, against a scripted fetch.
 */
import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../src/lib/http';
import { TokenCache } from '../src/lib/token';

interface Call {
  url: string;
  authorization: string | null;
  accept: string | null;
  init: RequestInit;
}

/** A fetch that answers each call with the next scripted response (the last one repeats). */
function scriptedFetch(answers: Array<() => Response | Promise<Response>>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const impl = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    calls.push({ url: String(input), authorization: headers.get('Authorization'), accept: headers.get('Accept'), init });
    return answers[Math.min(calls.length - 1, answers.length - 1)]!();
  };
  return { fetch: impl as typeof fetch, calls };
}

const json = (status: number, body: unknown): (() => Response) => () =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

function tokenSource(): { tokens: TokenCache; issued: () => number } {
  let n = 0;
  return { tokens: new TokenCache(async () => `t${++n}`), issued: () => n };
}

function api(fetchImpl: typeof fetch, tokens: TokenCache, requestTimeoutMs = 1000): ApiClient {
  return new ApiClient({ baseUrl: 'http://api.test', fetch: fetchImpl, tokens, requestTimeoutMs });
}

describe('ApiClient', () => {
  it('sends the cached token as a Bearer to baseUrl + path and parses the JSON answer', async () => {
    const { tokens, issued } = tokenSource();
    await tokens.fresh();
    const { fetch, calls } = scriptedFetch([json(200, { ok: 1 })]);
    await expect(api(fetch, tokens).request('/api/x', { method: 'GET' })).resolves.toEqual({ ok: 1 });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ url: 'http://api.test/api/x', authorization: 'Bearer t1', accept: 'application/json' });
    expect(issued()).toBe(1);
  });

  it('asks for a token when none is cached', async () => {
    const { tokens, issued } = tokenSource();
    const { fetch, calls } = scriptedFetch([json(200, {})]);
    await api(fetch, tokens).request('/api/x', { method: 'GET' });
    expect(issued()).toBe(1);
    expect(calls[0]?.authorization).toBe('Bearer t1');
  });

  it('on a 401 gets a fresh token and retries once with it', async () => {
    const { tokens, issued } = tokenSource();
    const { fetch, calls } = scriptedFetch([json(401, { error: 'unauthorized', message: 'expired' }), json(200, { ok: 2 })]);
    await expect(api(fetch, tokens).request('/api/x', { method: 'GET' })).resolves.toEqual({ ok: 2 });
    expect(calls.map((c) => c.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
    expect(issued()).toBe(2);
    expect(tokens.cached).toBe('t2');
  });

  it('gives up with an ApiError after a second 401', async () => {
    const { tokens, issued } = tokenSource();
    const { fetch, calls } = scriptedFetch([json(401, { error: 'unauthorized', message: 'expired' })]);
    const error = await api(fetch, tokens).request('/api/x', { method: 'GET' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401, code: 'unauthorized', message: 'expired' });
    expect(calls).toHaveLength(2);
    expect(issued()).toBe(2);
  });

  it('does not retry other errors, and carries code, message and fields', async () => {
    const { tokens } = tokenSource();
    const body = { error: 'validation_error', message: 'bad url', fields: { videoUrl: ['not a YouTube URL'] } };
    const { fetch, calls } = scriptedFetch([json(400, body)]);
    const error = await api(fetch, tokens).submitJob('nope').catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ApiError', status: 400, code: 'validation_error', message: 'bad url', fields: body.fields });
    expect(calls).toHaveLength(1);
  });

  it('names an error without a JSON body by its status', async () => {
    const { tokens } = tokenSource();
    const { fetch } = scriptedFetch([() => new Response('<html>oops</html>', { status: 502, statusText: 'Bad Gateway' })]);
    await expect(api(fetch, tokens).request('/api/x', { method: 'GET' })).rejects.toMatchObject({
      status: 502,
      code: 'http_502',
      message: 'Bad Gateway',
      fields: {},
    });
  });

  it('resolves an empty answer as undefined', async () => {
    const { tokens } = tokenSource();
    const { fetch } = scriptedFetch([() => new Response(null, { status: 202 })]);
    await expect(api(fetch, tokens).cancelJob('j 1')).resolves.toBeUndefined();
  });

  it('posts a job as JSON and encodes job ids in paths', async () => {
    const { tokens } = tokenSource();
    const { fetch, calls } = scriptedFetch([json(202, { jobId: 'j1', status: 'queued', position: 1, estimatedWaitSeconds: 10 })]);
    const client = api(fetch, tokens);
    await expect(client.submitJob('https://youtu.be/x', 'Talk')).resolves.toMatchObject({ jobId: 'j1' });
    expect(calls[0]?.init.method).toBe('POST');
    expect(new Headers(calls[0]?.init.headers).get('Content-Type')).toBe('application/json');
    expect(JSON.parse(String(calls[0]?.init.body))).toEqual({ videoUrl: 'https://youtu.be/x', title: 'Talk' });
    await client.fetchJob('a/b');
    expect(calls[1]?.url).toBe('http://api.test/api/jobs/a%2Fb');
  });

  /** A fetch that only ever ends by its signal aborting. */
  const hangingFetch = (async (_input: RequestInfo | URL, init: RequestInit = {}) =>
    new Promise<Response>((_resolve, reject) => {
      init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
    })) as typeof fetch;

  it('aborts a request that takes longer than requestTimeoutMs', async () => {
    const { tokens } = tokenSource();
    await expect(api(hangingFetch, tokens, 30).request('/api/x', { method: 'GET' })).rejects.toThrow('request timed out');
  });

  it("forwards the caller's abort to the request", async () => {
    const { tokens } = tokenSource();
    const controller = new AbortController();
    const pending = api(hangingFetch, tokens, 5000).request('/api/x', { method: 'GET' }, controller.signal);
    setTimeout(() => controller.abort(new Error('stopped')), 10);
    await expect(pending).rejects.toThrow('stopped');
  });
});

describe('TokenCache', () => {
  function cache(): { tokens: TokenCache; clock: { now: number }; issued: () => number } {
    let n = 0;
    const clock = { now: 1_000_000 };
    return { tokens: new TokenCache(async () => `t${++n}`, () => clock.now), clock, issued: () => n };
  }

  it('reuses a token read just before for one connection attempt, then asks again', async () => {
    const { tokens, issued } = cache();
    await tokens.fresh();
    await expect(tokens.forConnection()).resolves.toBe('t1');
    await expect(tokens.forConnection()).resolves.toBe('t2');
    expect(issued()).toBe(2);
  });

  it('does not reuse a token older than two seconds for a connection', async () => {
    const { tokens, clock } = cache();
    await tokens.fresh();
    clock.now += 2000;
    await expect(tokens.forConnection()).resolves.toBe('t2');
  });

  it('keeps the last token for HTTP until dropped', async () => {
    const { tokens } = cache();
    expect(tokens.cached).toBeNull();
    await tokens.forConnection();
    expect(tokens.cached).toBe('t1');
    tokens.drop();
    expect(tokens.cached).toBeNull();
  });

  it('rejects an empty token from getToken', async () => {
    const tokens = new TokenCache(async () => '');
    await expect(tokens.fresh()).rejects.toThrow('getToken() returned no token');
    expect(tokens.cached).toBeNull();
  });
});
