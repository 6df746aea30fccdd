/**
 * Proxmox steps shared by the tasks. Each one looks at the VM first and only acts when
 * reality differs from the goal, so running it twice is the same as running it once.
 *
 * A desktop's VM is found where the truth is live: the VMID the ledger recorded before the clone was started, checked
 * against that one VM's config (its name, or the temporary `lock: clone` config of a clone in progress). Without a
 * ledger entry (a desktop of an older bridge, or another host's), the per-node VM lists, which read the configs, are
 * searched by name. `/cluster/resources` is not used: its names and power states come from pvestatd's cache and lag up
 * to 10 s (pve-manager's API2Tools.pm extract_vm_stats).
 */
import { vmName } from '../desktop-identity';
import { InfraError, type VmSummary } from '../drivers/types';
import { formatDuration } from '../retry';
import type { TaskDeps } from './context';
import type { Tools } from './tools';

export interface VmRef {
  vmid: number;
  node: string;
}

/** Locks a create holds while it builds the VM; other locks are transient and retried. */
const BUILD_LOCKS = new Set(['clone', 'create']);

/** qemu-server's answer for a VM that is not (or no longer) there, synchronous or as a task's exit status. */
export function isGone(err: unknown): boolean {
  return err instanceof InfraError && /Configuration file '[^']*' does not exist/.test(err.message);
}

/** The VM's config, or null when it does not exist. */
async function configOrNull(deps: TaskDeps, vm: VmRef): Promise<Record<string, string | number> | null> {
  try {
    return await deps.proxmox.getVmConfig(vm.node, vm.vmid);
  } catch (err) {
    if (isGone(err)) return null;
    throw err;
  }
}

/**
 * What the VM at `ref` is to this desktop: 'ours' (named desk-<id>, or the unnamed temporary config of a clone
 * in progress into the id the ledger gave it), 'foreign' (someone else's), or null (nothing there).
 */
async function judge(deps: TaskDeps, desktopId: string, ref: VmRef): Promise<{ vm: VmSummary } | 'foreign' | null> {
  const config = await configOrNull(deps, ref);
  if (!config) return null;
  const name = config.name === undefined ? undefined : String(config.name);
  const lock = config.lock === undefined ? undefined : String(config.lock);
  if (name !== undefined && name !== vmName(desktopId)) return 'foreign';
  if (name === undefined && lock !== 'clone') return 'foreign';
  const tags = typeof config.tags === 'string' ? config.tags.split(/[;,\s]+/).filter(Boolean) : [];
  const status = (await deps.proxmox.getVmStatus(ref.node, ref.vmid)).status;
  return {
    vm: {
      vmid: ref.vmid,
      node: ref.node,
      name: name ?? '',
      status,
      tags,
      ...(lock ? { lock } : {}),
      template: config.template === 1 || config.template === '1',
    },
  };
}

/**
 * The desktop's VM, or null. `recordedOnly` (a create): without a ledger entry no clone was ever started from
 * this host for it, so nothing is listed; a site with thousands of VMs must not be listed per create.
 */
export async function findDesktopVm(
  deps: TaskDeps,
  t: Tools,
  desktopId: string,
  opts: { recordedOnly?: boolean } = {},
): Promise<VmSummary | null> {
  return t.attempt(`look up VM ${vmName(desktopId)}`, async () => {
    const entry = await deps.ledger.get(desktopId);
    if (entry) {
      const seen = await judge(deps, desktopId, entry);
      if (seen && seen !== 'foreign') return seen.vm;
      if (opts.recordedOnly) return null;
    } else if (opts.recordedOnly) {
      return null;
    }
    const found = (await deps.proxmox.listVms()).find((vm) => vm.name === vmName(desktopId) && !vm.template) ?? null;
    // Found without (or beside) the ledger: note it, so the next command asks for this VM alone.
    if (found) await deps.ledger.put(desktopId, { vmid: found.vmid, node: found.node });
    return found;
  });
}

/** The VMID the ledger holds for this desktop, if any (the create's choice, made before its clone). */
export async function recordedRef(deps: TaskDeps, desktopId: string): Promise<VmRef | null> {
  const entry = await deps.ledger.get(desktopId);
  return entry ? { vmid: entry.vmid, node: entry.node } : null;
}

/** The clone of `ref` as it stands: finished and ours, still running, gone, or someone else's VM. */
export async function cloneState(deps: TaskDeps, desktopId: string, ref: VmRef): Promise<'done' | 'running' | 'gone' | 'foreign'> {
  const seen = await judge(deps, desktopId, ref);
  if (seen === null) return 'gone';
  if (seen === 'foreign') return 'foreign';
  return seen.vm.lock && BUILD_LOCKS.has(seen.vm.lock) ? 'running' : 'done';
}

