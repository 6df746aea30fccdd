/**
 * Retries with backoff, as a fetch for openapi-fetch to call. A 429 or 503 (and a 409 that
 * says a create with the same Idempotency-Key is still running) is tried again after the
 * server's Retry-After, or else after an exponential backoff with jitter. A request that
 * never got an answer (the connection failed) is tried again only when repeating it is
 * safe: reads, deletes, and creates, which always carry an Idempotency-Key.
 */
import { parseRetryAfter } from './errors.ts';

export interface RetryOptions {
  /** Retries after the first attempt (default 4; 0 turns retrying off). */
  retries?: number;
  /** First backoff when the server names no Retry-After (default 500 ms), doubling each time. */
  baseDelayMs?: number;
  /** Longest wait between attempts (default 30 s); a Retry-After longer than this ends the retries. */
  maxDelayMs?: number;
}

export type Fetch = (request: Request) => Promise<Response>;
export type Sleep = (ms: number, signal?: AbortSignal | null) => Promise<void>;

export const sleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);

function repeatable(request: Request): boolean {
  return SAFE_METHODS.has(request.method) || request.headers.has('idempotency-key');
}

async function busyCreate(response: Response): Promise<boolean> {
  if (response.status !== 409) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: string } };
    return body.error?.code === 'IDEMPOTENCY_KEY_IN_USE';
  } catch {
    return false;
  }
}

export function retryingFetch(fetchImpl: Fetch, options: RetryOptions = {}, wait: Sleep = sleep): Fetch {
  const retries = options.retries ?? 4;
  const base = options.baseDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const backoff = (attempt: number) => Math.min(max, base * 2 ** attempt) * (0.5 + Math.random() / 2);

  return async (request) => {
    for (let attempt = 0; ; attempt++) {
      // Each attempt sends its own copy: a body can be read only once.
      const copy = request.clone();
      let response: Response;
      try {
        response = await fetchImpl(copy);
      } catch (err) {
        if (attempt >= retries || !repeatable(request) || request.signal.aborted) throw err;
        await wait(backoff(attempt), request.signal);
        continue;
      }
      const again = response.status === 429 || response.status === 503 || (await busyCreate(response));
      if (!again || attempt >= retries) return response;
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      if (retryAfter !== undefined && retryAfter > max) return response;
      await response.body?.cancel();
      await wait(retryAfter ?? backoff(attempt), request.signal);
    }
  };
}
