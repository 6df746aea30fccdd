/**
 * Disks moving between VMs, as qemu-server's API2/Qemu.pm move_vm_disk does it with `target-vmid` (PVE 7.2+): the
 * checks run once in the request and again in the `qmmove` worker, which holds the config flocks of both VMs (source
 * first) while the volume is renamed to the target VMID (pve-storage's rename_volume), dropped from the source's
 * config and written under `target-disk` on the target. No `lock` key is set: other calls on either VM meet the flock
 * and wait (or time out), as they do in PVE. Moving a disk to another storage of the same VM is not simulated.
 */
import { PveError, die, paramError } from './http';
import type { Route, RouteContext } from './routes';
import type { Cluster, SimVm, VmConfig } from './state';
import { storageOf } from './storage';

const DRIVE_KEY = /^(scsi|virtio|sata|ide)\d+$|^efidisk0$|^tpmstate0$/;
const UNUSED_KEY = /^unused\d+$/;

const volidOf = (value: unknown): string => String(value).split(',')[0] ?? '';
const isCdrom = (value: unknown): boolean => String(value).includes('media=cdrom') || /cloudinit/.test(volidOf(value));

/** The cluster-wide VM list's view (PVE::Cluster::get_vmlist): any node. */
function vmAnywhere(cluster: Cluster, vmid: number, what: string): SimVm {
  const vm = cluster.vms.get(vmid);
  if (!vm) die(`could not find ${what}${vmid}`);
  return vm;
}

/** is_volume_in_use with a drive key: only the VM's snapshots count. */
function usedBySnapshot(vm: SimVm, volid: string): boolean {
  return [...(vm.snapshots?.values() ?? [])].some((s) => Object.values(s.config).some((v) => volidOf(v) === volid));
}

/** find_free_diskname: the lowest `vm-<vmid>-disk-<n>` no config on the cluster mentions. */
function freeDiskName(cluster: Cluster, vmid: number): string {
  const taken = new Set<string>();
  for (const vm of cluster.vms.values()) {
    for (const value of Object.values(vm.config)) {
      const m = /vm-(\d+)-disk-(\d+)/.exec(volidOf(value));
      if (m && Number(m[1]) === vmid) taken.add(m[2] as string);
    }
  }
  let n = 0;
  while (taken.has(String(n))) n += 1;
  return `vm-${vmid}-disk-${n}`;
}

/** $load_and_check_reassign_configs, in its order. */
function checkReassign(cluster: Cluster, vmid: number, target: number, disk: string, targetDisk: string): { source: SimVm; dest: SimVm } {
  const source = vmAnywhere(cluster, vmid, 'VM ');
  const dest = vmAnywhere(cluster, target, 'target VM ');
  if (source.node !== dest.node) die(`Both VMs need to be on the same node (${source.node} != ${dest.node})`);
  cluster.checkLock(source);
  cluster.checkLock(dest);
  if (source.config.template || dest.config.template) die("Can't move disks from or to template VMs");
  const value = source.config[disk];
  if (value === undefined) die(`Disk '${disk}' for VM '${vmid}' does not exist`);
  if (dest.config[targetDisk] !== undefined) die(`Target disk key '${targetDisk}' is already in use for VM '${target}'`);
  const volid = volidOf(value);
  if (!volid) die(`disk '${disk}' has no associated volume`);
  if (isCdrom(value)) die("CD drive contents can't be moved to another VM");
  if (usedBySnapshot(source, volid)) die("Can't move disk used by a snapshot to another VM");
  if (source.status === 'running' && !UNUSED_KEY.test(disk)) {
    die('Cannot move disk to another VM while the source VM is running - detach first');
  }
  return { source, dest };
}

