/**
 * Cron safety net: every desktop's watchdog is a Durable Object alarm, but should one
 * ever be lost, this sweep finds desktops that sat in a step far longer than any
 * watchdog allows and makes their object check itself. It reads only in-progress rows
 * older than the cut-off (an index scan), so its cost follows the overdue desktops,
 * not the fleet.
 */
import { and, inArray, lt } from 'drizzle-orm';
import { withDb } from '../../src/db/client';
import { desktops } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';

const IN_PROGRESS = ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'STOPPING'];

/** Resolves to the ids of the desktops it nudged. */
export async function sweepOverdueDesktops(env: Bindings, now: number): Promise<string[]> {
  const cfg = config(env);
  const longest = Math.max(600, ...Object.values(cfg.WATCHDOG_SECONDS));
  const cutoff = new Date(now - 2 * longest * 1000).toISOString();
  const overdue = await withDb(cfg, (db) =>
    db
      .select({ id: desktops.id })
      .from(desktops)
      .where(and(inArray(desktops.status, IN_PROGRESS), lt(desktops.updatedAt, cutoff)))
      .limit(500),
  );
  await Promise.all(overdue.map((d) => env.DESKTOP_SESSION.getByName(d.id).checkWatchdog()));
  return overdue.map((d) => d.id);
}
