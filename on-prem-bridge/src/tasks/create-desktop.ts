/**
 * create: allocate → clone → configure_vm → start_vm → wait_ip → connection.
 * The VM's name (desk-<desktopId>) is the only memory between runs: a redelivered or
 * resumed create finds the VM, reuses its vmid, waits out a clone still in progress and
 * carries on, so it never makes a second VM. When the create fails for good or is
 * cancelled, everything it made is removed before the failure is reported.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import { DESKTOP_USER, desktopPassword, vmName, vmTags } from '../desktop-identity';
import { InfraError, type VmSummary } from '../drivers/types';
import { TaskError, describeFailure } from '../errors';
import { bringOnline } from './bring-online';
import type { Task, TaskContext, TaskDeps } from './context';
import { type Reporter, createReporter } from './reporter';
import { teardownDesktop } from './teardown';
import { type Tools, toolsFor } from './tools';
import { type VmRef, findDesktopVmSettled, isRunning, waitWhileBuilding } from './vm-steps';

interface Template {
  vmid: number;
  node: string;
  linked: boolean;
}

/** Rounds of "the vmid was taken by someone else, pick another" before giving up. */
const MAX_VMID_COLLISIONS = 3;

export function createDesktop(deps: TaskDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const r = createReporter(ctx);
    try {
      const vm = await ensureVm(deps, t, spec, r);
      await configure(deps, t, spec, vm, r);
      await bringOnline(deps, t, spec, vm, r);
      return { ...r.facts };
    } catch (err) {
      const reason = describeFailure(err, `create desktop ${spec.desktopId}`);
      ctx.log.warn('create failed; removing what it built', { reason });
      throw new TaskError(`${reason}; ${await cleanUp(deps, spec, ctx)}`, { cause: err });
    }
  };
}

/** allocate + clone: resolves to a VM named desk-<desktopId> that is not locked. */
async function ensureVm(deps: TaskDeps, t: Tools, spec: DesktopSpec, r: Reporter): Promise<VmRef> {
  const name = vmName(spec.desktopId);
  const found = await findDesktopVmSettled(deps, t, spec.desktopId, (message) => r.report('allocate', message));
  let template: Template | undefined;
  let ref: VmRef;
  if (found) {
    ref = refOf(found);
    r.report('allocate', `found VM ${found.vmid} (${name}) on ${found.node} from an earlier run`, { vmId: ref.vmid, node: ref.node });
  } else {
    template = await resolveTemplate(deps, t, spec);
    ref = { vmid: await allocate(deps, t), node: template.node };
    r.report('allocate', `reserved VMID ${ref.vmid} on ${ref.node}`, { vmId: ref.vmid, node: ref.node });
  }

  let observed: VmSummary | null = found;
  for (let collisions = 0; ; ) {
    if (observed) {
      ref = refOf(observed);
      if (observed.lock !== 'clone' && observed.lock !== 'create') {
        r.report('clone', `VM ${ref.vmid} is already cloned`, { vmId: ref.vmid, node: ref.node });
        return ref;
      }
      r.report('clone', `VM ${ref.vmid} is still being cloned; waiting for the clone to finish`, { vmId: ref.vmid, node: ref.node });
      const settled = await waitWhileBuilding(deps, t, spec.desktopId, deps.timing.cloneTimeoutMs);
      if (settled) return refOf(settled);
      // Proxmox removes a clone whose task failed; start over with a fresh id.
      observed = null;
      ref = { vmid: await allocate(deps, t), node: ref.node };
    }

    template ??= await resolveTemplate(deps, t, spec);
    r.report('clone', `cloning template ${template.vmid} into VM ${ref.vmid} (${template.linked ? 'linked' : 'full'} clone)`, {
      vmId: ref.vmid,
      node: ref.node,
    });
    const outcome = await cloneOnce(deps, t, spec, template, ref);
    if (outcome === 'cloned') return ref;
    if (outcome === 'vmid-taken') {
      if (++collisions > MAX_VMID_COLLISIONS) {
        throw new TaskError(
          `Proxmox kept refusing new VMIDs in ${rangeText(deps)} as already taken; is the range shared with other tools?`,
        );
      }
      t.log.warn('vmid taken by another VM; allocating another', { vmid: ref.vmid });
      ref = { vmid: await allocate(deps, t), node: ref.node };
      continue;
    }
    observed = outcome;
  }
}

/**
 * One clone with its retries. Each attempt looks first, since an earlier attempt's clone
 * may have finished. A POST retried after a time-out can arrive twice (contracts/proxmox
 * §13); the driver then resumes the clone already running into this id, and the
 * finished config tells whether that clone is really ours.
 */
