/**
 * create: allocate → clone → configure_vm → start_vm → wait_ip → connection.
 * The VMID is recorded in the ledger before the clone is started, and a redelivered or
 * resumed create asks Proxmox about that VM alone: it reuses the vmid, waits out a clone
 * still in progress and carries on, so it never makes a second VM. When the create fails
 * for good or is cancelled, everything it made is removed before the failure is reported.
 *
 * A VM whose clone finished during this run is fresh: no earlier run got past its clone, so
 * it is stopped and has no Guacamole connection yet. For such a VM the steps act first
 * instead of looking first (each act still copes with finding the work done), which keeps a
 * create at the handful of calls its work needs.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { DesktopLogin } from '../config';
import { DESKTOP_USER, desktopPassword, vmName, vmTags } from '../desktop-identity';
import { InfraError } from '../drivers/types';
import { TaskError, describeFailure } from '../errors';
import { bringOnline } from './bring-online';
import type { Task, TaskContext, TaskDeps } from './context';
import { checkLoginFits, loginOf } from './desktop-login';
import { type Reporter, createReporter } from './reporter';
import { teardownDesktop } from './teardown';
import { type Tools, toolsFor } from './tools';
import { type VmRef, cloneState, findDesktopVm, isRunning, recordedRef, waitWhileBuilding } from './vm-steps';

export interface Template {
  vmid: number;
  node: string;
  linked: boolean;
  /** A fork: the snapshot of another desktop's VM this one is a linked clone of. */
  snapname?: string;
}

/** Rounds of "the vmid was taken by someone else, pick another" before giving up. */
const MAX_VMID_COLLISIONS = 3;
/** Templates change rarely; their node and template flag are read again after this long. */
const TEMPLATE_TTL_MS = 5 * 60_000;
const templateCache = new WeakMap<TaskDeps['proxmox'], Map<number, { template: Template; at: number }>>();

export function createDesktop(deps: TaskDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const r = createReporter(ctx);
    try {
      const templateVmid = templateVmidOf(deps, spec);
      const login = loginOf(deps.settings, templateVmid);
      checkLoginFits(login, spec.protocol, templateVmid);
      const { fresh, ...vm } = await ensureVm(deps, t, spec, r);
      await configure(deps, t, spec, vm, r, login, fresh);
      await bringOnline(deps, t, spec, vm, r, login, { fresh });
      return { ...r.facts };
    } catch (err) {
      const reason = describeFailure(err, `create desktop ${spec.desktopId}`);
      ctx.log.warn('create failed; removing what it built', { reason });
      throw new TaskError(`${reason}; ${await cleanUp(deps, spec, ctx)}`, { cause: err });
    }
  };
}

/** allocate + clone: resolves to the desktop's VM, not locked, and whether its clone finished in this run. */
async function ensureVm(deps: TaskDeps, t: Tools, spec: DesktopSpec, r: Reporter): Promise<VmRef & { fresh: boolean }> {
  const found = await findDesktopVm(deps, t, spec.desktopId, { recordedOnly: true });
  let ref: VmRef | null = found ? { vmid: found.vmid, node: found.node } : await recordedRef(deps, spec.desktopId);
  if (found) {
    r.report('allocate', `found VM ${found.vmid} (${vmName(spec.desktopId)}) on ${found.node} from an earlier run`, {
      vmId: found.vmid,
      node: found.node,
    });
    if (found.lock !== 'clone' && found.lock !== 'create') {
      r.report('clone', `VM ${found.vmid} is already cloned`, { vmId: found.vmid, node: found.node });
      return { vmid: found.vmid, node: found.node, fresh: false };
    }
  }
  let template: Template | undefined;
  for (let collisions = 0; ; ) {
    if (ref) {
      const state = await t.attempt(`look at VM ${ref.vmid}`, () => cloneState(deps, spec.desktopId, ref as VmRef));
      if (state === 'done') return { ...ref, fresh: false };
      if (state === 'running') {
        r.report('clone', `VM ${ref.vmid} is still being cloned; waiting for the clone to finish`, { vmId: ref.vmid, node: ref.node });
        const settled = await waitWhileBuilding(deps, t, spec.desktopId, ref, deps.timing.cloneTimeoutMs);
        // The earlier run stopped during its clone, so it got no further than this run is now.
        if (settled) return { ...ref, fresh: true };
        // Proxmox removes a clone whose task failed: clone again into the same id if it is still free.
      }
      if (state === 'foreign') ref = null;
    }
    template ??= spec.forkOf ? await forkSource(deps, t, spec.forkOf) : await resolveTemplate(deps, t, spec);
    if (!ref) {
      ref = { vmid: await allocate(deps, t), node: template.node };
      r.report('allocate', `reserved VMID ${ref.vmid} on ${ref.node}`, { vmId: ref.vmid, node: ref.node });
    }
    // Recorded before the clone is requested: a process killed after the POST finds its clone by this entry.
    await deps.ledger.put(spec.desktopId, ref);
    r.report('clone', `cloning template ${template.vmid} into VM ${ref.vmid} (${template.linked ? 'linked' : 'full'} clone)`, {
      vmId: ref.vmid,
      node: ref.node,
    });
    // Either way the id was just seen free: by nextid when allocated, or by the look above.
    const outcome = await cloneOnce(deps, t, spec, template, ref);
    if (outcome === 'cloned') return { ...ref, fresh: true };
    if (++collisions > MAX_VMID_COLLISIONS) {
      throw new TaskError(`Proxmox kept refusing new VMIDs in ${rangeText(deps)} as already taken; is the range shared with other tools?`);
    }
    t.log.warn('vmid taken by another VM; allocating another', { vmid: ref.vmid });
    ref = null;
  }
}

