/**
 * One error shape for the whole API (the PRD envelope): failures answer
 * `{ success: false, message, error: { code, requestId, details? } }` with the HTTP
 * status that the code maps to. Handlers throw ApiError; app.onError renders it.
 */
import { z } from './schemas/zod';

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INVALID_STATE: 409,
  QUOTA_EXCEEDED: 409,
  GPU_CAPACITY: 409,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  /** Guacamole shares the owner's live session: with the owner not connected there is nothing to join. */
  OWNER_NOT_CONNECTED: 409,
  SHARING_UNSUPPORTED: 409,
  /** A WebRTC desktop (no VM), or disks on storage that cannot take snapshots (plain LVM, raw files). */
  SNAPSHOTS_UNSUPPORTED: 409,
  /** The user keeps SNAPSHOT_MAX_PER_USER snapshots already. */
  SNAPSHOT_QUOTA: 409,
  /** A share link revoked, expired or used up: it will never work again. */
  SHARE_LINK_GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SITE_UNAVAILABLE: 503,
  DATABASE_UNAVAILABLE: 503,
} as const;

export const ErrorCodeSchema = z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]]);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export const ErrorEnvelopeSchema = z.object({
  success: z.literal(false),
  message: z.string(),
  error: z.object({
    code: ErrorCodeSchema,
    requestId: z.string(),
    details: z.unknown().optional(),
  }),
});

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const notFound = (what: string) => new ApiError('NOT_FOUND', `${what} not found`);
