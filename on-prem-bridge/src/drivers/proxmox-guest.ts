/**
 * Pure helpers of the Proxmox driver: UPID parsing (pve-common's PVE/UPID.pm) and picking the guest's address from the
 * agent's network-get-interfaces answer (qemu-server's API2/Qemu/Agent.pm).
 */
import { z } from 'zod';

export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
}

// pve-common src/PVE/UPID.pm decode.
const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

export function parseUpid(upid: string): Upid | null {
  const m = UPID_RE.exec(upid);
  if (!m) return null;
  return {
    node: m[1] ?? '',
    pid: Number.parseInt(m[3] ?? '0', 16),
    pstart: Number.parseInt(m[4] ?? '0', 16),
    starttime: Number.parseInt(m[5] ?? '0', 16),
    type: m[6] ?? '',
    id: m[7] ?? '',
    user: m[8] ?? '',
  };
}

/** The MAC of a `net0` property string (`virtio=BC:24:11:..,bridge=vmbr0` or `model=virtio,macaddr=..`). */
export function macOfNet(net: string | number | undefined): string | null {
  const m = /(?:^|[=,])([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?:,|$)/.exec(String(net ?? ''));
  return m?.[1]?.toLowerCase() ?? null;
}

const GuestInterfaceSchema = z.looseObject({
  name: z.string(),
  'hardware-address': z.string().optional(),
  'ip-addresses': z.array(z.looseObject({ 'ip-address': z.string(), 'ip-address-type': z.string() })).optional(),
});
const GuestInterfacesSchema = z.array(GuestInterfaceSchema);

/** Bridges of container runtimes and libvirt carry private addresses that are not how we reach the desktop. */
const NOT_THE_NIC = /^(lo|docker|br-|veth|cni|flannel|cali|virbr|lxc|podman|tailscale|zt)/;

function usableIpv4(address: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(address) && !address.startsWith('127.') && !address.startsWith('169.254.');
}

/** Whether the agent's answer lists a NIC with this MAC (addressed yet or not). */
export function hasNic(result: unknown, mac: string): boolean {
  const parsed = GuestInterfacesSchema.safeParse(result);
  return parsed.success && parsed.data.some((nic) => nic['hardware-address']?.toLowerCase() === mac.toLowerCase());
}

/**
 * The IPv4 of the NIC whose MAC is `mac` (lo, 127/8 and 169.254/16 ignored); without a MAC, the
 * first address of a NIC that is not loopback or a container bridge. Null while there is none yet.
 */
export function pickGuestIpv4(result: unknown, mac: string | null): string | null {
  const parsed = GuestInterfacesSchema.safeParse(result);
  if (!parsed.success) return null;
  const candidates = parsed.data.filter((nic) =>
    mac
      ? nic['hardware-address']?.toLowerCase() === mac.toLowerCase()
      : !NOT_THE_NIC.test(nic.name) && nic['hardware-address'] !== '00:00:00:00:00:00',
  );
  for (const nic of candidates) {
    // On the VM's own NIC every address counts (whether it may be used is the caller's call, guest-address.ts);
    // without a MAC to go by, loopback and link-local addresses are never the desktop's.
    const v4 = nic['ip-addresses']?.find(
      (a) => a['ip-address-type'] === 'ipv4' && (mac ? !a['ip-address'].startsWith('169.254.') : usableIpv4(a['ip-address'])),
    );
    if (v4) return v4['ip-address'];
  }
  return null;
}
