/**
 * Scheduled snapshots, run by the cron trigger. Each run reads only the desktops whose check is due (an index range
 * scan on snapshot_due_at, at most BATCH of them), so its cost follows the due desktops, not the fleet. A check asks
 * the desktop's object and its site's live listing, then does one step of src/desktop/snapshot-schedule.ts: take an
 * `auto-` snapshot (without RAM), or delete the oldest one its retention lets go, or nothing; and stores when to look
 * again. A desktop that cannot be snapshotted now (busy, not RUNNING or STOPPED, its bridge offline) is looked at
 * again at the next run. Takes and deletes are audited with the actor `system:snapshot-schedule`.
 */
import { withDb } from '../../src/db/client';
import { insertAudit } from '../../src/db/queries';
import { type CheckOutcome, type DueSchedule, dueSchedules, recordChecks } from '../../src/db/snapshot-schedules';
import { snapshotRefusal } from '../../src/desktop/snapshot-policy';
import { effectiveSchedule, scheduledStep, seen } from '../../src/desktop/snapshot-schedule';
import { type Bindings, config } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import { listSnapshots } from '../../src/lib/snapshots';
import type { Desktop } from '../../src/schemas/desktop';
import type { AuditRecord } from '../../src/schemas/jobs';
import { isPoolMember } from '../../src/schemas/pool';
import type { SnapshotSchedule } from '../../src/schemas/snapshot';

export const SCHEDULE_ACTOR = 'system:snapshot-schedule';
const BATCH = 100;
/** A desktop that could not be checked now is due again a little later, behind those due longer (a fair queue). */
const RETRY_MS = 4 * 60_000;
const HOUR_MS = 3_600_000;

interface Checked {
  outcome: CheckOutcome;
  audit?: AuditRecord;
}

/** Resolves to what each due desktop's check decided. */
export async function runSnapshotSchedules(env: Bindings, now: number): Promise<CheckOutcome[]> {
  const cfg = config(env);
  const due = await withDb(cfg, (db) => dueSchedules(db, now, BATCH));
  if (due.length === 0) return [];
  const checked = await Promise.all(
    due.map((row) =>
      check(env, row, now).catch((err: unknown): Checked => {
        console.warn(JSON.stringify({ msg: 'scheduled snapshot check will be retried', desktopId: row.id, error: String(err) }));
        return { outcome: { id: row.id, nextAt: now + RETRY_MS } };
      }),
    ),
  );
  const audits = checked.flatMap((c) => (c.audit ? [c.audit] : []));
  await withDb(cfg, async (db) => {
    await recordChecks(
      db,
      checked.map((c) => c.outcome),
    );
    await insertAudit(db, audits);
  });
  return checked.map((c) => c.outcome);
}

async function check(env: Bindings, row: DueSchedule, now: number): Promise<Checked> {
  const { schedule } = effectiveSchedule(row.own, row.template);
  const stub = env.DESKTOP_SESSION.getByName(row.id);
  const d = schedule ? await stub.get() : null;
  // No schedule (or no desktop): nothing to look at until one is set, which makes it due again.
  if (!schedule || !d || d.status === 'DELETED' || d.backend === 'selkies') return { outcome: { id: row.id, nextAt: null } };
  const later = { outcome: { id: row.id, nextAt: now + RETRY_MS } };
  const interval = { outcome: { id: row.id, nextAt: now + schedule.everyHours * HOUR_MS } };
  // A warm pool's unclaimed member belongs to nobody yet: its owner's schedule starts when it is claimed.
  if (isPoolMember(d)) return interval;
  if (snapshotRefusal(d)) return later;
  const list = await listSnapshots(env, d);
  if (list.unsupported)
    return { ...interval, audit: audit(d, 'desktop.snapshot_schedule.skipped', 'skipped', { reason: list.unsupported }) };
  const stoppedAt = d.status === 'STOPPED' ? await stoppedSince(env, d.id) : null;
  const lastRunAt = row.runAt ? Date.parse(row.runAt) : null;
  const step = scheduledStep({ schedule, lastRunAt, snapshots: seen(list.snapshots), stoppedAt, now });
  if (step.kind === 'wait') return { outcome: { id: row.id, nextAt: step.nextCheckAt } };
  if (step.kind === 'take') {
    const spec = { name: step.name, withRam: false, description: describe(schedule) };
    const r = await stub.snapshotCommand('take', spec, SCHEDULE_ACTOR);
    if (!r.ok) return later;
    return {
      outcome: { id: row.id, nextAt: step.nextCheckAt, ranAt: now },
      audit: audit(d, 'desktop.snapshot', 'requested', { snapshot: step.name, withRam: false, everyHours: schedule.everyHours }),
    };
  }
  const withRam = list.snapshots.find((s) => s.name === step.name)?.withRam ?? false;
  const r = await stub.snapshotCommand('delete', { name: step.name, withRam }, SCHEDULE_ACTOR);
  if (!r.ok) return later;
  return {
    outcome: { id: row.id, nextAt: step.nextCheckAt },
    audit: audit(d, 'desktop.snapshot_delete', 'requested', { snapshot: step.name, retention: schedule.retention }),
  };
}

const describe = (s: SnapshotSchedule) => `Scheduled snapshot (every ${s.everyHours} h)`;

/** When a STOPPED desktop stopped: its last transition into STOPPED. */
async function stoppedSince(env: Bindings, id: string): Promise<number | null> {
  const history = await env.DESKTOP_SESSION.getByName(id).history();
  const last = history.filter((t) => t.to === 'STOPPED').at(-1);
  return last ? Date.parse(last.at) : null;
}

function audit(d: Desktop, action: string, outcome: string, details: Record<string, unknown>): AuditRecord {
  return {
    id: randomId('au'),
    at: new Date().toISOString(),
    actor: SCHEDULE_ACTOR,
    role: 'system',
    action,
    target: d.id,
    sourceIp: null,
    requestId: null,
    outcome,
    details,
  };
}
