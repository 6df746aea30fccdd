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

export const CreateSnapshotSchema = z.object({
  /** Default: `snap-<UTC date and time>`. */
  name: SnapshotNameSchema.optional(),
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
