/**
 * The HTTP API (CONTRACT.md section 4): authorized JSON requests with one token refresh on 401, a
 * time limit, and errors as ApiError; plus the job endpoints the client offers.
 */
import type { ClearFinishedResponse, JobState, SubmitResponse } from './messages.js';
import type { TokenCache } from './token.js';

/** An HTTP API error (`{"error": CODE, "message": TEXT, "fields"?}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string[]> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiClientOptions {
  /** Origin of the API without a trailing slash; '' for the page's own. */
  baseUrl: string;
  fetch: typeof fetch;
  tokens: TokenCache;
  /** Time allowed for one HTTP request (ms). */
  requestTimeoutMs: number;
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  /**
   * One authorized JSON request: `Authorization: Bearer`, one retry with a fresh token on 401, a
   * time limit, errors as ApiError. Resolves with the parsed body (undefined when empty).
   */
  async request(path: string, init: RequestInit, signal?: AbortSignal): Promise<unknown> {
    const { baseUrl, fetch: fetchImpl, tokens, requestTimeoutMs } = this.options;
    const attempt = async (token: string): Promise<{ res: Response; text: string }> => {
      const headers = new Headers(init.headers);
      headers.set('Authorization', `Bearer ${token}`);
      headers.set('Accept', 'application/json');
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('request timed out')), requestTimeoutMs);
      const forward = (): void => controller.abort(signal?.reason);
      signal?.addEventListener('abort', forward, { once: true });
      try {
        const res = await fetchImpl(baseUrl + path, { ...init, headers, signal: controller.signal });
        return { res, text: await res.text() };
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', forward);
      }
    };
    let { res, text } = await attempt(tokens.cached ?? (await tokens.fresh()));
    if (res.status === 401) ({ res, text } = await attempt(await tokens.fresh()));
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) {
      const err = (typeof body === 'object' && body !== null ? body : {}) as {
        error?: string;
        message?: string;
        fields?: Record<string, string[]>;
      };
      throw new ApiError(res.status, err.error ?? `http_${res.status}`, err.message ?? (res.statusText || `HTTP ${res.status}`), err.fields ?? {});
    }
    return body;
  }

  /** `POST /api/jobs`. */
  async submitJob(videoUrl: string, title?: string): Promise<SubmitResponse> {
    const body: Record<string, string> = { videoUrl };
    if (title) body.title = title;
    return (await this.request('/api/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })) as SubmitResponse;
  }

  /** `POST /api/jobs/{jobId}/cancel`. */
  async cancelJob(jobId: string): Promise<void> {
    await this.request(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: 'POST' });
  }

  /**
   * `POST /api/processing/clear-finished` (the server's README), or `POST /api/jobs/clear-finished`
   * on a server that has it there (404/405 on the first).
   */
  async clearFinished(): Promise<ClearFinishedResponse> {
    let body: unknown;
    try {
      body = await this.request('/api/processing/clear-finished', { method: 'POST' });
    } catch (error) {
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 405))) throw error;
      body = await this.request('/api/jobs/clear-finished', { method: 'POST' });
    }
    const cleared = (body as Partial<ClearFinishedResponse> | undefined)?.cleared;
    return { cleared: typeof cleared === 'number' ? cleared : 0 };
  }

  /** `GET /api/jobs/{jobId}`. */
  async fetchJob(jobId: string): Promise<JobState> {
    return (await this.request(`/api/jobs/${encodeURIComponent(jobId)}`, { method: 'GET' })) as JobState;
  }
}
