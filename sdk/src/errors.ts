/**
 * Typed errors: every failure the API answers carries an `error.code`, and each code has
 * a class, so callers can `catch (e) { if (e instanceof QuotaExceededError) … }`. The map
 * below must name every code of the generated types, so a code the API adds cannot go
 * unmapped (the SDK stops compiling until it is).
 */
import type { Desktop, DesktopStatus, ErrorCode } from './types.ts';

export interface ErrorBody {
  code: ErrorCode | (string & {});
  requestId?: string;
  details?: unknown;
}

/** Anything the API refused or failed, with its HTTP status, code, message and request id. */
export class CdaasError extends Error {
  override name = 'CdaasError';
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  readonly details: unknown;
  /** From the Retry-After header, when the API sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: { status: number; error: ErrorBody; retryAfterMs?: number }) {
    super(message);
    this.status = init.status;
    this.code = init.error.code;
    this.requestId = init.error.requestId;
    this.details = init.error.details;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** 400: the request was malformed or failed validation (`details` lists the fields). */
export class ValidationError extends CdaasError {
  override name = 'ValidationError';
}
/** 401: no token, or not a valid one. */
export class UnauthorizedError extends CdaasError {
  override name = 'UnauthorizedError';
}
/** 403: signed in, but not allowed. */
export class ForbiddenError extends CdaasError {
  override name = 'ForbiddenError';
}
/** 404: no such desktop (or not yours: the API does not tell them apart). */
export class NotFoundError extends CdaasError {
  override name = 'NotFoundError';
}
/** 409: the request conflicts with the current state; the subclasses say how. */
export class ConflictError extends CdaasError {
  override name = 'ConflictError';
}
/** 409 INVALID_STATE: the desktop's status does not allow the action (the message names it). */
export class InvalidStateError extends ConflictError {
  override name = 'InvalidStateError';
}
/** 409 QUOTA_EXCEEDED (as many active desktops as the user may have) or SNAPSHOT_QUOTA (as many snapshots). */
export class QuotaExceededError extends ConflictError {
  override name = 'QuotaExceededError';
}
/** 409 GPU_CAPACITY: no GPU at the site has the slots this template needs now. */
export class GpuCapacityError extends ConflictError {
  override name = 'GpuCapacityError';
}
/** 409 IDEMPOTENCY_KEY_IN_USE: a create with this key is still being handled (the SDK retries these itself). */
export class IdempotencyKeyInUseError extends ConflictError {
  override name = 'IdempotencyKeyInUseError';
}
/** 422 IDEMPOTENCY_KEY_REUSED: the key was used in the last 24 h for a create with a different body. */
export class IdempotencyKeyReusedError extends CdaasError {
  override name = 'IdempotencyKeyReusedError';
}
/** 413 and 415: a body too large, or not JSON. */
export class PayloadError extends CdaasError {
  override name = 'PayloadError';
}
/** 429: over the rate limit, still after the SDK's retries. */
export class RateLimitedError extends CdaasError {
  override name = 'RateLimitedError';
}
/** 503: the site's bridge or the database is unavailable, still after the SDK's retries. */
export class UnavailableError extends CdaasError {
  override name = 'UnavailableError';
}
/** 500 and anything else unexpected; quote `requestId` when reporting it. */
export class ServerError extends CdaasError {
  override name = 'ServerError';
}

type ErrorClass = new (message: string, init: { status: number; error: ErrorBody; retryAfterMs?: number }) => CdaasError;

const ERROR_CLASSES: Record<ErrorCode, ErrorClass> = {
  BAD_REQUEST: ValidationError,
  VALIDATION_FAILED: ValidationError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  METHOD_NOT_ALLOWED: ValidationError,
  INVALID_STATE: InvalidStateError,
  QUOTA_EXCEEDED: QuotaExceededError,
  GPU_CAPACITY: GpuCapacityError,
  CONFLICT: ConflictError,
  IDEMPOTENCY_KEY_IN_USE: IdempotencyKeyInUseError,
  OWNER_NOT_CONNECTED: ConflictError,
  SHARING_UNSUPPORTED: ConflictError,
  SNAPSHOTS_UNSUPPORTED: ConflictError,
  SNAPSHOT_QUOTA: QuotaExceededError,
  SHARE_LINK_GONE: NotFoundError,
  IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReusedError,
  PAYLOAD_TOO_LARGE: PayloadError,
  UNSUPPORTED_MEDIA_TYPE: PayloadError,
  RATE_LIMITED: RateLimitedError,
  INTERNAL_ERROR: ServerError,
  SITE_UNAVAILABLE: UnavailableError,
  DATABASE_UNAVAILABLE: UnavailableError,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: ValidationError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadError,
  415: PayloadError,
  422: ValidationError,
  429: RateLimitedError,
  503: UnavailableError,
};

/** The error for a failed answer: by its code, else by its status (a proxy's answer has no envelope). */
export function errorFromResponse(response: Response, body: unknown): CdaasError {
  const envelope = body as { message?: unknown; error?: Partial<ErrorBody> } | null;
  const code = typeof envelope?.error?.code === 'string' ? envelope.error.code : `HTTP_${response.status}`;
  const message =
    typeof envelope?.message === 'string' ? envelope.message : `${response.status} ${response.statusText || 'error'} from ${response.url}`;
  const Class = ERROR_CLASSES[code as ErrorCode] ?? BY_STATUS[response.status] ?? ServerError;
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  const error: ErrorBody = { code, requestId: envelope?.error?.requestId ?? response.headers.get('x-request-id') ?? undefined };
  if (envelope?.error?.details !== undefined) error.details = envelope.error.details;
  return new Class(message, { status: response.status, error, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 10.2.3), in milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The API could not be reached (after the retries that were safe); `cause` is the underlying error. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

/** waitUntil: the desktop reached a status it cannot leave for the one awaited (FAILED, DELETED). */
export class DesktopFailedError extends Error {
  override name = 'DesktopFailedError';
  readonly desktop: Desktop;
  constructor(message: string, desktop: Desktop) {
    super(message);
    this.desktop = desktop;
  }
}

/** waitUntil: the desktop was not in the status awaited before the time-out. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
  readonly lastStatus: DesktopStatus | undefined;
  constructor(message: string, lastStatus: DesktopStatus | undefined) {
    super(message);
    this.lastStatus = lastStatus;
  }
}