/**
 * Waits while the VM is being cloned (by this or an earlier run of the bridge). Returns the
 * unlocked VM, or null when it vanished (Proxmox removes a clone that failed).
 */
export async function waitWhileBuilding(
  deps: TaskDeps,
  t: Tools,
  desktopId: string,
  ref: VmRef,
  timeoutMs: number,
): Promise<VmSummary | null> {
  const name = vmName(desktopId);
  const result = await t.pollUntil(
    `check whether VM ${ref.vmid} is still being cloned`,
    async () => {
      const seen = await judge(deps, desktopId, ref);
      if (seen === null || seen === 'foreign') return { vm: null };
      return seen.vm.lock && BUILD_LOCKS.has(seen.vm.lock) ? null : { vm: seen.vm };
    },
    timeoutMs,
    `VM ${ref.vmid} (${name}) stayed locked (clone) for ${formatDuration(timeoutMs)}; the clone seems stuck`,
  );
  return result.vm;
}

export async function isRunning(deps: TaskDeps, t: Tools, vm: VmRef): Promise<boolean> {
  const { status } = await t.attempt(`read the power state of VM ${vm.vmid}`, () => deps.proxmox.getVmStatus(vm.node, vm.vmid));
  return status !== 'stopped';
}

/**
 * Starts the VM unless it runs already; resolves once the start task finished. `knownStopped`: the
 * first attempt starts without looking (a VM that runs after all fails the start task, which is checked).
 */
export function ensureStarted(deps: TaskDeps, t: Tools, vm: VmRef, opts: { knownStopped?: boolean } = {}): Promise<void> {
  let look = opts.knownStopped !== true;
  return t.attempt(
    `start VM ${vm.vmid}`,
    async () => {
      if (look && (await deps.proxmox.getVmStatus(vm.node, vm.vmid)).status === 'running') return;
      // Retries look: an earlier attempt's start may have gone through.
      look = true;
      try {
        const upid = await deps.proxmox.startVm(vm.node, vm.vmid);
        await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
      } catch (err) {
        // "VM already running": someone started it between our look and our start.
        if ((await deps.proxmox.getVmStatus(vm.node, vm.vmid)).status === 'running') return;
        throw err;
      }
    },
    deps.timing.powerTimeoutMs,
  );
}

/** Hard stop (power off) unless already stopped. */
export function ensureStoppedHard(deps: TaskDeps, t: Tools, vm: VmRef): Promise<void> {
  return t.attempt(
    `stop VM ${vm.vmid}`,
    async () => {
      const { status } = await deps.proxmox.getVmStatus(vm.node, vm.vmid);
      if (status === 'stopped') return;
      const upid = await deps.proxmox.stopVm(vm.node, vm.vmid);
      await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
    },
    deps.timing.powerTimeoutMs,
  );
}

export function waitUntilStopped(deps: TaskDeps, t: Tools, vm: VmRef): Promise<true> {
  return t.pollUntil(
    `read the power state of VM ${vm.vmid}`,
    async () => ((await deps.proxmox.getVmStatus(vm.node, vm.vmid)).status === 'stopped' ? true : null),
    deps.timing.powerTimeoutMs,
    `VM ${vm.vmid} did not stop within ${formatDuration(deps.timing.powerTimeoutMs)}`,
  );
}

/**
 * Destroys the VM if it is still this desktop's; resolves once the destroy task finished. A destroy that finds the
 * config gone (`Configuration file … does not exist`: an earlier attempt or a re-sent request finished the job) is
 * done, not failed (qemu-server's destroy_vm runs its early checks again under the config lock).
 */
export async function destroyIfPresent(
  deps: TaskDeps,
  t: Tools,
  desktopId: string,
  ref: VmRef,
  opts: { keepLedger?: boolean } = {},
): Promise<void> {
  await t.attempt(
    `destroy VM ${ref.vmid}`,
    async () => {
      // Looked at again on every attempt: an earlier attempt's task may have finished the job.
      const seen = await judge(deps, desktopId, ref);
      if (seen === null || seen === 'foreign') return;
      try {
        const upid = await deps.proxmox.destroyVm(ref.node, ref.vmid);
        await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
      } catch (err) {
        if (isGone(err)) return;
        throw err;
      }
    },
    deps.timing.powerTimeoutMs,
  );
  // A rebuild destroys the desktop's old VM while its ledger entry goes on naming the new one.
  if (!opts.keepLedger) await deps.ledger.remove(desktopId);
}
