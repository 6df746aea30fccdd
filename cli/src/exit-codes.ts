/**
 * Exit codes by outcome, so scripts can tell what happened without parsing output
 * (README "CLI" lists them).
 */
import {
  ConflictError,
  ConnectionError,
  DesktopFailedError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  NotFoundError,
  PayloadError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
  WaitTimeoutError,
} from '@cdaas/sdk';

export const EXIT = {
  OK: 0,
  /** Anything not below: a server error, an unexpected failure. */
  ERROR: 1,
  /** A bad command line, or input the API refused (400, 413, 415). */
  USAGE: 2,
  /** Not signed in, or the token was refused (401). */
  UNAUTHENTICATED: 3,
  /** Signed in but not allowed (403). */
  FORBIDDEN: 4,
  /** No such desktop or template (404). */
  NOT_FOUND: 5,
  /** Refused by the desktop's state, the quota, GPU capacity or an Idempotency-Key (409, 422). */
  CONFLICT: 6,
  /** The API could not be reached, or stayed rate limited or unavailable through the retries (429, 503). */
  UNAVAILABLE: 7,
  /** The desktop ended FAILED (or DELETED) while waiting for another status. */
  DESKTOP_FAILED: 8,
  /** The desktop did not reach the status in time. */
  TIMEOUT: 9,
  /** Interrupted (Ctrl-C). */
  INTERRUPTED: 130,
} as const;

/** A failure of the command line itself (not of the API), e.g. no token configured. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.ERROR) {
    super(message);
    this.exitCode = exitCode;
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof ValidationError || err instanceof PayloadError) return EXIT.USAGE;
  if (err instanceof UnauthorizedError) return EXIT.UNAUTHENTICATED;
  if (err instanceof ForbiddenError) return EXIT.FORBIDDEN;
  if (err instanceof NotFoundError) return EXIT.NOT_FOUND;
  if (err instanceof ConflictError || err instanceof IdempotencyKeyReusedError) return EXIT.CONFLICT;
  if (err instanceof RateLimitedError || err instanceof UnavailableError || err instanceof ConnectionError) return EXIT.UNAVAILABLE;
  if (err instanceof DesktopFailedError) return EXIT.DESKTOP_FAILED;
  if (err instanceof WaitTimeoutError) return EXIT.TIMEOUT;
  return EXIT.ERROR;
}