/**
 * One clone with its retries into an id just seen free. Each retry looks first, since an
 * earlier attempt's clone may have finished. A POST retried after a time-out can arrive
 * twice (proxmox-api resends once on a fetch failure); the driver then resumes the clone already running into
 * this id, and the finished config tells whether that clone is really ours.
 */
export async function cloneOnce(
  deps: TaskDeps,
  t: Tools,
  spec: DesktopSpec,
  template: Template,
  ref: VmRef,
): Promise<'cloned' | 'vmid-taken'> {
  const name = vmName(spec.desktopId);
  let firstAttempt = true;
  return t.attempt(
    `clone template ${template.vmid} into VM ${ref.vmid}`,
    async () => {
      const before = firstAttempt ? 'gone' : await cloneState(deps, spec.desktopId, ref);
      firstAttempt = false;
      if (before === 'foreign') return 'vmid-taken' as const;
      if (before === 'done') return 'cloned' as const;
      if (before === 'gone') {
        try {
          const upid = await deps.proxmox.cloneVm({
            node: template.node,
            templateVmid: template.vmid,
            newid: ref.vmid,
            name,
            full: !template.linked,
            description: describeVm(spec),
            ...(template.snapname !== undefined ? { snapname: template.snapname } : {}),
          });
          await deps.proxmox.waitForTask(upid, { signal: t.signal, pollMs: deps.timing.pollMs });
        } catch (err) {
          // nextid never reserves (pve-manager's API2/Cluster.pm): someone else may have taken our id in between. Not on our node
          // ('gone' here) means on another node of the cluster: taken all the same.
          if (err instanceof InfraError && /already exists/i.test(err.message)) {
            const state = await cloneState(deps, spec.desktopId, ref);
            return state === 'foreign' || state === 'gone' ? ('vmid-taken' as const) : ('cloned' as const);
          }
          throw err;
        }
      } else {
        // 'running': a clone of an earlier attempt; its end is the answer.
        const settled = await waitWhileBuilding(deps, t, spec.desktopId, ref, deps.timing.cloneTimeoutMs);
        if (!settled) throw new InfraError(`Proxmox: the clone into VM ${ref.vmid} failed (its config disappeared)`, 'proxmox', 500, true);
      }
      // A driver that resumes a clone it finds running into this id (a POST sent twice)
      // cannot know whose it is; the finished config can.
      const config = await deps.proxmox.getVmConfig(ref.node, ref.vmid);
      return config.name === name ? ('cloned' as const) : ('vmid-taken' as const);
    },
    deps.timing.cloneTimeoutMs,
  );
}

