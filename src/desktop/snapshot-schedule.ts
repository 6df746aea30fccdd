/**
 * Scheduled snapshots, pure: which schedule a desktop follows (its own, else its template's), and what one check of a
 * desktop does: take a scheduled snapshot, delete one its retention lets go, or nothing until a given time. The cron
 * (workers/cron/snapshot-schedule.ts) runs a check for each desktop whose check is due and stores the next time.
 */
import type { DesktopSnapshot } from '../schemas/bridge-protocol';
import { type DesktopScheduleSetting, SCHEDULED_PREFIX, type SnapshotSchedule, timestampedSnapshotName } from '../schemas/snapshot';
import { type SnapshotSeen, snapshotsToPrune } from './snapshot-policy';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * The cron's period. A snapshot is taken this much before its interval is up, so the cron run just before the
 * interval ends takes it and the times do not drift later by up to a period each time.
 */
export const SCHEDULE_SLACK_MS = 5 * 60_000;
/** After a take or a delete, look again at the next cron run: to prune after the take, or to delete the next one. */
export const RECHECK_MS = 60_000;

export type ScheduleSource = 'desktop' | 'template' | null;

/** A desktop's own setting wins over its template's schedule; `{ off: true }` turns its template's off for it. */
export function effectiveSchedule(
  own: DesktopScheduleSetting | null,
  template: SnapshotSchedule | null,
): { schedule: SnapshotSchedule | null; source: ScheduleSource } {
  if (own) return { schedule: 'off' in own ? null : own, source: 'desktop' };
  return { schedule: template, source: template ? 'template' : null };
}

/** `auto-20261205-120000` → its time (ms), or null for a name that does not carry one. */
export function scheduledNameTime(name: string): number | null {
  const m = /^auto-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/.exec(name);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const t = Date.UTC(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0);
  return Number.isNaN(t) ? null : t;
}

/** The listing as retention reads it: Proxmox's time, else the time in a scheduled name, else the epoch (oldest). */
export function seen(listing: Pick<DesktopSnapshot, 'name' | 'takenAt'>[]): SnapshotSeen[] {
  return listing.map((s) => {
    const listed = s.takenAt ? Date.parse(s.takenAt) : Number.NaN;
    return { name: s.name, takenAt: Number.isFinite(listed) ? listed : (scheduledNameTime(s.name) ?? 0) };
  });
}

export interface ScheduleCheck {
  schedule: SnapshotSchedule;
  /** When a check last asked for a scheduled snapshot (ms), taken or not (a failed take waits for the next interval). */
  lastRunAt: number | null;
  /** The desktop's snapshots, as its site lists them now. */
  snapshots: SnapshotSeen[];
  /** When a STOPPED desktop stopped (ms); null while it runs or when unknown. */
  stoppedAt: number | null;
  now: number;
}

export type ScheduledStep =
  | { kind: 'take'; name: string; nextCheckAt: number }
  | { kind: 'prune'; name: string; nextCheckAt: number }
  | { kind: 'wait'; why: 'not_due' | 'unchanged'; nextCheckAt: number };

const newestScheduled = (snapshots: SnapshotSeen[]) =>
  snapshots.filter((s) => s.name.startsWith(SCHEDULED_PREFIX)).reduce<number | null>((t, s) => Math.max(t ?? 0, s.takenAt), null);

/** When the next scheduled snapshot is due: an interval (less the slack) after the last run or scheduled snapshot. */
export function nextTakeAt(c: Pick<ScheduleCheck, 'schedule' | 'lastRunAt' | 'snapshots'>): number | null {
  const last = Math.max(c.lastRunAt ?? 0, newestScheduled(c.snapshots) ?? 0);
  return last === 0 ? null : last + c.schedule.everyHours * HOUR_MS - SCHEDULE_SLACK_MS;
}

/**
 * One check: a snapshot when one is due (a STOPPED desktop with a scheduled snapshot since it stopped has not changed:
 * it waits an interval), else the oldest scheduled snapshot retention lets go (one a check, as a desktop runs one
 * snapshot command at a time), else nothing until the next take or the next snapshot to age out of keepDays.
 */
export function scheduledStep(c: ScheduleCheck): ScheduledStep {
  const due = nextTakeAt(c);
  const interval = c.schedule.everyHours * HOUR_MS;
  if (due === null || c.now >= due) {
    const newest = newestScheduled(c.snapshots);
    const unchanged = c.stoppedAt !== null && newest !== null && newest >= c.stoppedAt;
    if (!unchanged)
      return { kind: 'take', name: timestampedSnapshotName(SCHEDULED_PREFIX, new Date(c.now)), nextCheckAt: c.now + RECHECK_MS };
    const prune = pruneStep(c);
    return prune ?? { kind: 'wait', why: 'unchanged', nextCheckAt: c.now + interval };
  }
  return pruneStep(c) ?? { kind: 'wait', why: 'not_due', nextCheckAt: Math.min(due, agesOutAt(c) ?? due) };
}

function pruneStep(c: ScheduleCheck): ScheduledStep | null {
  const names = new Set(snapshotsToPrune(c.snapshots, c.schedule.retention, c.now));
  const oldest = c.snapshots.filter((s) => names.has(s.name)).sort((a, b) => a.takenAt - b.takenAt)[0];
  return oldest ? { kind: 'prune', name: oldest.name, nextCheckAt: c.now + RECHECK_MS } : null;
}

/** The next time a scheduled snapshot gets older than keepDays (when retention may let it go), if any. */
function agesOutAt(c: ScheduleCheck): number | null {
  const days = c.schedule.retention.keepDays;
  if (days === undefined) return null;
  const times = c.snapshots
    .filter((s) => s.name.startsWith(SCHEDULED_PREFIX))
    .map((s) => s.takenAt + days * DAY_MS)
    .filter((t) => t > c.now);
  return times.length === 0 ? null : Math.min(...times);
}
