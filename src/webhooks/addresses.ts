/**
 * IP addresses a webhook may be delivered to: public unicast only. Pure functions over
 * address text, so registration (a literal in the URL) and delivery (what a name resolves
 * to) judge alike.
 *
 * IPv4 is parsed the way URL parsers (WHATWG, and so fetch) read a host: 1 to 4 parts,
 * each decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes; so
 * 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 are all 127.0.0.1. IPv6 is public only in
 * 2000::/3 (global unicast), which leaves out loopback, unspecified, IPv4-mapped and
 * -compatible forms, NAT64, link-local, unique-local and multicast; inside it the
 * documentation, IETF-special (Teredo, …) and 6to4 prefixes are refused too, since 6to4
 * and Teredo carry an IPv4 address that may be a private one.
 */

/** The 32-bit value of an IPv4 host in any notation a URL parser accepts, or null when it is not one. */
export function parseIPv4(host: string): number | null {
  const parts = host.split('.');
  if (parts.length > 1 && parts.at(-1) === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = ipv4Number(part);
    if (n === null) return null;
    numbers.push(n);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return null;
  return numbers.reduce((acc, n, i) => acc + n * 256 ** (3 - i), 0) + last;
}

function ipv4Number(part: string): number | null {
  if (/^0[xX][0-9a-fA-F]*$/.test(part)) return part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return Number.parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number(part);
  return null;
}

/** The 16 bytes of an IPv6 address (brackets allowed, zone id refused), or null when it is not one. */
export function parseIPv6(text: string): Uint8Array | null {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!host.includes(':') || host.includes('%')) return null;
  const halves = host.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const pieces = s.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(piece) ? parseIPv4(piece) : null;
        if (v4 === null || piece.split('.').some((p) => Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) out.push(Number.parseInt(piece, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const tail = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

const v4 = (a: number, b: number, c: number, d: number) => ((a * 256 + b) * 256 + c) * 256 + d;

/** Non-public IPv4 ranges (RFC 6890 special-purpose, RFC 6598 CGNAT, multicast, reserved). */
const IPV4_NOT_PUBLIC: [number, number][] = [
  [v4(0, 0, 0, 0), 8],
  [v4(10, 0, 0, 0), 8],
  [v4(100, 64, 0, 0), 10],
  [v4(127, 0, 0, 0), 8],
  [v4(169, 254, 0, 0), 16],
  [v4(172, 16, 0, 0), 12],
  [v4(192, 0, 0, 0), 24],
  [v4(192, 0, 2, 0), 24],
  [v4(192, 88, 99, 0), 24],
  [v4(192, 168, 0, 0), 16],
  [v4(198, 18, 0, 0), 15],
  [v4(198, 51, 100, 0), 24],
  [v4(203, 0, 113, 0), 24],
  [v4(224, 0, 0, 0), 4],
  [v4(240, 0, 0, 0), 4],
];

const inV4 = (addr: number, [base, bits]: [number, number]) => Math.floor(addr / 2 ** (32 - bits)) === Math.floor(base / 2 ** (32 - bits));

export function isPublicIPv4(addr: number): boolean {
  return !IPV4_NOT_PUBLIC.some((range) => inV4(addr, range));
}

function prefixMatches(bytes: Uint8Array, prefix: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const bit = (b: Uint8Array) => ((b[i >> 3] ?? 0) >> (7 - (i & 7))) & 1;
    if (bit(bytes) !== bit(prefix)) return false;
  }
  return true;
}

/** Refused inside 2000::/3: documentation (2001:db8::/32, 3fff::/20), IETF special purpose (2001::/23, Teredo among them), 6to4 (2002::/16). */
const IPV6_NOT_PUBLIC: [string, number][] = [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['3fff::', 20],
];

export function isPublicIPv6(bytes: Uint8Array): boolean {
  if (!prefixMatches(bytes, parseIPv6('2000::') as Uint8Array, 3)) return false;
  return !IPV6_NOT_PUBLIC.some(([p, bits]) => prefixMatches(bytes, parseIPv6(p) as Uint8Array, bits));
}

export type IpLiteral = { family: 4; value: number } | { family: 6; bytes: Uint8Array };

/** The host as an IP address, in whatever notation, or null for a name. */
export function ipLiteral(host: string): IpLiteral | null {
  const six = parseIPv6(host);
  if (six) return { family: 6, bytes: six };
  const four = parseIPv4(host);
  return four === null ? null : { family: 4, value: four };
}

export const isPublic = (ip: IpLiteral) => (ip.family === 4 ? isPublicIPv4(ip.value) : isPublicIPv6(ip.bytes));

/** A list of CIDR ranges (e.g. WEBHOOK_PRIVATE_TARGETS: "127.0.0.0/8,::1/128"); a bare address is its own /32 or /128. */
export type CidrList = { ip: IpLiteral; bits: number }[];

export function parseCidrs(text: string): CidrList | string {
  const out: CidrList = [];
  for (const entry of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [addr = '', bitsText] = entry.split('/', 2);
    const ip = ipLiteral(addr);
    const max = ip?.family === 6 ? 128 : 32;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (!ip || !Number.isInteger(bits) || bits < 0 || bits > max) return `not an address or CIDR range: ${entry}`;
    out.push({ ip, bits });
  }
  return out;
}

export function inCidrs(ip: IpLiteral, list: CidrList): boolean {
  return list.some((r) => {
    if (r.ip.family !== ip.family) return false;
    if (ip.family === 4 && r.ip.family === 4) return r.bits === 0 || inV4(ip.value, [r.ip.value, r.bits]);
    return ip.family === 6 && r.ip.family === 6 && prefixMatches(ip.bytes, r.ip.bytes, r.bits);
  });
}
