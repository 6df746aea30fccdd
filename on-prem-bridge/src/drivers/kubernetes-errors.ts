/**
 * Turns what `@kubernetes/client-node` throws into one InfraError (system 'kubernetes'). Non-2xx replies are
 * `ApiException`s with `.code` and `.body`, the Status JSON as a *string* (undefined for 401) (client-node's
 * src/gen/apis/exception.ts); transport failures are undici's `TypeError: fetch failed` or an abort/time-out.
 */
import { ApiException } from '@kubernetes/client-node';
import { InfraError } from './types';

export interface KubeStatus {
  code: number;
  /** `AlreadyExists`, `NotFound`, `Conflict`, `Invalid`, `Forbidden`, … or '' when the body was no Status. */
  reason: string;
  message: string;
}

/** The Status of an ApiException, parsed defensively (a proxy may answer with text or HTML). */
export function statusOf(error: ApiException<unknown>): KubeStatus {
  const raw = error.body;
  let parsed: unknown = raw;
  if (typeof raw === 'string') {
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = raw;
    }
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const { reason, message } = parsed as { reason?: unknown; message?: unknown };
    return { code: error.code, reason: typeof reason === 'string' ? reason : '', message: typeof message === 'string' ? message : '' };
  }
  const text = typeof parsed === 'string' ? parsed.trim().slice(0, 200) : '';
  return {
    code: error.code,
    reason: error.code === 401 ? 'Unauthorized' : '',
    message: text || (error.code === 401 ? 'Unauthorized' : 'no message'),
  };
}

export function isApiException(error: unknown): error is ApiException<unknown> {
  return error instanceof ApiException;
}

/** True for the given HTTP status (and, if given, Status reason) of an ApiException. */
export function hasStatus(error: unknown, code: number, reason?: string): boolean {
  if (!isApiException(error) || error.code !== code) return false;
  return reason === undefined || statusOf(error).reason === reason;
}

/**
 * 5xx (an etcd hiccup, a 504 request time-out whose write may have landed) and 429 (priority and fairness) pass;
 * a 409 Conflict is a lost optimistic-concurrency race worth re-reading. 400/401/403/404/409 AlreadyExists/422
 * repeat until someone changes the request or the cluster.
 */
export function isRetryableStatus(code: number, reason: string): boolean {
  return code >= 500 || code === 429 || code === 408 || (code === 409 && reason === 'Conflict');
}

/** Transport failures: undici's `fetch failed`, aborts and time-outs, socket errors. */
function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return true;
  if (error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code.startsWith('UND_ERR'));
}

export function toInfraError(error: unknown, what: string): InfraError {
  if (error instanceof InfraError) return error;
  if (isApiException(error)) {
    const { code, reason, message } = statusOf(error);
    return new InfraError(
      `kubernetes ${what} → ${code}${reason ? ` ${reason}` : ''}: ${message}`,
      'kubernetes',
      code,
      isRetryableStatus(code, reason),
    );
  }
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  const message = error instanceof Error ? error.message : String(error);
  // Anything else is the client refusing the configuration or a reply it cannot parse: trying again will not help.
  return new InfraError(`kubernetes ${what}: ${message}${cause}`, 'kubernetes', 0, isNetworkError(error));
}
