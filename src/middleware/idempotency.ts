/**
 * `Idempotency-Key` on POST /api/v1/desktops (src/lib/idempotency.ts says what it means).
 * Before the create runs, the key is claimed in its IdempotencyKey object; a replay is
 * answered here with the desktop the key already made, and a new create gets the desktop
 * id the claim holds, so a resumed claim can only ever name one desktop. Afterwards the
 * claim is completed (202) or let go (anything else).
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { actorOf } from '../auth/jwt';
import { ApiError } from '../errors';
import { success } from '../lib/envelope';
import { canonicalJson, IdempotencyKeySchema } from '../lib/idempotency';
import { randomId, sha256Hex } from '../lib/ids';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

export const idempotentCreate = createMiddleware<AppEnv>(async (c, next) => {
  const key = c.req.header(IDEMPOTENCY_HEADER);
  if (key === undefined) return next();
  const valid = IdempotencyKeySchema.safeParse(key);
  if (!valid.success) throw new ApiError('VALIDATION_FAILED', `Invalid ${IDEMPOTENCY_HEADER}: ${valid.error.issues[0]?.message}`);
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    // Not JSON: the route's validation refuses it, and a refused request holds no key.
    return next();
  }
  const caller = actorOf(c.var.principal);
  const stub = c.env.IDEMPOTENCY_KEYS.getByName(await sha256Hex(JSON.stringify([caller, key])));
  const claim = await stub.claim(await sha256Hex(canonicalJson(body)), randomId('dk'));
  switch (claim.outcome) {
    case 'mismatch':
      throw new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        `${IDEMPOTENCY_HEADER} ${JSON.stringify(key)} was used in the last 24 hours for a create with a different body; use a new key for a different desktop`,
      );
    case 'in_progress':
      throw new ApiError(
        'IDEMPOTENCY_KEY_IN_USE',
        `A create with ${IDEMPOTENCY_HEADER} ${JSON.stringify(key)} is still being handled; retry in a moment to get its desktop`,
        undefined,
        { 'Retry-After': '1' },
      );
    case 'replay':
      return replay(c, claim.desktopId);
  }
  if (claim.resumed && (await c.env.DESKTOP_SESSION.getByName(claim.desktopId).get())) {
    // The request that claimed the key made the desktop, then died before it could say so.
    await stub.complete(claim.desktopId);
    return replay(c, claim.desktopId);
  }
  c.set('idempotentDesktopId', claim.desktopId);
  await next();
  if (c.res.status === 202) await stub.complete(claim.desktopId, c.var.createdDesktopId);
  else await stub.abandon(claim.desktopId);
});

/** The first request's answer again: 202, the desktop as it is now, and where it lives. */
async function replay(c: Context<AppEnv>, desktopId: string) {
  const desktop = await c.env.DESKTOP_SESSION.getByName(desktopId).get();
  if (!desktop) throw new ApiError('INTERNAL_ERROR', `The desktop ${desktopId} this ${IDEMPOTENCY_HEADER} created cannot be found`);
  c.header('Location', `/api/v1/desktops/${desktop.id}`);
  c.header('Idempotent-Replayed', 'true');
  return c.json(success(desktop, `Desktop creation was already initiated with this ${IDEMPOTENCY_HEADER}`), 202);
}
