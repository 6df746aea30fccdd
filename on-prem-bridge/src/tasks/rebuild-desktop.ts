/**
 * rebuild: the desktop gets a new VM cloned from its template, keeping the old VM's data disk where the template has
 * one (Amazon WorkSpaces' rebuild: a fresh system volume, the user volume kept). allocate → clone → configure_vm →
 * shutdown (the old VM) → data_disk (its snapshots deleted, the template's empty data disk dropped from the new VM,
 * the old one's moved over with Proxmox's move_disk to another VM) → destroy (the old VM) → start_vm → wait_ip →
 * connection, as a create ends.
 *
 * The ledger carries the rebuild: the new VM's id is written beside the old one's before its clone is requested, and
 * once the old VM is destroyed both name the new one; the entry is plain again at the end. So a redelivered or
 * resumed rebuild picks up at the step it reached, each step looking before it acts: the clone is waited out or
 * reused, a disk already moved is not moved again, a VM already destroyed is not looked for. A rebuild that fails
 * leaves both VMs as they are (the desktop is FAILED; its delete removes both, see teardown.ts).
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { ProxmoxDisks } from '../drivers/types';
import { TaskError, describeFailure } from '../errors';
import { throwIfAborted } from '../retry';
import { bringOnline } from './bring-online';
import type { Task } from './context';
import { type Template, cloneOnce, configure, resolveTemplate, templateVmidOf } from './create-desktop';
import { checkLoginFits, loginOf } from './desktop-login';
import { type Reporter, createReporter } from './reporter';
import { type SnapshotDeps, listSnapshots, removeSnapshot } from './snapshot-steps';
import { shutDownGracefully } from './stop-desktop';
import { type Tools, toolsFor } from './tools';
import {
  type VmRef,
  cloneState,
  destroyIfPresent,
  ensureStoppedHard,
  findDesktopVm,
  isRunning,
  waitUntilStopped,
  waitWhileBuilding,
} from './vm-steps';

export type RebuildDeps = SnapshotDeps & { proxmox: SnapshotDeps['proxmox'] & ProxmoxDisks };

const DRIVE_KEY = /^(scsi|virtio|sata|ide)\d+$/;
/** Rounds of "the vmid was taken by someone else, pick another" before giving up (as a create). */
const MAX_VMID_COLLISIONS = 3;

const isDisk = (value: unknown) => value !== undefined && !/media=cdrom/.test(String(value)) && !/cloudinit/.test(String(value));

/**
 * The template's data disks: its disks (not CD-ROMs, not the cloud-init drive, not EFI or TPM state) other than the
 * one it boots from (the first disk of `boot: order=…`, else `bootdisk`, else the first disk).
 */
export function dataDisksOf(config: Record<string, string | number>): string[] {
  const disks = Object.keys(config)
    .filter((k) => DRIVE_KEY.test(k) && isDisk(config[k]))
    .sort();
  const order = /(?:^|,)order=([^,]+)/.exec(String(config.boot ?? ''))?.[1];
  const boot =
    order?.split(';').find((d) => disks.includes(d)) ??
    (config.bootdisk !== undefined && disks.includes(String(config.bootdisk)) ? String(config.bootdisk) : disks[0]);
  return disks.filter((k) => k !== boot);
}

export function rebuildDesktop(deps: RebuildDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const r = createReporter(ctx);
    const templateVmid = templateVmidOf(deps, spec);
    const login = loginOf(deps.settings, templateVmid);
    checkLoginFits(login, spec.protocol, templateVmid);
    const template = await resolveTemplate(deps, t, spec);
    const { old, next } = await ensureNewVm(deps, t, spec, template, r);
    await configure(deps, t, spec, next, r, login, false);
    if (old) await retire(deps, t, spec, template, old, next, r);
    // From here on the desktop is the new VM: every later frame tells the edge its VMID.
    Object.assign(r.facts, { vmId: next.vmid, node: next.node });
    await bringOnline(deps, t, spec, next, r, login);
    await deps.ledger.put(spec.desktopId, next);
    return { ...r.facts };
  };
}

/** allocate + clone: the new VM, cloned and unlocked, and the old one unless an earlier run destroyed it already. */
async function ensureNewVm(
  deps: RebuildDeps,
  t: Tools,
  spec: DesktopSpec,
  template: Template,
  r: Reporter,
): Promise<{ old: VmRef | null; next: VmRef }> {
  const entry = await deps.ledger.get(spec.desktopId);
  let old: VmRef | null;
  let next: VmRef | null = entry?.rebuild ?? null;
  if (entry?.rebuild) {
    old = entry.vmid === entry.rebuild.vmid ? null : { vmid: entry.vmid, node: entry.node };
    r.report('allocate', `resuming the rebuild into VM ${entry.rebuild.vmid} from an earlier run`);
  } else {
    const found = await findDesktopVm(deps, t, spec.desktopId);
    if (!found)
      throw new TaskError("The desktop's VM no longer exists, so there is no data disk to keep; delete the desktop and create a new one");
    old = { vmid: found.vmid, node: found.node };
  }
  for (let collisions = 0; ; ) {
    if (next) {
      const ref = next;
      const state = await t.attempt(`look at VM ${ref.vmid}`, () => cloneState(deps, spec.desktopId, ref));
      if (state === 'done') break;
      if (state === 'running') {
        r.report('clone', `VM ${ref.vmid} is still being cloned; waiting for the clone to finish`);
        if (await waitWhileBuilding(deps, t, spec.desktopId, ref, deps.timing.cloneTimeoutMs)) break;
      }
      if (state === 'foreign') next = null;
    }
    // The old VM is destroyed only after the new one holds its data disk: without either, nothing is left to keep.
    if (!old) throw new TaskError(`The new VM ${next?.vmid ?? ''} of this rebuild is gone, and so is the old one`);
    if (!next) {
      const range = deps.settings.vmidRange;
      next = { vmid: await t.attempt('reserve a VMID', () => deps.proxmox.allocateVmid(range)), node: template.node };
      r.report('allocate', `reserved VMID ${next.vmid} on ${next.node} for the rebuilt VM`);
    }
    if (next.node !== old.node) {
      throw new TaskError(
        `The template ${template.vmid} is on node ${next.node} and the desktop's VM on ${old.node}: Proxmox moves a disk only between VMs of one node`,
      );
    }
    // Recorded before the clone is requested: a process killed after the POST finds its clone by this entry.
    await deps.ledger.put(spec.desktopId, { vmid: old.vmid, node: old.node, rebuild: next });
    r.report('clone', `cloning template ${template.vmid} into VM ${next.vmid} (${template.linked ? 'linked' : 'full'} clone)`);
    if ((await cloneOnce(deps, t, spec, template, next)) === 'cloned') break;
    if (++collisions > MAX_VMID_COLLISIONS) throw new TaskError('Proxmox kept refusing new VMIDs as already taken');
    t.log.warn('vmid taken by another VM; allocating another', { vmid: next.vmid });
    next = null;
  }
  return { old, next: next as VmRef };
}

