/**
 * Desktop snapshots as the API takes them. Names follow Proxmox's rule for snapshot names (pve-common's
 * JSONSchema.pm `pve-configid`: a letter, then letters, digits, `-` or `_`; at most 40 characters, as the snapshot
 * endpoints' schema says), so a name the API accepts is one Proxmox accepts; `current` and `pending` are Proxmox's own.
 */
import { z } from './zod';

const CONFIGID = /^[a-z][a-z0-9_-]+$/i;
const RESERVED = new Set(['current', 'pending']);
/** Scheduled snapshots carry this prefix: retention only ever deletes these, never one a user took by hand. */
export const SCHEDULED_PREFIX = 'auto-';

export const SnapshotNameSchema = z
  .string()
  .max(40, 'A snapshot name is at most 40 characters long (Proxmox)')
  .regex(CONFIGID, 'A snapshot name starts with a letter and has only letters, digits, - and _ (at least 2 characters)')
  .refine((name) => !RESERVED.has(name.toLowerCase()), 'current and pending are names Proxmox keeps for itself');

/** A name a user gives a snapshot: not one of the scheduled ones', which retention may delete and the quota does not count. */
export const HandSnapshotNameSchema = SnapshotNameSchema.refine(
  (name) => !name.startsWith(SCHEDULED_PREFIX),
  `Names starting with ${SCHEDULED_PREFIX} are kept for scheduled snapshots`,
);

export const CreateSnapshotSchema = z.object({
  /** Default: `snap-<UTC date and time>`. */
  name: HandSnapshotNameSchema.optional(),
  /** Also save the running guest's RAM: a restore resumes it where it was instead of booting it. */
  withRam: z.boolean().default(false),
  description: z.string().max(200).optional(),
});
export type CreateSnapshot = z.infer<typeof CreateSnapshotSchema>;

/** `<prefix><yyyymmdd>-<hhmmss>` in UTC: 2 to 40 characters for any prefix of up to 24. */
export function timestampedSnapshotName(prefix: string, at: Date): string {
  const iso = at.toISOString();
  return `${prefix}${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}

/** How long scheduled snapshots are kept: the newest `keepLast`, and all younger than `keepDays` (either keeps one). */
export const SnapshotRetentionSchema = z
  .object({
    keepLast: z.number().int().min(1).max(100).optional(),
    keepDays: z.number().int().min(1).max(3650).optional(),
  })
  .refine((r) => r.keepLast !== undefined || r.keepDays !== undefined, 'Give keepLast, keepDays or both');
export type SnapshotRetention = z.infer<typeof SnapshotRetentionSchema>;

/**
 * A retention-managed schedule keeps at most this many scheduled snapshots on a desktop. They do not count against the
 * per-user snapshot quota (retention bounds them instead), and a long chain of snapshots slows a Proxmox disk, so a
 * schedule whose keepDays would keep more is refused.
 */
export const MAX_SCHEDULED_KEPT = 100;

/** The most scheduled snapshots `schedule` keeps at once: the newest keepLast, or those younger than keepDays. */
export function scheduledKeptAtMost(s: { everyHours: number; retention: SnapshotRetention }): number {
  const byAge = s.retention.keepDays === undefined ? 0 : Math.ceil((s.retention.keepDays * 24) / s.everyHours);
  return Math.max(s.retention.keepLast ?? 0, byAge);
}

/** Scheduled snapshots: one every `everyHours`, named `auto-<yyyymmdd>-<hhmmss>` (UTC), kept per `retention`. */
export const SnapshotScheduleSchema = z
  .strictObject({
    everyHours: z.number().int().min(1).max(168),
    retention: SnapshotRetentionSchema,
  })
  .refine(
    (s) => scheduledKeptAtMost(s) <= MAX_SCHEDULED_KEPT,
    `keepDays would keep more than ${MAX_SCHEDULED_KEPT} scheduled snapshots at this interval: keep fewer days or take them less often`,
  );
export type SnapshotSchedule = z.infer<typeof SnapshotScheduleSchema>;

/** A desktop's own setting: a schedule of its own, or `{ off: true }` (no scheduled snapshots, whatever its template says). */
export const SnapshotsOffSchema = z.strictObject({ off: z.literal(true) });
export const DesktopScheduleSettingSchema = z.union([SnapshotScheduleSchema, SnapshotsOffSchema]);
export type DesktopScheduleSetting = z.infer<typeof DesktopScheduleSettingSchema>;

export const isScheduledName = (name: string) => name.startsWith(SCHEDULED_PREFIX);
