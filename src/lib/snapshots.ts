/**
 * What the snapshot routes ask before they act: the desktop can have snapshots at all (a VM, on storage that takes
 * them), is in a status that allows it, and the snapshot named is there (or, for a new one, is not). The listing is
 * the site's, read live from Proxmox through the bridge; reading it also corrects the owner's snapshot count (of the
 * snapshots taken by hand: scheduled ones are not counted).
 */
import type { Bindings } from '../env';
import { ApiError } from '../errors';
import { SNAPSHOT_STATUSES } from '../desktop/transitions';
import type { DesktopSnapshot, DesktopSnapshotList } from '../schemas/bridge-protocol';
import type { Desktop } from '../schemas/desktop';
import { isScheduledName } from '../schemas/snapshot';
import { unwrap } from './result';

type SnapshotSubject = Pick<Desktop, 'id' | 'userId' | 'siteId' | 'backend' | 'status' | 'vmId'>;

/** A WebRTC desktop is a pod whose home is a volume claim: there is no VM to snapshot. */
export function refuseUnlessVm(d: Pick<Desktop, 'id' | 'backend'>): void {
  if (d.backend === 'selkies') {
    throw new ApiError(
      'SNAPSHOTS_UNSUPPORTED',
      `Desktop ${d.id} is a WebRTC (Selkies) desktop: a Kubernetes pod with a persistent home volume, not a VM, so it has no snapshots`,
    );
  }
}

export function refuseUnlessSettled(d: Pick<Desktop, 'id' | 'status'>, what: string): void {
  if (!SNAPSHOT_STATUSES.includes(d.status)) {
    throw new ApiError('INVALID_STATE', `Cannot ${what} desktop ${d.id}: it is ${d.status}, not RUNNING or STOPPED`);
  }
}

/** The desktop's snapshots as its site lists them; a desktop without a VM yet has none, and nobody is asked. */
export async function listSnapshots(env: Bindings, d: SnapshotSubject): Promise<DesktopSnapshotList> {
  if (d.vmId === null || d.status === 'DELETED') return { snapshots: [], unsupported: null };
  const list = unwrap(await env.SITE_HUB.getByName(d.siteId).desktopSnapshots(d.id));
  // Scheduled snapshots are not in the quota: their retention bounds them.
  await env.USER_ACCOUNT.getByName(d.userId).syncSnapshots(
    d.id,
    list.snapshots.map((s) => s.name).filter((name) => !isScheduledName(name)),
  );
  return list;
}

/** The listing, once storage is known to take snapshots (409 SNAPSHOTS_UNSUPPORTED with the bridge's reason if not). */
export async function snapshotCapableListing(env: Bindings, d: SnapshotSubject): Promise<DesktopSnapshot[]> {
  const list = await listSnapshots(env, d);
  if (list.unsupported) throw new ApiError('SNAPSHOTS_UNSUPPORTED', list.unsupported);
  return list.snapshots;
}

export function findSnapshot(snapshots: DesktopSnapshot[], d: Pick<Desktop, 'id'>, name: string): DesktopSnapshot {
  const found = snapshots.find((s) => s.name === name);
  if (!found) throw new ApiError('NOT_FOUND', `Desktop ${d.id} has no snapshot named ${name}`);
  return found;
}
