/**
 * Snapshot steps of a desktop's VM, each safe to run again from the top (a redelivered command finds its own work
 * done): a snapshot already there under its name is the one an earlier try took; a rollback is always run again, as
 * going back twice to one snapshot is going back once. Every change is a Proxmox task waited on by its UPID.
 */
import type { ProxmoxSnapshots, VmSnapshot } from '../drivers/types';
import { TaskError } from '../errors';
import type { TaskDeps } from './context';
import type { Tools } from './tools';
import type { VmRef } from './vm-steps';

export type SnapshotDeps = TaskDeps & { proxmox: TaskDeps['proxmox'] & ProxmoxSnapshots };

/** pve-guest-common's snapshot_prepare, when a disk's storage cannot snapshot (plain LVM, raw files on a directory). */
const NOT_AVAILABLE = /snapshot feature is not available/;

export function listSnapshots(deps: SnapshotDeps, t: Tools, vm: VmRef): Promise<VmSnapshot[]> {
  return t.attempt(`list the snapshots of VM ${vm.vmid}`, () => deps.proxmox.listSnapshots(vm.node, vm.vmid));
}

/** Runs one Proxmox task to its end, retried (from listing again) while the failure is transient. */
async function runTask(deps: SnapshotDeps, t: Tools, action: string, start: () => Promise<string>): Promise<void> {
  await t.attempt(
    action,
    async () => deps.proxmox.waitForTask(await start(), { signal: t.signal, pollMs: deps.timing.pollMs }),
    deps.timing.powerTimeoutMs,
  );
}

export async function takeSnapshot(
  deps: SnapshotDeps,
  t: Tools,
  vm: VmRef,
  snap: { name: string; withRam: boolean; description?: string },
): Promise<VmSnapshot> {
  const find = async () => (await deps.proxmox.listSnapshots(vm.node, vm.vmid)).find((s) => s.name === snap.name);
  try {
    // Looked up on every try: a task that ended well while its status could not be read is not run twice.
    await t.attempt(
      `snapshot VM ${vm.vmid} as ${snap.name}`,
      async () => {
        if (await find()) return;
        await deps.proxmox.waitForTask(await deps.proxmox.snapshotVm(vm.node, vm.vmid, snap), {
          signal: t.signal,
          pollMs: deps.timing.pollMs,
        });
      },
      deps.timing.powerTimeoutMs,
    );
  } catch (err) {
    if (err instanceof Error && NOT_AVAILABLE.test(err.message)) {
      throw new TaskError(
        `The desktop's disks are on storage that cannot take snapshots (plain LVM or raw files); Proxmox says "snapshot feature is not available". Move them to LVM-thin, ZFS or Ceph to use snapshots.`,
        { cause: err },
      );
    }
    throw err;
  }
  const taken = await t.attempt(`list the snapshots of VM ${vm.vmid}`, find);
  if (!taken) throw new TaskError(`Proxmox reported the snapshot ${snap.name} of VM ${vm.vmid} taken, but does not list it`);
  return taken;
}

/** Back to `name`: Proxmox stops a running VM first; one with RAM state comes back running, one without stays off. */
export async function rollbackTo(deps: SnapshotDeps, t: Tools, vm: VmRef, name: string): Promise<VmSnapshot> {
  const snap = (await listSnapshots(deps, t, vm)).find((s) => s.name === name);
  if (!snap) throw new TaskError(`The desktop has no snapshot named ${name}`);
  await runTask(deps, t, `roll VM ${vm.vmid} back to ${name}`, () => deps.proxmox.rollbackVm(vm.node, vm.vmid, name));
  return snap;
}

export async function removeSnapshot(deps: SnapshotDeps, t: Tools, vm: VmRef, name: string): Promise<void> {
  if (!(await listSnapshots(deps, t, vm)).some((s) => s.name === name)) return;
  await runTask(deps, t, `delete the snapshot ${name} of VM ${vm.vmid}`, () => deps.proxmox.deleteSnapshot(vm.node, vm.vmid, name));
}
