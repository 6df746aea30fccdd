/**
 * inventory (answers the `request` frame with op `inventory`): the VMs, Guacamole
 * connections and Selkies sessions this control plane made at this site, for the edge's
 * reconciliation. It only reads; deciding what is orphaned, and removing it, is the edge's
 * call. Each object says whether it carries this site's and this deployment's marks
 * (`owned`): only those may ever be removed. Everything is read live (per-node VM lists,
 * not pvestatd's cache), since the edge compares power states with what it believes.
 */
import type { Inventory } from '../../../src/schemas/bridge-protocol';
import { MANAGED_TAG, OWNER_ATTRIBUTE, desktopIdOf, guacamoleUsername, ownedByAttribute, ownedByTags } from '../desktop-identity';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { sessionInventory } from './selkies';
import { toolsFor } from './tools';

export type InventoryResult = { ok: true; inventory: Inventory } | { ok: false; error: string };

/** A desk-<id> tag names the desktop even while a clone's name is not written yet. */
function desktopIdFromTags(tags: string[]): string | null {
  for (const tag of tags) {
    const id = desktopIdOf(tag);
    if (id) return id;
  }
  return null;
}

export async function takeInventory(deps: TaskDeps, signal: AbortSignal, log: Logger): Promise<InventoryResult> {
  const t = toolsFor(deps, signal, log);
  const owner = deps.owner();
  try {
    const takenAt = new Date().toISOString();
    const [vms, connections, users, sessions] = await Promise.all([
      t.attempt('list VMs', () => deps.proxmox.listVms()),
      t.attempt('list Guacamole connections', () => deps.guacamole.listConnections()),
      t.attempt('list Guacamole users', () => deps.guacamole.listUsers()),
      deps.selkies ? t.attempt('list Selkies sessions', () => sessionInventory({ ...deps, selkies: deps.selkies! })) : undefined,
    ]);
    const userMarks = new Map(users.map((u) => [u.username, u.attributes[OWNER_ATTRIBUTE]]));
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
            desktopId: desktopIdOf(vm.name) ?? desktopIdFromTags(vm.tags),
            owned: ownedByTags(vm.tags, owner),
          })),
        connections: connections
          .filter((c) => desktopIdOf(c.name) !== null)
          .map((c) => {
            const desktopId = desktopIdOf(c.name);
            return {
              identifier: c.identifier,
              name: c.name,
              desktopId,
              owned: desktopId !== null && ownedByAttribute(userMarks.get(guacamoleUsername(desktopId)), owner),
            };
          }),
        ...(sessions ? { sessions } : {}),
      },
    };
  } catch (err) {
    const error = describeFailure(err, 'take the site inventory');
    log.warn('inventory failed', { error });
    return { ok: false, error };
  }
}
