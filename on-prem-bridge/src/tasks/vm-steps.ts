/**
 * Proxmox steps shared by the tasks. Each one looks at the VM first and only acts when
 * reality differs from the goal, so running it twice is the same as running it once.
 * The VM is always found by its name (desk-<desktopId>), never by a remembered vmid.
 */
import { vmName } from '../desktop-identity';
import type { VmSummary } from '../drivers/types';
import { formatDuration } from '../retry';
import type { TaskDeps } from './context';
import type { Tools } from './tools';

export interface VmRef {
  vmid: number;
  node: string;
}

/** Locks a create holds while it builds the VM; other locks are transient and retried. */
const BUILD_LOCKS = new Set(['clone', 'create']);

export function findDesktopVm(deps: TaskDeps, t: Tools, desktopId: string): Promise<VmSummary | null> {
  return t.attempt(`look up VM ${vmName(desktopId)}`, () => deps.proxmox.findVmByName(vmName(desktopId)));
}

/**
 * The desktop's VM, also when an earlier bridge process died while cloning it. Proxmox
 * names a clone only when the copy ends, so while it runs nothing is named
 * desk-<desktopId>; looking by name alone would clone a second VM. Unfinished clones in
 * the bridge's range that this process did not start are therefore waited for, and the
 * finished one whose config carries our name is the desktop's.
 */
export async function findDesktopVmSettled(
  deps: TaskDeps,
  t: Tools,
  desktopId: string,
  onWait: (message: string) => void,
): Promise<VmSummary | null> {
  const name = vmName(desktopId);
  const vms = await t.attempt('list the VMs of the cluster', () => deps.proxmox.listVms());
  const named = vms.find((vm) => vm.name === name && !vm.template);
  if (named) return named;
  const { min, max } = deps.settings.vmidRange;
  const suspects = vms.filter(
    (vm) =>
      vm.vmid >= min &&
      vm.vmid <= max &&
      vm.lock === 'clone' &&
      !deps.clones.inFlight.has(vm.vmid) &&
      !deps.clones.stuck.has(vm.vmid) &&
      // A name already set is final: another desktop's clone is not ours.
      !(vm.name.startsWith('desk-') && vm.name !== name),
  );
  if (suspects.length === 0) return null;
  onWait(`waiting for unnamed clones in progress (VM ${suspects.map((vm) => vm.vmid).join(', ')}) to finish; one may be this desktop's`);
  for (const suspect of suspects) {
    const outcome = await t.pollFor(`check the clone of VM ${suspect.vmid}`, () => cloneOutcome(deps, suspect), deps.timing.cloneTimeoutMs);
    if (outcome === undefined) {
      // A lock left behind by a crashed Proxmox task never clears; waiting on it would
      // hold up every create of this process. It is not counted as ours from now on.
      deps.clones.stuck.add(suspect.vmid);
      t.log.error('an unnamed clone stayed locked past the clone deadline; ignoring it (needs an operator)', {
        vmid: suspect.vmid,
        waitedMs: deps.timing.cloneTimeoutMs,
      });
      continue;
    }
    if (outcome === 'gone') continue;
    // The config is authoritative; the name in /cluster/resources can lag behind it.
    const config = await t.attempt(`read the config of VM ${suspect.vmid}`, () => deps.proxmox.getVmConfig(suspect.node, suspect.vmid));
    if (config.name === name) return { ...suspect, name, lock: undefined };
  }
  return null;
}

/** null while the clone runs; 'gone' when it failed (Proxmox removes it); 'done' otherwise. */
async function cloneOutcome(deps: TaskDeps, vm: VmSummary): Promise<'gone' | 'done' | null> {
  const present = async () => (await deps.proxmox.listVms()).some((v) => v.vmid === vm.vmid);
  if (!(await present())) return 'gone';
  try {
    const { lock } = await deps.proxmox.getVmStatus(vm.node, vm.vmid);
    return lock === 'clone' ? null : 'done';
  } catch (err) {
    // Removed between the two reads.
    if (!(await present())) return 'gone';
    throw err;
  }
}

/**
 * Waits while the VM is being cloned (by this or an earlier run of the bridge). Returns
 * the unlocked VM, or null when it vanished (Proxmox removes a clone that failed).
 */
export function waitWhileBuilding(deps: TaskDeps, t: Tools, desktopId: string, timeoutMs: number): Promise<VmSummary | null> {
  const name = vmName(desktopId);
  return t
    .pollUntil(
      `check whether VM ${name} is still being cloned`,
      async () => {
        const vm = await deps.proxmox.findVmByName(name);
        if (!vm) return { vm: null };
        return vm.lock && BUILD_LOCKS.has(vm.lock) ? null : { vm };
      },
      timeoutMs,
      `VM ${name} stayed locked (clone) for ${formatDuration(timeoutMs)}; the clone seems stuck`,
    )
    .then((r) => r.vm);
}

export async function isRunning(deps: TaskDeps, t: Tools, vm: VmRef): Promise<boolean> {
  const { status } = await t.attempt(`read the power state of VM ${vm.vmid}`, () => deps.proxmox.getVmStatus(vm.node, vm.vmid));
  return status !== 'stopped';
}

/** Starts the VM unless it runs already; resolves once the start task finished. */
export function ensureStarted(deps: TaskDeps, t: Tools, vm: VmRef): Promise<void> {
  return t.attempt(
    `start VM ${vm.vmid}`,
    async () => {
      const { status } = await deps.proxmox.getVmStatus(vm.node, vm.vmid);
      if (status === 'running') return;
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

/** Polls the guest agent until the desktop reports an IPv4 address. */
export function waitForIpv4(deps: TaskDeps, t: Tools, vm: VmRef): Promise<string> {
  const timeoutMs = deps.settings.ipWaitSeconds * 1000;
  return t.pollUntil(
    `read the IP address of VM ${vm.vmid} from its guest agent`,
    () => deps.proxmox.getGuestIpv4(vm.node, vm.vmid),
    timeoutMs,
    `VM ${vm.vmid} reported no IP address within ${formatDuration(timeoutMs)}; is qemu-guest-agent installed and enabled in the template?`,
  );
}

/** Destroys the desktop's VM if it exists; resolves once the destroy task finished. */
export function destroyIfPresent(deps: TaskDeps, t: Tools, desktopId: string): Promise<void> {
  const name = vmName(desktopId);
  return t.attempt(
    `destroy VM ${name}`,
    async () => {
      // Looked up again on every attempt: an earlier attempt's task may have finished the job.
      const vm = await deps.proxmox.findVmByName(name);
      if (!vm) return;
      const upid = await deps.proxmox.destroyVm(vm.node, vm.vmid);
      await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
    },
    deps.timing.powerTimeoutMs,
  );
}
