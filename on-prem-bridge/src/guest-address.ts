/**
 * The address a guest reports is the desktop user's to choose: the QEMU guest agent runs
 * inside the VM, and anyone with root there can make it report any address on any NIC.
 * Guacamole connects wherever the connection points, from the guacd host, so before an
 * address becomes a connection's hostname it must be on the VM's own NIC (the MAC in its
 * Proxmox config; the driver picks it) and inside the networks the site's desktops live in
 * (PROXMOX_GUEST_NETWORKS). Without those networks configured, loopback, link-local,
 * multicast and unspecified addresses are refused, which is all that can be said then.
 */

export interface Ipv4Network {
  text: string;
  base: number;
  bits: number;
}

function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const v = Number(part);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

/** `10.20.0.0/16, 192.168.5.0/24` → networks; null when any entry is malformed. */
export function parseNetworks(text: string): Ipv4Network[] | null {
  const out: Ipv4Network[] = [];
  for (const entry of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([\d.]+)\/(\d{1,2})$/.exec(entry);
    const base = m ? ipv4ToInt(m[1] ?? '') : null;
    const bits = Number(m?.[2]);
    if (base === null || !(bits >= 0 && bits <= 32)) return null;
    out.push({ text: entry, base, bits });
  }
  return out.length ? out : null;
}

function inNetwork(ip: number, net: Ipv4Network): boolean {
  if (net.bits === 0) return true;
  const shift = 32 - net.bits;
  return Math.floor(ip / 2 ** shift) === Math.floor(net.base / 2 ** shift);
}

/** Null when Guacamole may be pointed at `ip`; otherwise why not, in a sentence's tail. */
export function refuseGuestAddress(ip: string, networks: Ipv4Network[]): string | null {
  const n = ipv4ToInt(ip);
  if (n === null) return `${ip} is not an IPv4 address`;
  if (networks.length > 0) {
    return networks.some((net) => inNetwork(n, net))
      ? null
      : `${ip} is outside PROXMOX_GUEST_NETWORKS (${networks.map((net) => net.text).join(', ')})`;
  }
  const first = Math.floor(n / 2 ** 24);
  if (first === 127) return `${ip} is a loopback address`;
  if (first === 0) return `${ip} is not a host address`;
  if (first >= 224) return `${ip} is a multicast or reserved address`;
  if (Math.floor(n / 2 ** 16) === 169 * 256 + 254) return `${ip} is a link-local address`;
  return null;
}
