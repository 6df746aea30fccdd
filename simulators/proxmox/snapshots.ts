/**
 * VM snapshots as qemu-server's API2/Qemu.pm (snapshot_list, snapshot, rollback, delsnapshot, get_snapshot_config) and
 * pve-guest-common's AbstractConfig.pm (snapshot_create, snapshot_rollback, snapshot_delete) do them: the reserved
 * names die before the fork; the rest runs in the `qmsnapshot` / `qmrollback` / `qmdelsnapshot` task, which holds the
 * config lock `snapshot` / `rollback` / `snapshot-delete` while it works. A storage that cannot snapshot a disk (plain
 * LVM, raw files) fails the task with `snapshot feature is not available`. Like PVE, the config flock is only held to
 * check and set the lock key, so other calls meet `VM is locked (snapshot)` rather than wait.
 */
import { die } from './http';
import type { Route, RouteContext } from './routes';
import type { SimVm, VmConfig } from './state';
import { volumeCanSnapshot } from './storage';

export interface SimSnapshot {
  name: string;
  /** The VM's config when the snapshot was taken, with PVE's snapshot keys (snaptime, vmstate, parent, description). */
  config: VmConfig;
}

const DISK_KEY = /^(scsi|virtio|sata|ide)\d+$|^efidisk0$|^tpmstate0$/;

function vmOf(ctx: RouteContext): SimVm {
  return ctx.cluster.vmOn(String(ctx.params.node), Number(ctx.params.vmid));
}

/** The VM's snapshots, oldest first (the `[snapname]` sections of its config). */
export function snapshotsOf(vm: SimVm): Map<string, SimSnapshot> {
  vm.snapshots ??= new Map();
  return vm.snapshots;
}

/** A snapshot's config; `snapshot '<n>' does not exist` otherwise (AbstractConfig / clone_vm / vm_config). */
export function snapshotOf(vm: SimVm, name: string): VmConfig {
  const snap = vm.snapshots?.get(name);
  if (!snap) die(`snapshot '${name}' does not exist`);
  return snap.config;
}

/** Volumes of the VM's disks, without CD-ROMs; the cloud-init drive counts as a CD-ROM (drive_is_cdrom). */
function diskVolumes(config: VmConfig): string[] {
  return Object.entries(config)
    .filter(([key, value]) => DISK_KEY.test(key) && !String(value).includes('media=cdrom'))
    .map(([, value]) => String(value).split(',')[0] ?? '');
}

function memoryGiB(config: VmConfig): number {
  return Number(/^(?:current=)?(\d+)/.exec(String(config.memory ?? '512'))?.[1] ?? 512) / 1024;
}

/** The lock the task holds; a failure leaves the VM as it was and unlocked (AbstractConfig's error paths). */
function lockFor(vm: SimVm, lock: string): { take: () => void; release: () => void } {
  let mine = false;
  return {
    take: () => {
      vm.config.lock = lock;
      mine = true;
    },
    release: () => {
      if (mine && vm.config.lock === lock) delete vm.config.lock;
    },
  };
}

