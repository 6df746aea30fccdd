/**
 * start: start_vm → wait_ip → connection. A desktop's address can change across
 * boots (DHCP), so the connection is re-pointed every time; the user and its READ
 * permission are ensured again in case an operator removed them.
 */
import { TaskError } from '../errors';
import { bringOnline } from './bring-online';
import type { Task, TaskDeps } from './context';
import { checkLoginFits, loginOf } from './desktop-login';
import { createReporter } from './reporter';
import { toolsFor } from './tools';
import { findDesktopVm, waitWhileBuilding } from './vm-steps';

export function startDesktop(deps: TaskDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    let vm = await findDesktopVm(deps, t, spec.desktopId);
    if (vm && (vm.lock === 'clone' || vm.lock === 'create'))
      vm = await waitWhileBuilding(deps, t, spec.desktopId, { vmid: vm.vmid, node: vm.node }, deps.timing.cloneTimeoutMs);
    if (!vm) throw new TaskError("The desktop's VM no longer exists");
    const templateVmid =
      spec.template === undefined ? deps.settings.templateVmid : (deps.settings.templates[spec.template] ?? deps.settings.templateVmid);
    const login = loginOf(deps.settings, templateVmid);
    checkLoginFits(login, spec.protocol, templateVmid);
    const r = createReporter(ctx, { vmId: vm.vmid, node: vm.node });
    await bringOnline(deps, t, spec, { vmid: vm.vmid, node: vm.node }, r, login);
    return { ...r.facts };
  };
}
