/**
 * stop: ask the guest to shut down (ACPI, or the guest agent when it answers) for
 * SHUTDOWN_TIMEOUT_SECONDS, then pull the plug if it did not. A missing VM means there
 * is nothing to stop, which is success: stop is asked for by idle timers and expiry,
 * and must not fail a desktop that is already gone.
 */
import { InfraError } from '../drivers/types';
import { TaskError, describeFailure } from '../errors';
import type { Task, TaskDeps } from './context';
import { createReporter } from './reporter';
import { throwIfAborted } from '../retry';
import { type Tools, toolsFor } from './tools';
import { type VmRef, ensureStoppedHard, findDesktopVm, isRunning, waitUntilStopped } from './vm-steps';

export function stopDesktop(deps: TaskDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const found = await findDesktopVm(deps, t, spec.desktopId);
    if (!found) {
      ctx.log.info('no VM for this desktop; nothing to stop');
      return {};
    }
    const vm: VmRef = { vmid: found.vmid, node: found.node };
    const r = createReporter(ctx, { vmId: vm.vmid, node: vm.node });
    if (!(await isRunning(deps, t, vm))) {
      r.report('shutdown', `VM ${vm.vmid} is already stopped`);
      return { ...r.facts };
    }
    r.report('shutdown', `shutting down VM ${vm.vmid} (up to ${deps.settings.shutdownTimeoutSeconds} s)`);
    try {
      await shutDownGracefully(deps, t, vm);
    } catch (err) {
      throwIfAborted(ctx.signal);
      const reason = describeFailure(err, `shut down VM ${vm.vmid}`);
      ctx.log.warn('graceful shutdown failed; forcing a stop', { reason });
      r.report('shutdown', `the guest did not shut down (${reason.slice(0, 300)}); forcing a stop`);
      await ensureStoppedHard(deps, t, vm);
    }
    await waitUntilStopped(deps, t, vm);
    return { ...r.facts };
  };
}

/** The shutdown task's own time-out: the guest ignored the request (qemu-server's vm_shutdown). */
const GUEST_IGNORED_SHUTDOWN = /VM quit\/powerdown failed/;

/**
 * The shutdown task ends on its own after the timeout ("VM quit/powerdown failed - got timeout", qemu-server's
 * vm_shutdown): the guest ignored us, and asking again would only wait another full timeout before the hard stop. Any
 * other transient failure (the request or the task refused on a lock) means the guest was never asked, so the graceful
 * shutdown is tried again instead of pulling the plug on someone's session. Our own deadline guards against a task
 * never reported finished.
 */
export async function shutDownGracefully(deps: TaskDeps, t: Tools, vm: VmRef): Promise<void> {
  const seconds = deps.settings.shutdownTimeoutSeconds;
  const budgetMs = seconds * 1000 + deps.timing.shutdownGraceMs;
  const deadline = AbortSignal.timeout(budgetMs);
  await t.attempt(
    `shut down VM ${vm.vmid}`,
    async () => {
      const { status } = await deps.proxmox.getVmStatus(vm.node, vm.vmid);
      if (status === 'stopped') return;
      const upid = await deps.proxmox.shutdownVm(vm.node, vm.vmid, seconds);
      try {
        await deps.proxmox.waitForTask(upid, { signal: AbortSignal.any([t.signal, deadline]), pollMs: deps.timing.pollMs });
      } catch (err) {
        throwIfAborted(t.signal);
        if (deadline.aborted) throw new TaskError(`VM ${vm.vmid} did not finish shutting down within ${seconds} s`);
        // Its text ends in "got timeout" like a lock time-out, but this one is final.
        if (err instanceof InfraError && GUEST_IGNORED_SHUTDOWN.test(err.message)) {
          throw new InfraError(err.message, err.system, err.status, false);
        }
        throw err;
      }
    },
    budgetMs,
  );
}
