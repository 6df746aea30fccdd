/**
 * Renders every failure in the PRD envelope. Known errors keep their status; anything
 * else is logged with the request id and answered as a generic 500 with no detail, so
 * no stack trace or internal text reaches a client.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppEnv } from '../app-env';
import { describeDbError } from '../db/errors';
import { ApiError, type ErrorCode } from '../errors';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

export function errorResponse(c: Context<AppEnv>, err: ApiError) {
  for (const [k, v] of Object.entries(err.headers ?? {})) c.header(k, v);
  const error: { code: ErrorCode; requestId: string; details?: unknown } = { code: err.code, requestId: c.var.requestId ?? 'unknown' };
  if (err.details !== undefined) error.details = err.details;
  return c.json({ success: false as const, message: err.message, error }, err.status as ContentfulStatusCode);
}

export function onError(err: Error, c: Context<AppEnv>) {
  if (err instanceof ApiError) return errorResponse(c, err);
  if (err instanceof HTTPException && err.status < 500) {
    const code = CODE_BY_STATUS[err.status] ?? 'BAD_REQUEST';
    const message = err.status === 415 ? 'Unsupported Content-Type: send the body as application/json' : err.message || 'Bad request';
    return errorResponse(c, new ApiError(code, message));
  }
  // describeDbError: a failed query's error carries its parameters (a webhook's signing secret, a user's input).
  console.error(
    JSON.stringify({ msg: 'unhandled error', requestId: c.var.requestId, path: loggablePath(c.req.path), error: describeDbError(err) }),
  );
  return errorResponse(c, new ApiError('INTERNAL_ERROR', 'Internal error; quote the request id when reporting it'));
}

/** The path without credentials in it: connect links of older releases carried their ticket in the path. */
export const loggablePath = (path: string) => path.replace(/^(\/api\/v1\/connect\/)[^/]+/, '$1<ticket>');
