/**
 * The second half of create and the whole of start: power on, wait for the guest's
 * address, point the Guacamole connection at it. Every step is reported when reached,
 * including when reality shows it already done.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import { connectionName } from '../desktop-identity';
import type { TaskDeps } from './context';
import { ensureConnection, ensureUserAccess } from './connection-steps';
import type { Reporter } from './reporter';
import type { Tools } from './tools';
import { type VmRef, ensureStarted, isRunning, waitForIpv4 } from './vm-steps';

export async function bringOnline(deps: TaskDeps, t: Tools, spec: DesktopSpec, vm: VmRef, r: Reporter): Promise<void> {
  if (await isRunning(deps, t, vm)) {
    r.report('start_vm', `VM ${vm.vmid} is already running`);
  } else {
    r.report('start_vm', `starting VM ${vm.vmid} on ${vm.node}`);
    await ensureStarted(deps, t, vm);
  }

  r.report('wait_ip', `waiting for VM ${vm.vmid} to report its IP address`);
  const ipAddress = await waitForIpv4(deps, t, vm);
  r.report('wait_ip', `VM ${vm.vmid} has address ${ipAddress}`, { ipAddress });

  r.report('connection', `pointing the Guacamole connection ${connectionName(spec.desktopId)} at ${ipAddress}`);
  const connectionId = await ensureConnection(deps, t, spec, ipAddress);
  await ensureUserAccess(deps, t, spec.desktopId, connectionId);
  r.report('connection', `Guacamole connection ${connectionId} is ready`, { connectionId });
}
