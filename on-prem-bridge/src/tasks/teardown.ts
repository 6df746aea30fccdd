/**
 * Removing everything a desktop owns, in the order Proxmox allows: wait out a clone in
 * progress, power off, destroy, then the Guacamole connection and user. Used by
 * delete-desktop and by create-desktop's clean-up, so a failed create orphans nothing:
 * the VM is found by the VMID the create recorded before cloning, named yet or not.
 */
import type { DesktopFacts } from '../../../src/schemas/bridge-protocol';
import type { TaskContext, TaskDeps } from './context';
import { removeConnectionAndUser } from './connection-steps';
import type { Tools } from './tools';
import { type VmRef, cloneState, destroyIfPresent, ensureStoppedHard, findDesktopVm, isRunning, waitWhileBuilding } from './vm-steps';

export async function teardownDesktop(
  deps: TaskDeps,
  t: Tools,
  desktopId: string,
  progress: TaskContext['progress'],
): Promise<DesktopFacts> {
  // A rebuild that stopped half-way (failed, or superseded by this delete) leaves its new VM beside the old one.
  const entry = await deps.ledger.get(desktopId);
  if (entry?.rebuild && entry.rebuild.vmid !== entry.vmid) await removeVm(deps, t, desktopId, entry.rebuild, progress);
  const found = await findDesktopVm(deps, t, desktopId);
  let vm: VmRef | null = found ? { vmid: found.vmid, node: found.node } : null;
  const facts: DesktopFacts = vm ? { vmId: vm.vmid, node: vm.node } : {};
  if (vm && (found?.lock === 'clone' || found?.lock === 'create')) {
    // Destroy is refused while the clone holds its lock (pve-guest-common's check_lock).
    progress('destroy', `waiting for the clone of VM ${vm.vmid} to finish before removing it`, facts);
    const settled = await waitWhileBuilding(deps, t, desktopId, vm, deps.timing.cloneTimeoutMs);
    vm = settled ? vm : null;
  }
  if (vm && (await isRunning(deps, t, vm))) {
    progress('shutdown', `powering off VM ${vm.vmid}`, facts);
    await ensureStoppedHard(deps, t, vm);
  }
  progress(
    'destroy',
    vm ? `destroying VM ${vm.vmid} and its Guacamole connection` : 'no VM left; removing the Guacamole connection',
    facts,
  );
  if (vm) await destroyIfPresent(deps, t, desktopId, vm);
  else await deps.ledger.remove(desktopId);
  await removeConnectionAndUser(deps, t, desktopId);
  return facts;
}

/** The new VM of a rebuild that did not finish: its clone waited out, powered off, destroyed. */
async function removeVm(deps: TaskDeps, t: Tools, desktopId: string, ref: VmRef, progress: TaskContext['progress']): Promise<void> {
  const state = await t.attempt(`look at VM ${ref.vmid}`, () => cloneState(deps, desktopId, ref));
  if (state === 'gone' || state === 'foreign') return;
  progress('destroy', `removing VM ${ref.vmid}, which an unfinished rebuild was building`, { vmId: ref.vmid, node: ref.node });
  if (state === 'running' && !(await waitWhileBuilding(deps, t, desktopId, ref, deps.timing.cloneTimeoutMs))) return;
  if (await isRunning(deps, t, ref)) await ensureStoppedHard(deps, t, ref);
  await destroyIfPresent(deps, t, desktopId, ref, { keepLedger: true });
}
