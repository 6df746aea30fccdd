/**
 * Snapshot tasks of a VM desktop, shaped like the other tasks (spec and context in, facts out) so that they register
 * as commands once the protocol carries them: take, restore (roll back, then bring the desktop online again, so it
 * ends RUNNING with its connection re-pointed), and delete. The snapshot is named in `spec.snapshot`.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import { TaskError } from '../errors';
import { bringOnline } from './bring-online';
import type { Task } from './context';
import { checkLoginFits, loginOf } from './desktop-login';
import { createReporter } from './reporter';
import { removeSnapshot, rollbackTo, type SnapshotDeps, takeSnapshot } from './snapshot-steps';
import { toolsFor } from './tools';
import { findDesktopVm } from './vm-steps';

function snapshotOf(spec: DesktopSpec): { name: string; withRam: boolean; description?: string } {
  if (!spec.snapshot) throw new TaskError('The command names no snapshot');
  return spec.snapshot;
}

export function snapshotDesktop(deps: SnapshotDeps): Task {
  return async (spec, ctx) => {
    const snap = snapshotOf(spec);
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const vm = await findDesktopVm(deps, t, spec.desktopId);
    if (!vm) throw new TaskError("The desktop's VM no longer exists");
    await takeSnapshot(deps, t, { vmid: vm.vmid, node: vm.node }, snap);
    return { vmId: vm.vmid, node: vm.node };
  };
}

export function restoreDesktop(deps: SnapshotDeps): Task {
  return async (spec, ctx) => {
    const { name } = snapshotOf(spec);
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const found = await findDesktopVm(deps, t, spec.desktopId);
    if (!found) throw new TaskError("The desktop's VM no longer exists");
    const vm = { vmid: found.vmid, node: found.node };
    const r = createReporter(ctx, { vmId: vm.vmid, node: vm.node });
    r.report('shutdown', `Rolling VM ${vm.vmid} back to ${name}`);
    await rollbackTo(deps, t, vm, name);
    const templateVmid =
      spec.template === undefined ? deps.settings.templateVmid : (deps.settings.templates[spec.template] ?? deps.settings.templateVmid);
    const login = loginOf(deps.settings, templateVmid);
    checkLoginFits(login, spec.protocol, templateVmid);
    // A snapshot with RAM comes back running; one without is started. Either way the address may have changed.
    await bringOnline(deps, t, spec, vm, r, login);
    return { ...r.facts };
  };
}

export function deleteSnapshotOfDesktop(deps: SnapshotDeps): Task {
  return async (spec, ctx) => {
    const { name } = snapshotOf(spec);
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const vm = await findDesktopVm(deps, t, spec.desktopId);
    if (!vm) throw new TaskError("The desktop's VM no longer exists");
    await removeSnapshot(deps, t, { vmid: vm.vmid, node: vm.node }, name);
    return { vmId: vm.vmid, node: vm.node };
  };
}