export const SNAPSHOT_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/snapshot',
    handle: (ctx) => {
      const vm = vmOf(ctx);
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Audit');
      const list: Record<string, unknown>[] = [...snapshotsOf(vm).values()].map(({ name, config }) => ({
        name,
        snaptime: config.snaptime,
        description: config.description ?? '',
        ...(config.parent !== undefined ? { parent: config.parent } : {}),
        ...(config.vmstate !== undefined ? { vmstate: 1 } : {}),
      }));
      list.push({
        name: 'current',
        digest: ctx.cluster.digest(vm.config),
        running: vm.status === 'running' ? 1 : 0,
        description: 'You are here!',
        ...(vm.config.parent !== undefined ? { parent: vm.config.parent } : {}),
      });
      return list;
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/snapshot',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = vmOf(ctx);
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Snapshot');
      const name = String(params.snapname);
      if (name === 'current') die("unable to use snapshot name 'current' (reserved name)");
      if (name.toLowerCase() === 'pending') die("unable to use snapshot name 'pending' (reserved name)");
      const withRam = params.vmstate === 1 && vm.status === 'running';
      const lock = lockFor(vm, 'snapshot');
      return cluster.runTask({
        node: vm.node,
        type: 'qmsnapshot',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        // Saving the RAM state writes the guest's memory out: the bigger the VM, the longer.
        delayMs: cluster.options.snapshotDelayMs + (withRam ? cluster.options.vmstateDelayMsPerGiB * memoryGiB(vm.config) : 0),
        // snapshot_prepare, under the config lock.
        begin: (log) => {
          cluster.checkLock(vm);
          if (snapshotsOf(vm).has(name)) throw new Error(`snapshot name '${name}' already used`);
          if (!diskVolumes(vm.config).every(volumeCanSnapshot)) throw new Error('snapshot feature is not available');
          lock.take();
          if (withRam) log.push(`saving VM state and RAM using storage 'local-lvm'`);
        },
        // snapshot_commit: the section gets the config as it was, `parent` moves to the new snapshot.
        complete: (log) => {
          const { lock: _lock, ...current } = vm.config;
          const config: VmConfig = { ...current, snaptime: Math.floor(cluster.now() / 1000) };
          if (params.description !== undefined) config.description = String(params.description);
          else delete config.description;
          if (withRam) {
            config.vmstate = `local-lvm:vm-${vm.vmid}-state-${name},size=${Math.ceil(memoryGiB(vm.config) * 2 + 0.5)}G`;
            config.runningmachine = 'pc-i440fx-9.0+pve0';
            log.push('completed saving the VM state in 1s, saved 1.52 GiB');
          }
          snapshotsOf(vm).set(name, { name, config });
          lock.release();
          vm.config.parent = name;
        },
        onError: lock.release,
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config',
    handle: (ctx) => {
      const vm = vmOf(ctx);
      // Any one of these (`['VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.Audit'], any => 1`).
      const { privileges } = ctx.caller;
      if (!privileges.has('VM.Snapshot') && !privileges.has('VM.Snapshot.Rollback')) privileges.check(`/vms/${vm.vmid}`, 'VM.Audit');
      return { ...snapshotOf(vm, String(ctx.params.snapname)) };
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = vmOf(ctx);
      // Either privilege will do (`['VM.Snapshot', 'VM.Snapshot.Rollback'], any => 1`).
      if (!ctx.caller.privileges.has('VM.Snapshot')) ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Snapshot.Rollback');
      const name = String(params.snapname);
      const lock = lockFor(vm, 'rollback');
      let snap: VmConfig = {};
      return cluster.runTask({
        node: vm.node,
        type: 'qmrollback',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        delayMs: cluster.options.rollbackDelayMs,
        // snapshot_rollback: the snapshot must exist, the VM be unlocked; a running VM is stopped first.
        begin: (log) => {
          snap = snapshotOf(vm, name);
          cluster.checkLock(vm);
          lock.take();
          if (vm.status === 'running') {
            log.push(`stopping VM ${vm.vmid}`);
            cluster.haltGuest(vm);
          }
        },
        complete: (log) => {
          const { snaptime: _t, vmstate, runningmachine: _m, description: _d, parent: _p, ...config } = snap;
          vm.config = { ...config, parent: name, lock: 'rollback' };
          lock.release();
          // With RAM the guest resumes where it was; without, it stays off unless `start=1`.
          if (vmstate !== undefined) {
            log.push(`start VM ${vm.vmid}: resuming from the saved RAM state`);
            cluster.resumeGuest(vm);
          } else if (params.start === 1) {
            cluster.bootGuest(vm);
          }
        },
        onError: lock.release,
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'DELETE',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = vmOf(ctx);
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Snapshot');
      const name = String(params.snapname);
      const lock = lockFor(vm, 'snapshot-delete');
      return cluster.runTask({
        node: vm.node,
        type: 'qmdelsnapshot',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        delayMs: cluster.options.delsnapshotDelayMs,
        begin: () => {
          snapshotOf(vm, name);
          if (params.force !== 1) cluster.checkLock(vm);
          lock.take();
        },
        // snapshot_delete: children and the current state hang on to the deleted one's parent.
        complete: (log) => {
          const snaps = snapshotsOf(vm);
          const parent = snaps.get(name)?.config.parent;
          for (const volid of diskVolumes(snaps.get(name)?.config ?? {})) {
            log.push(`  Logical volume "snap_${volid.split(':')[1]?.split('/').pop()}_${name}" successfully removed.`);
          }
          snaps.delete(name);
          for (const config of [vm.config, ...[...snaps.values()].map((s) => s.config)]) {
            if (config.parent !== name) continue;
            if (parent === undefined) delete config.parent;
            else config.parent = parent;
          }
          lock.release();
        },
        onError: lock.release,
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
];
