/**
 * Durable Object RPC loses error classes on the way back, so DO methods return a
 * Result and the route turns a failure into an ApiError.
 */
import { ApiError, type ErrorCode } from '../errors';

export type Result<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(code: ErrorCode, message: string): Result<T> => ({ ok: false, code, message });

export function unwrap<T>(r: Result<T>): T {
  if (r.ok) return r.value;
  throw new ApiError(r.code, r.message);
}
