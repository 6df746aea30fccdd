/**
 * The rules around desktop snapshots, pure: which desktops can have them, the per-user count quota, and which
 * scheduled snapshots a retention policy lets go.
 */
import type { Backend, DesktopStatus } from '../schemas/desktop';
import { SCHEDULED_PREFIX, type SnapshotRetention } from '../schemas/snapshot';

export interface SnapshotSeen {
  name: string;
  /** ms since the epoch. */
  takenAt: number;
}

const DAY_MS = 86_400_000;
/** A snapshot is taken, or rolled back to, on a VM that is not being built, moved or deleted. */
const SETTLED: ReadonlySet<DesktopStatus> = new Set(['RUNNING', 'STOPPED']);

/** Why this desktop cannot have a snapshot taken or restored now (a 409's message), or null. */
export function snapshotRefusal(desktop: { backend: Backend; status: DesktopStatus }): string | null {
  if (desktop.backend === 'selkies')
    return 'A WebRTC (Selkies) desktop is a Kubernetes pod whose home is a persistent volume claim: there is no VM to snapshot';
  if (!SETTLED.has(desktop.status))
    return `The desktop is ${desktop.status}; snapshots are taken and restored while it is RUNNING or STOPPED`;
  return null;
}

/** The quota on snapshots a user keeps across their desktops (null = no limit). */
export function snapshotQuotaRefusal(owned: number, limit: number | null): string | null {
  if (limit === null || owned < limit) return null;
  return `You keep ${owned} snapshots, your limit is ${limit}: delete one before taking another`;
}

/**
 * The scheduled snapshots to delete: those neither among the newest `keepLast` scheduled ones nor younger than
 * `keepDays`. Snapshots a user took by hand are never chosen.
 */
export function snapshotsToPrune(snapshots: SnapshotSeen[], retention: SnapshotRetention, now: number): string[] {
  const scheduled = snapshots.filter((s) => s.name.startsWith(SCHEDULED_PREFIX)).sort((a, b) => b.takenAt - a.takenAt);
  return scheduled
    .filter((s, newestFirst) => {
      const keptByCount = retention.keepLast !== undefined && newestFirst < retention.keepLast;
      const keptByAge = retention.keepDays !== undefined && now - s.takenAt < retention.keepDays * DAY_MS;
      return !keptByCount && !keptByAge;
    })
    .map((s) => s.name);
}
