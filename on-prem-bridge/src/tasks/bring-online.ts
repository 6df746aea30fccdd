/**
 * The second half of create and the whole of start: power on, wait for the guest's
 * address, check it may be used, wait for the desktop to answer on its protocol port, point
 * the Guacamole connection at it. Every step is reported when reached, including when
 * reality shows it already done. A desktop is only RUNNING when someone can use it.
 *
 * `fresh` (create-desktop.ts: the clone finished in this run): the VM is stopped and has no
 * connection yet, so the start and the connection are made without looking first; both still
 * cope with finding the work done (a start of a running VM, a connection name already taken).
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { DesktopLogin } from '../config';
import { connectionName } from '../desktop-identity';
import { probeDesktop } from '../drivers/desktop-port';
import { TaskError } from '../errors';
import { refuseGuestAddress } from '../guest-address';
import { formatDuration } from '../retry';
import type { TaskDeps } from './context';
import { ensureConnection, ensureUser, grantRead } from './connection-steps';
import { DESKTOP_PORTS } from './desktop-login';
import type { Reporter } from './reporter';
import type { Tools } from './tools';
import { type VmRef, ensureStarted, isRunning } from './vm-steps';

export async function bringOnline(
  deps: TaskDeps,
  t: Tools,
  spec: DesktopSpec,
  vm: VmRef,
  r: Reporter,
  login: DesktopLogin,
  opts: { fresh?: boolean } = {},
): Promise<void> {
  const fresh = opts.fresh === true;
  if (!fresh && (await isRunning(deps, t, vm))) {
    r.report('start_vm', `VM ${vm.vmid} is already running`);
  } else {
    r.report('start_vm', `starting VM ${vm.vmid} on ${vm.node}`);
    await ensureStarted(deps, t, vm, { knownStopped: fresh });
  }

  r.report('wait_ip', `waiting for VM ${vm.vmid} to report its IP address`);
  const ipAddress = await waitForUsableIpv4(deps, t, vm);
  r.report('wait_ip', `VM ${vm.vmid} has address ${ipAddress}`, { ipAddress });

  const kind = spec.protocol === 'rdp' ? 'rdp' : 'vnc';
  r.report('connection', `waiting for the desktop at ${ipAddress} to answer on its ${kind.toUpperCase()} port ${DESKTOP_PORTS[kind]}`);
  await waitForDesktop(deps, t, ipAddress, kind);

  r.report('connection', `pointing the Guacamole connection ${connectionName(spec.desktopId)} at ${ipAddress}`);
  // The user first, so a connection never exists without its marked user.
  await ensureUser(deps, t, spec.desktopId, { fresh });
  const connectionId = await ensureConnection(deps, t, spec, ipAddress, login, { fresh });
  await grantRead(deps, t, spec.desktopId, connectionId);
  r.report('connection', `Guacamole connection ${connectionId} is ready`, { connectionId });
}

/**
 * Polls the guest agent until the VM's own NIC has an address Guacamole may be pointed at. An address outside
 * the site's guest networks is not used (the guest's user controls what the agent reports), only waited past.
 */
async function waitForUsableIpv4(deps: TaskDeps, t: Tools, vm: VmRef): Promise<string> {
  const timeoutMs = deps.settings.ipWaitSeconds * 1000;
  let refused: string | null = null;
  const ip = await t.pollFor(
    `read the IP address of VM ${vm.vmid} from its guest agent`,
    async () => {
      const reported = await deps.proxmox.getGuestIpv4(vm.node, vm.vmid);
      if (!reported) return null;
      refused = refuseGuestAddress(reported, deps.settings.guestNetworks);
      if (refused) t.log.warn('the guest reported an address that is not used', { vmid: vm.vmid, why: refused });
      return refused ? null : reported;
    },
    timeoutMs,
  );
  if (ip) return ip;
  if (refused) throw new TaskError(`VM ${vm.vmid} reported ${refused}; Guacamole is not pointed at it`);
  throw new TaskError(
    `VM ${vm.vmid} reported no IP address within ${formatDuration(timeoutMs)}; is qemu-guest-agent installed and enabled in the template?`,
  );
}

/** The desktop's VNC server or xrdp answers with its greeting, within DESKTOP_WAIT_SECONDS. */
async function waitForDesktop(deps: TaskDeps, t: Tools, ip: string, protocol: 'vnc' | 'rdp'): Promise<void> {
  const timeoutMs = deps.settings.desktopWaitSeconds * 1000;
  const port = DESKTOP_PORTS[protocol];
  let last = 'no answer';
  const answered = await t.pollFor(
    `check that the desktop at ${ip} answers on port ${port}`,
    async () => {
      const probe = await (deps.probeDesktop ?? probeDesktop)(ip, port, protocol, Math.min(5000, timeoutMs));
      if (probe.ready) return true;
      last = probe.reason;
      return null;
    },
    timeoutMs,
  );
  if (answered) return;
  throw new TaskError(
    `The desktop at ${ip} did not answer on its ${protocol.toUpperCase()} port ${port} within ${formatDuration(timeoutMs)} (last try: ${last}); ` +
      `is the ${protocol === 'vnc' ? 'VNC server' : 'RDP service (xrdp)'} enabled in the template, and may this host reach the desktop network?`,
  );
}
