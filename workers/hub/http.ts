/** HTTP helpers for the hub client: error classes, transient-error test, backoff. */
import { EngineError } from '../protocol';

export interface RetryOptions {
  /** Retries after the first try (per file: counted since the last committed chunk). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 6, baseDelayMs: 500, maxDelayMs: 30_000 };

/** A non-2xx answer. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status} for ${url}`);
    this.name = 'HttpStatusError';
  }
}

/** A response that must not be cached: HTML/JSON where weights were expected, wrong size, bad range. */
export class RejectedResponse extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RejectedResponse';
  }
}

/** The body ended before the expected number of bytes (a dropped connection). */
export class ShortRead extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShortRead';
  }
}

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  return err instanceof Error && (err.name === 'AbortError' || (err instanceof EngineError && err.code === 'cancelled'));
}

/** Network errors, dropped bodies, 5xx, 408 and 429 are worth another try; 4xx and integrity are not. */
export function isTransient(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 429 || err.status === 408;
  if (err instanceof ShortRead) return true;
  if (err instanceof EngineError || err instanceof RejectedResponse) return false;
  if (err instanceof TypeError) return true; // fetch: "Failed to fetch", undici: "terminated", "fetch failed"
  const code = (err as { code?: string } | null)?.code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_SOCKET)$/.test(code);
}

/** Exponential backoff with jitter; honours Retry-After when the server sent one. */
export function backoffDelay(attempt: number, opts: RetryOptions, err?: unknown): number {
  const retryAfter = err instanceof HttpStatusError ? err.retryAfterMs : undefined;
  const exp = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt);
  const jittered = exp * (0.75 + Math.random() * 0.5);
  return Math.min(opts.maxDelayMs, Math.max(jittered, retryAfter ?? 0));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(cancelled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function cancelled(what = 'Download'): EngineError {
  return new EngineError('cancelled', `${what} cancelled; finished chunks are kept and the next try resumes from them`);
}

export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return s * 1000;
  const t = Date.parse(value);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

export function statusError(res: Response, url: string): HttpStatusError {
  return new HttpStatusError(res.status, url, parseRetryAfter(res.headers.get('retry-after')));
}

/** Turn any failure into an EngineError with a message that says what to do. */
export function toEngineError(err: unknown, context: string): EngineError {
  if (err instanceof EngineError) return err;
  if (err instanceof HttpStatusError) {
    if (err.status === 401 || err.status === 403) {
      return new EngineError('network', `${context}: the hub refused access (HTTP ${err.status}); the repo may be gated or private: accept its license and pass an access token`);
    }
    if (err.status === 404) return new EngineError('network', `${context}: not found on the hub (HTTP 404, ${err.url})`);
    return new EngineError('network', `${context}: the hub answered HTTP ${err.status} (${err.url}); try again later`);
  }
  if (err instanceof RejectedResponse) return new EngineError('integrity', `${context}: ${err.message}`);
  const msg = err instanceof Error ? err.message : String(err);
  return new EngineError('network', `${context}: network error (${msg}); check the connection and try again, finished chunks are kept`);
}

/** Join a hub base URL and path segments, encoding each segment. */
export function hubPath(hubUrl: string, ...parts: string[]): string {
  const base = hubUrl.replace(/\/+$/, '');
  return base + '/' + parts.flatMap((p) => p.split('/')).map(encodeURIComponent).join('/');
}

/** `Link: <url>; rel="next"` */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}
