/**
 * Scheduled snapshots in Postgres: a desktop's own setting (desktop_snapshot_schedules), its template's schedule, and
 * the two columns the cron keeps on its row (snapshot_due_at, indexed, so a run reads only the desktops due; and
 * snapshot_run_at).
 */
import { asc, eq, inArray, lte } from 'drizzle-orm';
import type { DesktopScheduleSetting, SnapshotSchedule } from '../schemas/snapshot';
import type { Db } from './client';
import { desktopSnapshotSchedules, desktops, templates } from './schema';

export interface DesktopScheduleRow {
  own: DesktopScheduleSetting | null;
  template: SnapshotSchedule | null;
  dueAt: string | null;
  runAt: string | null;
}

/** A desktop's own setting, its template's schedule and its cron columns (all null before its row is written through). */
export async function desktopSchedule(db: Db, desktopId: string, templateId: string | null): Promise<DesktopScheduleRow> {
  const [own] = await db.select().from(desktopSnapshotSchedules).where(eq(desktopSnapshotSchedules.desktopId, desktopId));
  const [row] = await db
    .select({ dueAt: desktops.snapshotDueAt, runAt: desktops.snapshotRunAt })
    .from(desktops)
    .where(eq(desktops.id, desktopId));
  const [template] = templateId
    ? await db.select({ schedule: templates.snapshotSchedule }).from(templates).where(eq(templates.id, templateId))
    : [];
  return { own: own?.setting ?? null, template: template?.schedule ?? null, dueAt: row?.dueAt ?? null, runAt: row?.runAt ?? null };
}

/**
 * Sets (or, with null, clears) a desktop's own setting and makes the next cron run look at it. A desktop whose row is
 * not written through yet starts due anyway (the column's default).
 */
export async function setDesktopSchedule(db: Db, desktopId: string, setting: DesktopScheduleSetting | null, actor: string): Promise<void> {
  const now = new Date().toISOString();
  if (setting) {
    await db
      .insert(desktopSnapshotSchedules)
      .values({ desktopId, setting, updatedAt: now, updatedBy: actor })
      .onConflictDoUpdate({ target: desktopSnapshotSchedules.desktopId, set: { setting, updatedAt: now, updatedBy: actor } });
  } else {
    await db.delete(desktopSnapshotSchedules).where(eq(desktopSnapshotSchedules.desktopId, desktopId));
  }
  await db.update(desktops).set({ snapshotDueAt: now }).where(eq(desktops.id, desktopId));
}

export interface DueSchedule {
  id: string;
  own: DesktopScheduleSetting | null;
  template: SnapshotSchedule | null;
  runAt: string | null;
}

/** The desktops whose check is due at `now`, longest due first (an index range scan on snapshot_due_at). */
export async function dueSchedules(db: Db, now: number, limit: number): Promise<DueSchedule[]> {
  return db
    .select({
      id: desktops.id,
      own: desktopSnapshotSchedules.setting,
      template: templates.snapshotSchedule,
      runAt: desktops.snapshotRunAt,
    })
    .from(desktops)
    .leftJoin(desktopSnapshotSchedules, eq(desktopSnapshotSchedules.desktopId, desktops.id))
    .leftJoin(templates, eq(templates.id, desktops.templateId))
    .where(lte(desktops.snapshotDueAt, new Date(now).toISOString()))
    .orderBy(asc(desktops.snapshotDueAt))
    .limit(limit);
}

/** What one check decided: when to look next (null: never, until a schedule is set), and whether it asked for a snapshot. */
export interface CheckOutcome {
  id: string;
  nextAt: number | null;
  ranAt?: number;
}

export async function recordChecks(db: Db, outcomes: CheckOutcome[]): Promise<void> {
  // Grouped by the values set, so a run of many desktops is a few statements, not one per desktop.
  const groups = new Map<string, string[]>();
  for (const o of outcomes) {
    const key = JSON.stringify([o.nextAt, o.ranAt ?? null]);
    groups.set(key, [...(groups.get(key) ?? []), o.id]);
  }
  for (const [key, ids] of groups) {
    const [nextAt, ranAt] = JSON.parse(key) as [number | null, number | null];
    const set = {
      snapshotDueAt: nextAt === null ? null : new Date(nextAt).toISOString(),
      ...(ranAt === null ? {} : { snapshotRunAt: new Date(ranAt).toISOString() }),
    };
    await db.update(desktops).set(set).where(inArray(desktops.id, ids));
  }
}