/** shutdown + data_disk + destroy: the old VM hands its data disks to the new one and goes. */
async function retire(
  deps: RebuildDeps,
  t: Tools,
  spec: DesktopSpec,
  template: Template,
  old: VmRef,
  next: VmRef,
  r: Reporter,
): Promise<void> {
  const state = await t.attempt(`look at VM ${old.vmid}`, () => cloneState(deps, spec.desktopId, old));
  if (state === 'done') {
    await stopOld(deps, t, old, r);
    const templateConfig = await t.attempt(`read the config of template ${template.vmid}`, () =>
      deps.proxmox.getVmConfig(template.node, template.vmid),
    );
    const keys = dataDisksOf(templateConfig);
    const oldConfig = await t.attempt(`read the config of VM ${old.vmid}`, () => deps.proxmox.getVmConfig(old.node, old.vmid));
    const moving = keys.filter((k) => isDisk(oldConfig[k]));
    if (moving.length === 0) {
      r.report(
        'data_disk',
        keys.length === 0
          ? `template ${template.vmid} has no data disk: nothing of VM ${old.vmid} is kept`
          : `VM ${old.vmid} holds no ${keys.join(', ')} (moved over by an earlier run, or made from a template without one)`,
      );
    } else {
      await moveDataDisks(deps, t, old, next, moving, r);
    }
    r.report('destroy', `destroying the old VM ${old.vmid}`);
    await destroyIfPresent(deps, t, spec.desktopId, old, { keepLedger: true });
  }
  // Both ids name the new VM now: a resumed rebuild does not look for the old one again.
  await deps.ledger.put(spec.desktopId, { ...next, rebuild: next });
}

async function stopOld(deps: RebuildDeps, t: Tools, old: VmRef, r: Reporter): Promise<void> {
  if (!(await isRunning(deps, t, old))) return;
  // Proxmox moves no disk of a running VM; a clean shutdown leaves the data disk's file systems consistent.
  r.report('shutdown', `shutting down the old VM ${old.vmid} (up to ${deps.settings.shutdownTimeoutSeconds} s)`);
  try {
    await shutDownGracefully(deps, t, old);
  } catch (err) {
    throwIfAborted(t.signal);
    const reason = describeFailure(err, `shut down VM ${old.vmid}`);
    r.report('shutdown', `the guest did not shut down (${reason.slice(0, 300)}); forcing a stop`);
    await ensureStoppedHard(deps, t, old);
  }
  await waitUntilStopped(deps, t, old);
}

async function moveDataDisks(deps: RebuildDeps, t: Tools, old: VmRef, next: VmRef, keys: string[], r: Reporter): Promise<void> {
  // "Can't move disk used by a snapshot to another VM" (move_vm_disk): the old VM's snapshots go before its disks
  // move, as they would with the VM.
  const snapshots = await listSnapshots(deps, t, old);
  for (const s of snapshots.reverse()) {
    r.report('data_disk', `deleting the snapshot ${s.name} of the old VM ${old.vmid}: the rebuild does not keep snapshots`);
    await removeSnapshot(deps, t, old, s.name);
  }
  for (const key of keys) {
    // Looked at again on every attempt: an earlier attempt's task may have moved it.
    const stillOld = async () => isDisk((await deps.proxmox.getVmConfig(old.node, old.vmid))[key]);
    if (!(await t.attempt(`read the config of VM ${old.vmid}`, stillOld))) continue;
    // While the old VM still holds the disk, whatever the new one has under that key is the template's empty one.
    const nextConfig = await t.attempt(`read the config of VM ${next.vmid}`, () => deps.proxmox.getVmConfig(next.node, next.vmid));
    if (nextConfig[key] !== undefined) {
      r.report('data_disk', `removing the template's empty data disk ${key} from VM ${next.vmid}`);
      await t.attempt(`remove disk ${key} of VM ${next.vmid}`, () =>
        deps.proxmox.configureVm(next.node, next.vmid, { delete: key, force: 1 }),
      );
    }
    r.report('data_disk', `moving the data disk ${key} of VM ${old.vmid} onto VM ${next.vmid}`);
    await t.attempt(
      `move disk ${key} of VM ${old.vmid} to VM ${next.vmid}`,
      async () => {
        if (!(await stillOld())) return;
        const upid = await deps.proxmox.moveDiskToVm(old.node, old.vmid, key, { vmid: next.vmid, disk: key });
        await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
      },
      deps.timing.powerTimeoutMs,
    );
  }
}
