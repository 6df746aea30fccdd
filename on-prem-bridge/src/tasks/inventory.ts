/**
 * inventory (answers the `request` frame with op `inventory`): the VMs and Guacamole
 * connections this control plane made at this site, for the edge's reconciliation.
 * It only reads; deciding what is orphaned, and removing it, is the edge's call.
 */
import type { Inventory } from '../../../src/schemas/bridge-protocol';
import { MANAGED_TAG, desktopIdOf } from '../desktop-identity';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { toolsFor } from './tools';

export type InventoryResult = { ok: true; inventory: Inventory } | { ok: false; error: string };

export async function takeInventory(deps: TaskDeps, signal: AbortSignal, log: Logger): Promise<InventoryResult> {
  const t = toolsFor(deps, signal, log);
  try {
    const takenAt = new Date().toISOString();
    const [vms, connections] = await Promise.all([
      t.attempt('list VMs', () => deps.proxmox.listVms()),
      t.attempt('list Guacamole connections', () => deps.guacamole.listConnections()),
    ]);
    return {
      ok: true,
      inventory: {
        takenAt,
        vms: vms
          .filter((vm) => !vm.template && (vm.tags.includes(MANAGED_TAG) || desktopIdOf(vm.name) !== null))
          .map((vm) => ({
            vmid: vm.vmid,
            node: vm.node,
            name: vm.name,
            status: vm.status,
            lock: vm.lock,
            desktopId: desktopIdOf(vm.name),
          })),
        connections: connections
          .filter((c) => desktopIdOf(c.name) !== null)
          .map((c) => ({ identifier: c.identifier, name: c.name, desktopId: desktopIdOf(c.name) })),
      },
    };
  } catch (err) {
    const error = describeFailure(err, 'take the site inventory');
    log.warn('inventory failed', { error });
    return { ok: false, error };
  }
}
