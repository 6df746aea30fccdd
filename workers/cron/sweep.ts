/**
 * Cron safety net: every desktop clock (watchdog, idle stop, session limit, expiry and
 * their warnings) is a Durable Object alarm, but should one ever be lost, this sweep
 * finds desktops whose next clock is well past due and makes their object check
 * itself. It reads only rows with next_due_at before the cut-off (an index range scan),
 * so its cost follows the overdue desktops, not the fleet.
 */
import { lt } from 'drizzle-orm';
import { withDb } from '../../src/db/client';
import { desktops } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import { SWEEP_LATE_MS } from './sweep-policy';

const BATCH = 500;

/** Resolves to the ids of the desktops it nudged. */
export async function sweepOverdueDesktops(env: Bindings, now: number): Promise<string[]> {
  const cutoff = new Date(now - SWEEP_LATE_MS).toISOString();
  const overdue = await withDb(config(env), (db) =>
    db.select({ id: desktops.id }).from(desktops).where(lt(desktops.nextDueAt, cutoff)).orderBy(desktops.nextDueAt).limit(BATCH),
  );
  await Promise.all(overdue.map((d) => env.DESKTOP_SESSION.getByName(d.id).checkWatchdog()));
  return overdue.map((d) => d.id);
}
