/**
 * Privilege checks of a privilege-separated API token (pve-access-control RPCEnvironment
 * `check`: a missing privilege dies with 403 `Permission check failed (<path>, <privilege>)`).
 * The simulator grants a token's privileges on `/` with propagation, so every path has the
 * same set; a token without a list is root's (every privilege), as the development token is.
 * The privileges each endpoint checks follow qemu-server's API2/Qemu.pm permission blocks.
 */
import { PveError } from './http';

/** Every privilege the simulated endpoints check. */
export const ALL_PRIVILEGES = [
  'Datastore.Allocate',
  'Datastore.AllocateSpace',
  'Datastore.Audit',
  'SDN.Audit',
  'SDN.Use',
  'Sys.Audit',
  'VM.Allocate',
  'VM.Audit',
  'VM.Clone',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Cloudinit',
  'VM.Config.Disk',
  'VM.Config.HWType',
  'VM.Config.Memory',
  'VM.Config.Network',
  'VM.Config.Options',
  'VM.GuestAgent.Audit',
  'VM.Monitor',
  'VM.PowerMgmt',
  'VM.Snapshot',
  'VM.Snapshot.Rollback',
] as const;

/** The privileges a tokens' set stands for: undefined = root. */
export class Privileges {
  private readonly set: Set<string> | null;

  constructor(privileges: readonly string[] | undefined) {
    this.set = privileges ? new Set(privileges) : null;
  }

  has(privilege: string): boolean {
    return this.set === null || this.set.has(privilege);
  }

  /** rpcenv->check: 403 naming the path and the first missing privilege. */
  check(path: string, ...privileges: string[]): void {
    for (const privilege of privileges) {
      if (!this.has(privilege)) throw new PveError(403, `Permission check failed (${path}, ${privilege})`);
    }
  }

  /** GET /access/permissions: `{ "<path>": { "<privilege>": 1, … } }` (1 = propagated). */
  dump(path: string | undefined): Record<string, Record<string, number>> {
    const privileges = Object.fromEntries([...(this.set ?? ALL_PRIVILEGES)].sort().map((p) => [p, 1]));
    return { [path ?? '/']: privileges };
  }
}

/** update_vm_api: the privilege each changed option needs (`$check_vm_modify_config_perm`). */
export function configPrivilege(option: string): string {
  if (/^(cores|sockets|vcpus|cpu|cpulimit|cpuunits|affinity|numa\d*)$/.test(option)) return 'VM.Config.CPU';
  if (/^(memory|balloon|shares)$/.test(option)) return 'VM.Config.Memory';
  if (/^(ciuser|cipassword|citype|ciupgrade|cicustom|ipconfig\d+|nameserver|searchdomain|sshkeys)$/.test(option))
    return 'VM.Config.Cloudinit';
  if (/^net\d+$/.test(option)) return 'VM.Config.Network';
  if (/^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$|^unused\d+$/.test(option)) return 'VM.Config.Disk';
  return 'VM.Config.Options';
}
