/**
 * An admin's subscription covers every desktop, on the strength of a role its owner had when
 * subscribing. The edge learns roles only from tokens, so the scope has to be shown again:
 * it is delivered until `admin_until`, which moves WEBHOOK_ADMIN_DAYS ahead whenever its
 * owner uses the API as an admin, and ends at once when its owner is seen on the webhooks
 * API without the role (demoted). A demoted admin who never calls again loses it within
 * WEBHOOK_ADMIN_DAYS.
 */
import { and, eq, gt, isNull, or } from 'drizzle-orm';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env';
import { type Principal, isAdmin } from '../auth/jwt';
import { describeDbError } from '../db/errors';
import { withDb } from '../db/client';
import { webhooks } from '../db/schema';
import type { Config } from '../env';

const DAY = 86_400_000;
/** Renewals are written at most this often per admin and isolate: it is a deadline days away. */
const RENEW_EVERY_MS = 3_600_000;
const renewedAt = new Map<string, number>();

export const adminUntil = (cfg: Config, now = Date.now()) => new Date(now + cfg.WEBHOOK_ADMIN_DAYS * DAY).toISOString();

const ownedAsAdmin = (sub: string) => and(eq(webhooks.ownerRole, 'admin'), eq(webhooks.ownerSub, sub), isNull(webhooks.deletedAt));

/** An admin used the API: their subscriptions' scope runs WEBHOOK_ADMIN_DAYS from now (in the background). */
export function renewAdminScope(c: Context<AppEnv>, p: Principal): void {
  if (!isAdmin(p)) return;
  const now = Date.now();
  if (now - (renewedAt.get(p.sub) ?? 0) < RENEW_EVERY_MS) return;
  renewedAt.set(p.sub, now);
  if (renewedAt.size > 5000) renewedAt.delete(renewedAt.keys().next().value as string);
  const cfg = c.var.cfg;
  c.executionCtx.waitUntil(
    withDb(cfg, (db) =>
      db
        .update(webhooks)
        .set({ adminUntil: adminUntil(cfg, now) })
        .where(ownedAsAdmin(p.sub)),
    ).then(
      () => undefined,
      (err: unknown) => {
        renewedAt.delete(p.sub);
        console.warn(JSON.stringify({ msg: 'could not renew admin webhooks', error: describeDbError(err) }));
      },
    ),
  );
}

/** Someone without the admin role who owns admin subscriptions (a demoted admin): their scope ends now. */
export async function endAdminScope(cfg: Config, p: Principal): Promise<void> {
  if (isAdmin(p)) return;
  const now = new Date().toISOString();
  await withDb(cfg, (db) =>
    db
      .update(webhooks)
      .set({ adminUntil: now })
      .where(and(ownedAsAdmin(p.sub), or(isNull(webhooks.adminUntil), gt(webhooks.adminUntil, now)))),
  );
}