/** configure_vm: cores, memory, identity and the guest login. Skipped once the VM runs (a fresh clone does not). */
export async function configure(
  deps: TaskDeps,
  t: Tools,
  spec: DesktopSpec,
  vm: VmRef,
  r: Reporter,
  login: DesktopLogin,
  fresh: boolean,
): Promise<void> {
  // Changes to a running VM stay pending until the next boot (qemu-server's update_vm_api); a running VM of ours
  // was configured before it was first started.
  if (!fresh && (await isRunning(deps, t, vm))) {
    r.report('configure_vm', `VM ${vm.vmid} is running, so it was configured by an earlier run`);
    return;
  }
  r.report('configure_vm', `setting ${spec.cpuCores} cores and ${spec.memoryMb} MB on VM ${vm.vmid}`);
  const config = {
    name: vmName(spec.desktopId),
    cores: spec.cpuCores,
    memory: spec.memoryMb,
    tags: vmTags(spec.desktopId, deps.owner()).join(';'),
    description: describeVm(spec),
    agent: 1,
    // Every login kind has the guest account set by cloud-init; for vnc-password the VNC server ignores it.
    ciuser: DESKTOP_USER,
    cipassword: desktopPassword(deps.settings.bridgeSecret, spec.desktopId),
  };
  t.log.debug('configuring for login', { login });
  await t.attempt(`configure VM ${vm.vmid}`, () => deps.proxmox.configureVm(vm.node, vm.vmid, config));
}

export function templateVmidOf(deps: TaskDeps, spec: DesktopSpec): number {
  const vmid = spec.template === undefined ? deps.settings.templateVmid : deps.settings.templates[spec.template];
  if (vmid === undefined) {
    const known = Object.keys(deps.settings.templates);
    throw new TaskError(
      `Unknown template "${spec.template}"; this site offers ${known.length ? known.join(', ') : 'only its default template'}`,
    );
  }
  return vmid;
}

/**
 * The template's node and whether it is a template, from its own config (live; /cluster/resources takes the
 * template flag from pvestatd's cache, and a stale entry would silently make a full clone). Remembered a while.
 */
export async function resolveTemplate(deps: TaskDeps, t: Tools, spec: DesktopSpec): Promise<Template> {
  const vmid = templateVmidOf(deps, spec);
  const cache = templateCache.get(deps.proxmox) ?? new Map<number, { template: Template; at: number }>();
  templateCache.set(deps.proxmox, cache);
  const hit = cache.get(vmid);
  if (hit && Date.now() - hit.at < TEMPLATE_TTL_MS) return hit.template;

  const found = await t.attempt(`read the config of template ${vmid}`, async () => {
    try {
      return { node: deps.settings.node, config: await deps.proxmox.getVmConfig(deps.settings.node, vmid) };
    } catch (err) {
      if (!(err instanceof InfraError && /does not exist/.test(err.message))) throw err;
      // Not on PROXMOX_NODE: find its node (a clone must be addressed to the node that owns the source:
      // pve-guest-common's load_config).
      const vm = (await deps.proxmox.listVms()).find((v) => v.vmid === vmid);
      return vm ? { node: vm.node, config: await deps.proxmox.getVmConfig(vm.node, vmid) } : null;
    }
  });
  if (!found) throw new TaskError(`Template ${vmid} does not exist on this Proxmox cluster`);
  const isTemplate = found.config.template === 1 || found.config.template === '1';
  if (deps.settings.linkedClone && !isTemplate) t.log.warn('source VM is not a template; making a full clone', { templateVmid: vmid });
  if (found.node !== deps.settings.node) {
    t.log.warn('template lives on another node than PROXMOX_NODE; cloning there', {
      templateVmid: vmid,
      node: found.node,
      configured: deps.settings.node,
    });
  }
  const template = { vmid, node: found.node, linked: deps.settings.linkedClone && isTemplate };
  cache.set(vmid, { template, at: Date.now() });
  return template;
}

/** A fork clones another desktop's VM as it was at one of its snapshots (a linked clone where the storage allows). */
async function forkSource(deps: TaskDeps, t: Tools, forkOf: NonNullable<DesktopSpec['forkOf']>): Promise<Template> {
  const source = await findDesktopVm(deps, t, forkOf.desktopId);
  if (!source) throw new TaskError(`The desktop ${forkOf.desktopId} to fork no longer has a VM`);
  return { vmid: source.vmid, node: source.node, linked: true, snapname: forkOf.snapshot };
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

const rangeText = (deps: TaskDeps) => `${deps.settings.vmidRange.min}-${deps.settings.vmidRange.max}`;