async function cloneOnce(
  deps: TaskDeps,
  t: Tools,
  spec: DesktopSpec,
  template: Template,
  ref: VmRef,
): Promise<'cloned' | 'vmid-taken' | VmSummary> {
  const name = vmName(spec.desktopId);
  // Other tasks of this process must not mistake this unnamed clone for an orphan.
  deps.clones.inFlight.add(ref.vmid);
  try {
    return await t.attempt(
      `clone template ${template.vmid} into VM ${ref.vmid}`,
      async () => {
        const existing = await deps.proxmox.findVmByName(name);
        if (existing) return existing;
        try {
          const upid = await deps.proxmox.cloneVm({
            node: template.node,
            templateVmid: template.vmid,
            newid: ref.vmid,
            name,
            full: !template.linked,
            description: describeVm(spec),
          });
          await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
        } catch (err) {
          // nextid never reserves (§12): someone else may have taken our id in between.
          if (err instanceof InfraError && /already exists/i.test(err.message)) {
            return (await deps.proxmox.findVmByName(name)) ?? ('vmid-taken' as const);
          }
          throw err;
        }
        // A driver that resumes a clone it finds running into this id (a POST sent twice)
        // cannot know whose it is; the finished config can.
        const config = await deps.proxmox.getVmConfig(ref.node, ref.vmid);
        return config.name === name ? ('cloned' as const) : ('vmid-taken' as const);
      },
      deps.timing.cloneTimeoutMs,
    );
  } finally {
    deps.clones.inFlight.delete(ref.vmid);
  }
}

/** configure_vm: cores, memory, identity and the guest login. Skipped once the VM runs. */
async function configure(deps: TaskDeps, t: Tools, spec: DesktopSpec, vm: VmRef, r: Reporter): Promise<void> {
  // Changes to a running VM stay pending until the next boot (§8); a running VM of ours
  // was configured before it was first started.
  if (await isRunning(deps, t, vm)) {
    r.report('configure_vm', `VM ${vm.vmid} is running, so it was configured by an earlier run`);
    return;
  }
  r.report('configure_vm', `setting ${spec.cpuCores} cores and ${spec.memoryMb} MB on VM ${vm.vmid}`);
  const config = {
    name: vmName(spec.desktopId),
    cores: spec.cpuCores,
    memory: spec.memoryMb,
    tags: vmTags(spec.desktopId).join(';'),
    description: describeVm(spec),
    agent: 1,
    ciuser: DESKTOP_USER,
    cipassword: desktopPassword(deps.settings.bridgeSecret, spec.desktopId),
  };
  await t.attempt(`configure VM ${vm.vmid}`, () => deps.proxmox.configureVm(vm.node, vm.vmid, config));
}

async function resolveTemplate(deps: TaskDeps, t: Tools, spec: DesktopSpec): Promise<Template> {
  const vmid = spec.template === undefined ? deps.settings.templateVmid : deps.settings.templates[spec.template];
  if (vmid === undefined) {
    const known = Object.keys(deps.settings.templates);
    throw new TaskError(
      `Unknown template "${spec.template}"; this site offers ${known.length ? known.join(', ') : 'only its default template'}`,
    );
  }
  const vms = await t.attempt('list the VMs of the cluster', () => deps.proxmox.listVms());
  const source = vms.find((vm) => vm.vmid === vmid);
  if (!source) throw new TaskError(`Template ${vmid} does not exist on this Proxmox cluster`);
  if (deps.settings.linkedClone && !source.template) {
    t.log.warn('source VM is not a template; making a full clone', { templateVmid: vmid });
  }
  // A clone must be addressed to the node that owns the source (contracts/proxmox §2), and
  // without shared storage it lands there too; PROXMOX_NODE only names where we expect it.
  if (source.node !== deps.settings.node) {
    t.log.warn('template lives on another node than PROXMOX_NODE; cloning there', {
      templateVmid: vmid,
      node: source.node,
      configured: deps.settings.node,
    });
  }
  return { vmid, node: source.node, linked: deps.settings.linkedClone && source.template };
}

function allocate(deps: TaskDeps, t: Tools): Promise<number> {
  return t.attempt(`reserve a VMID in ${rangeText(deps)}`, () => deps.proxmox.allocateVmid(deps.settings.vmidRange));
}

/** Runs the teardown on its own deadline: the command's signal may be the reason we are here. */
async function cleanUp(deps: TaskDeps, spec: DesktopSpec, ctx: TaskContext): Promise<string> {
  const log = ctx.log.child({ phase: 'cleanup' });
  const t = toolsFor(deps, AbortSignal.timeout(deps.timing.cleanupTimeoutMs), log);
  try {
    await teardownDesktop(deps, t, spec.desktopId, ctx.progress);
    return 'everything it had created was removed';
  } catch (err) {
    log.error('clean-up after a failed create failed', { error: err });
    return `cleaning up also failed (${describeFailure(err, 'clean up')}); VM ${vmName(spec.desktopId)} and its Guacamole connection may need removing by hand`;
  }
}

function describeVm(spec: DesktopSpec): string {
  return `Cloud desktop ${spec.desktopId} of user ${spec.userId} (plan ${spec.plan}). Managed by the cdaas bridge: do not rename.`;
}

const refOf = (vm: VmSummary): VmRef => ({ vmid: vm.vmid, node: vm.node });
const rangeText = (deps: TaskDeps) => `${deps.settings.vmidRange.min}-${deps.settings.vmidRange.max}`;