function reassign(ctx: RouteContext, vmid: number, target: number, disk: string, targetDisk: string): string {
  const { cluster } = ctx;
  const privileges = ctx.caller.privileges;
  privileges.check(`/vms/${target}`, 'VM.Config.Disk');
  const { source } = checkReassign(cluster, vmid, target, disk, targetDisk);
  privileges.check(`/storage/${storageOf(volidOf(source.config[disk]))}`, 'Datastore.AllocateSpace');
  let releaseTarget: (() => void) | null = null;
  const release = () => {
    releaseTarget?.();
    releaseTarget = null;
  };
  return cluster.runTask({
    node: source.node,
    type: 'qmmove',
    id: `${vmid}-${disk}>${target}-${targetDisk}`,
    user: ctx.caller.userid,
    delayMs: cluster.options.configDelayMs,
    flock: vmid,
    begin: () => {
      releaseTarget = cluster.flocks.tryAcquire(target);
      if (!releaseTarget) throw new Error(`can't lock file '/var/lock/qemu-server/lock-${target}.conf' - got timeout`);
      checkReassign(cluster, vmid, target, disk, targetDisk);
    },
    complete: (log) => {
      const { source: from, dest } = checkReassign(cluster, vmid, target, disk, targetDisk);
      const value = String(from.config[disk]);
      const [volid = '', ...options] = value.split(',');
      const renamed = `${storageOf(volid)}:${freeDiskName(cluster, target)}`;
      log.push(`reassign disk '${disk}' from VM '${vmid}' as '${targetDisk}' to VM '${target}'`);
      log.push(`  Renamed "${volid.split(':')[1]?.split('/').pop()}" to "${renamed.split(':')[1]}" in volume group "pve"`);
      const boot = String(from.config.boot ?? '');
      if (boot.startsWith('order=') && boot.slice(6).split(';').includes(disk)) {
        log.push(`removing disk '${disk}' from boot order config`);
        from.config.boot = `order=${boot
          .slice(6)
          .split(';')
          .filter((d) => d !== disk)
          .join(';')}`;
      }
      delete from.config[disk];
      log.push(`removing disk '${disk}' from VM '${vmid}' config`);
      // An unused slot takes the bare volume; a drive slot keeps the drive's options (size, serial, cache…).
      dest.config[targetDisk] = UNUSED_KEY.test(targetDisk) ? renamed : [renamed, ...options].join(',');
      release();
    },
    onError: release,
    injectedError: ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${target}.conf' - got timeout` : undefined,
  }).upid;
}

/**
 * update_vm_api's delete of a drive (vmconfig_delete_or_detach_drive): without `force` a disk volume the VM owns
 * becomes `unused<n>`; with `force`, or when an `unused<n>` is deleted, the volume itself is removed, which a snapshot
 * still using it forbids. CD-ROMs and the cloud-init drive just leave the config.
 */
export function deleteDrive(vm: SimVm, key: string, force: boolean, log: string[] = []): void {
  const value = vm.config[key];
  if (value === undefined) return;
  delete vm.config[key];
  if (!(DRIVE_KEY.test(key) || UNUSED_KEY.test(key)) || isCdrom(value)) return;
  const volid = volidOf(value);
  if (force || UNUSED_KEY.test(key)) {
    if (usedBySnapshot(vm, volid)) {
      vm.config[key] = value;
      throw new PveError(500, `unable to delete '${volid}' - volume is still in use (snapshot?)`);
    }
    log.push(`  Logical volume "${volid.split(':')[1]?.split('/').pop()}" successfully removed.`);
    return;
  }
  vm.config[unusedKey(vm.config)] = volid;
}

function unusedKey(config: VmConfig): string {
  let n = 0;
  while (config[`unused${n}`] !== undefined) n += 1;
  return `unused${n}`;
}

export const DISK_ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/move_disk',
    startsTask: true,
    handle: (ctx) => {
      const { params } = ctx;
      const vmid = Number(params.vmid);
      const disk = String(params.disk);
      const targetDisk = params['target-disk'] === undefined ? disk : String(params['target-disk']);
      ctx.cluster.vmOn(String(params.node), vmid);
      ctx.caller.privileges.check(`/vms/${vmid}`, 'VM.Config.Disk');
      const target = params['target-vmid'] === undefined ? undefined : Number(params['target-vmid']);
      const storage = params.storage;
      if (target !== undefined && storage !== undefined) {
        const msg = "either set 'storage' or 'target-vmid', but not both";
        paramError({ 'target-vmid': msg, storage: msg });
      }
      if (target !== undefined) {
        if (target === vmid) paramError({ 'target-vmid': 'must be different than source VMID to reassign disk' });
        return reassign(ctx, vmid, target, disk, targetDisk);
      }
      if (storage !== undefined) throw new PveError(501, 'the simulator does not move disks between storages');
      const msg = "both 'storage' and 'target-vmid' missing, either needs to be set";
      return paramError({ 'target-vmid': msg, storage: msg });
    },
  },
];
