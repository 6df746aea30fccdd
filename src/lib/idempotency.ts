/**
 * Idempotent creates (`Idempotency-Key`, as the IETF httpapi draft describes it): the
 * same key from the same caller within 24 h answers the desktop the first request made;
 * the same key with another body is refused (422); a retry while the first request is
 * still running is told to come back (409). What a key remembers, and what a new request
 * with it leads to, is decided here as a pure function; the IdempotencyKey Durable Object
 * (one per caller and key) keeps the record and applies the decision atomically.
 */
import { z } from '../schemas/zod';

export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3_600_000;
/**
 * A claim this old that never finished belongs to a request that died (the Worker was
 * evicted mid-create). The next request with the key resumes it with the same desktop id,
 * so it cannot make a second desktop whichever way the first one ended.
 */
export const IDEMPOTENCY_IN_FLIGHT_MS = 60_000;

export const IdempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces')
  .openapi({
    description:
      'Makes the create safe to retry: the same key from the same caller within 24 hours answers the desktop the first request created (202, same id, header Idempotent-Replayed: true) and creates nothing. The same key with a different body is a 422 IDEMPOTENCY_KEY_REUSED; a retry while the first request is still being handled is a 409 IDEMPOTENCY_KEY_IN_USE (retry after a moment). A request that failed is not remembered: retrying it with the key tries again. A random UUID per intended desktop is a good key.',
    example: '3f1c9a52-7d4e-4b8e-9a51-0c2f6e1d8b77',
  });

export interface KeyRecord {
  /** SHA-256 of the request body in canonical form (keys sorted). */
  fingerprint: string;
  desktopId: string;
  state: 'pending' | 'done';
  firstSeenAt: number;
  claimedAt: number;
}

export type Claim =
  | { outcome: 'proceed'; desktopId: string; resumed: boolean }
  | { outcome: 'replay'; desktopId: string }
  | { outcome: 'mismatch' }
  | { outcome: 'in_progress' };

/** What a request with `fingerprint` gets, and the record the key then holds. */
export function decideClaim(
  held: KeyRecord | null,
  req: { fingerprint: string; proposedDesktopId: string },
  now: number,
): { claim: Claim; record: KeyRecord | null } {
  const live = held && now - held.firstSeenAt < IDEMPOTENCY_KEY_TTL_MS ? held : null;
  if (!live) {
    const record: KeyRecord = {
      fingerprint: req.fingerprint,
      desktopId: req.proposedDesktopId,
      state: 'pending',
      firstSeenAt: now,
      claimedAt: now,
    };
    return { claim: { outcome: 'proceed', desktopId: record.desktopId, resumed: false }, record };
  }
  if (live.fingerprint !== req.fingerprint) return { claim: { outcome: 'mismatch' }, record: live };
  if (live.state === 'done') return { claim: { outcome: 'replay', desktopId: live.desktopId }, record: live };
  if (now - live.claimedAt < IDEMPOTENCY_IN_FLIGHT_MS) return { claim: { outcome: 'in_progress' }, record: live };
  return { claim: { outcome: 'proceed', desktopId: live.desktopId, resumed: true }, record: { ...live, claimedAt: now } };
}

/** JSON with object keys sorted, so the same body written in another order has the same fingerprint. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
