/**
 * The rest of the site: VMs other teams run on the same cluster (web servers, databases, CI
 * runners, Windows build hosts), so the bench and tests can put the bridge on a node with
 * thousands of VMs that are not its own. Simulator-only: made by the PROXMOX_SIM_SITE_VMS
 * start option or `POST /__sim/site-vms`, never through the Proxmox API. Their configs look
 * like qemu-server writes them (disks named after their vmid, fresh MACs, smbios1 uuid and
 * vmgenid) and carry none of the bridge's marks: no cdaas tags, no desk-<id> names.
 */
import { randomUUID } from 'node:crypto';
import type { VmConfig } from './state';

interface Role {
  prefix: string;
  ostype: string;
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  tags: string;
}

const ROLES: Role[] = [
  { prefix: 'web', ostype: 'l26', cores: 2, memoryMiB: 4096, diskGiB: 32, tags: 'prod;web' },
  { prefix: 'db', ostype: 'l26', cores: 8, memoryMiB: 32768, diskGiB: 500, tags: 'db;prod' },
  { prefix: 'ci-runner', ostype: 'l26', cores: 4, memoryMiB: 8192, diskGiB: 64, tags: 'ci' },
  { prefix: 'win-build', ostype: 'win11', cores: 8, memoryMiB: 16384, diskGiB: 128, tags: 'build;windows' },
  { prefix: 'k8s-worker', ostype: 'l26', cores: 16, memoryMiB: 65536, diskGiB: 200, tags: 'k8s;prod' },
  { prefix: 'test', ostype: 'l26', cores: 1, memoryMiB: 2048, diskGiB: 16, tags: '' },
];

/** The config of the `index`-th other VM of the site, at `vmid`, with the MAC the cluster hands out. */
export function siteVmConfig(vmid: number, index: number, mac: string): VmConfig {
  const role = ROLES[index % ROLES.length] as Role;
  const windows = role.ostype.startsWith('win');
  const config: VmConfig = {
    boot: 'order=scsi0;ide2;net0',
    cores: role.cores,
    cpu: windows ? 'host' : 'x86-64-v2-AES',
    ide2: 'none,media=cdrom',
    memory: String(role.memoryMiB),
    meta: `creation-qemu=9.0.2,ctime=${1_700_000_000 + index * 3_613}`,
    name: `${role.prefix}-${String(Math.floor(index / ROLES.length) + 1).padStart(2, '0')}`,
    net0: `virtio=${mac},bridge=vmbr0,firewall=1`,
    numa: 0,
    onboot: index % 3 === 0 ? 1 : 0,
    ostype: role.ostype,
    scsi0: `local-lvm:vm-${vmid}-disk-0,iothread=1,size=${role.diskGiB}G`,
    scsihw: 'virtio-scsi-single',
    smbios1: `uuid=${randomUUID()}`,
    sockets: 1,
    vmgenid: randomUUID(),
  };
  if (role.tags) config.tags = role.tags;
  if (!windows) config.agent = '1';
  if (windows) {
    config.efidisk0 = `local-lvm:vm-${vmid}-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M`;
    config.tpmstate0 = `local-lvm:vm-${vmid}-disk-2,size=4M,version=v2.0`;
    config.bios = 'ovmf';
    config.machine = 'pc-q35-9.0';
  }
  return config;
}
