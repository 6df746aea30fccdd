/**
 * desktop_snapshots: a desktop's snapshots as Proxmox lists them, and whether its disks can take snapshots at all, so
 * the edge can refuse a snapshot on plain LVM at once instead of after a failed Proxmox task. The storage rule is
 * pve-storage's `volume_has_feature(…, 'snapshot', …)`: thin LVM, ZFS, Ceph RBD and Btrfs snapshot any volume; a
 * directory-like storage only qcow2 files; plain LVM and iSCSI nothing.
 */
import type { DesktopSnapshot, DesktopSnapshotList } from '../../../src/schemas/bridge-protocol';
import type { ProxmoxDriver, ProxmoxProbe, ProxmoxSnapshots, VmSnapshot } from '../drivers/types';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { toolsFor } from './tools';
import { findDesktopVm } from './vm-steps';

export type SnapshotsAnswer = { ok: true; snapshots: DesktopSnapshotList } | { ok: false; error: string; refusal?: 'vm_missing' };

type ListingProxmox = ProxmoxDriver & ProxmoxSnapshots & ProxmoxProbe;

/** Whether this bridge's Proxmox driver has the snapshot calls (test doubles of the driver may not). */
export function canListSnapshots(proxmox: ProxmoxDriver): proxmox is ListingProxmox {
  return 'listSnapshots' in proxmox && 'storageType' in proxmox;
}

const SNAPSHOTS_ANY_VOLUME = new Set(['lvmthin', 'zfspool', 'zfs', 'rbd', 'btrfs']);
const SNAPSHOTS_QCOW2_ONLY = new Set(['dir', 'nfs', 'cifs', 'glusterfs', 'cephfs']);
/** Disk keys of a VM config (qemu-server's drive buses, plus the EFI and TPM state disks). */
const DISK_KEY = /^(?:scsi|virtio|sata|ide|efidisk|tpmstate)\d+$/;

export function volumeCanSnapshot(storageType: string, volid: string): boolean {
  if (SNAPSHOTS_ANY_VOLUME.has(storageType)) return true;
  if (SNAPSHOTS_QCOW2_ONLY.has(storageType)) return volid.endsWith('.qcow2');
  return false;
}

/** The VM's disk volumes (`storage:volume`), without CD-ROMs, cloud-init drives and empty slots. */
export function diskVolumes(config: Record<string, string | number>): string[] {
  return Object.entries(config)
    .filter(([key, value]) => DISK_KEY.test(key) && typeof value === 'string' && !/media=cdrom/.test(value))
    .map(([, value]) => String(value).split(',')[0] ?? '')
    .filter((volid) => volid.includes(':') && !/cloudinit/.test(volid));
}

export function toApiSnapshot(s: VmSnapshot): DesktopSnapshot {
  return {
    name: s.name,
    description: s.description,
    takenAt: s.snaptime > 0 ? new Date(s.snaptime * 1000).toISOString() : null,
    withRam: s.withRam,
    parent: s.parent ?? null,
  };
}

export async function desktopSnapshots(deps: TaskDeps, desktopId: string, signal: AbortSignal, log: Logger): Promise<SnapshotsAnswer> {
  const proxmox = deps.proxmox;
  if (!canListSnapshots(proxmox)) return { ok: false, error: "this bridge's Proxmox driver cannot list snapshots" };
  const t = toolsFor(deps, signal, log);
  try {
    const vm = await findDesktopVm(deps, t, desktopId);
    if (!vm) return { ok: false, error: `desktop ${desktopId} has no VM at this site`, refusal: 'vm_missing' };
    const [listed, config] = await Promise.all([
      t.attempt(`list the snapshots of VM ${vm.vmid}`, () => proxmox.listSnapshots(vm.node, vm.vmid)),
      t.attempt(`read the config of VM ${vm.vmid}`, () => proxmox.getVmConfig(vm.node, vm.vmid)),
    ]);
    const volumes = diskVolumes(config);
    const storages = [...new Set(volumes.map((v) => v.split(':')[0] ?? ''))];
    const types = new Map(
      await Promise.all(storages.map(async (s) => [s, await t.attempt(`read the storage ${s}`, () => proxmox.storageType(s))] as const)),
    );
    const cannot = volumes.filter((v) => !volumeCanSnapshot(types.get(v.split(':')[0] ?? '') ?? 'unknown', v));
    const unsupported = cannot.length
      ? `The desktop's disks are on storage that cannot take snapshots (plain LVM or raw files): ${cannot
          .map((v) => `${v} (${types.get(v.split(':')[0] ?? '')})`)
          .join(', ')}. Move them to LVM-thin, ZFS or Ceph to use snapshots.`
      : null;
    // Oldest first, as Proxmox's own snapshot tree reads.
    const snapshots = listed.map(toApiSnapshot).sort((a, b) => (a.takenAt ?? '').localeCompare(b.takenAt ?? ''));
    return { ok: true, snapshots: { snapshots, unsupported } };
  } catch (err) {
    return { ok: false, error: describeFailure(err, `list the snapshots of desktop ${desktopId}`) };
  }
}
