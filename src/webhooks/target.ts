/**
 * Where a webhook may be delivered. At registration the URL itself is judged: https (http
 * only with WEBHOOK_ALLOW_HTTP), no credentials, and a host that is not a private,
 * loopback, link-local, CGNAT, multicast or otherwise non-public address in any notation.
 * A name cannot be judged then (what it resolves to may change), so at each delivery it
 * is resolved with DNS over HTTPS (WEBHOOK_DNS_RESOLVER) and refused when any answer is
 * not public. Private targets are possible only for the ranges WEBHOOK_PRIVATE_TARGETS
 * names (local receivers in tests and development).
 *
 * Cloudflare's fetch resolves the name again and does not reach private networks of its
 * own; the resolution here is what refuses a name that points inward, and what tells the
 * subscriber why.
 */
import type { Config } from '../env';
import { type IpLiteral, inCidrs, ipLiteral, isPublic } from './addresses';

/** Why a delivery did not happen, as the subscriber is told (never the remote's own words or timing). */
export type DeliveryReason =
  | 'http_status'
  | 'redirect'
  | 'timeout'
  | 'connection_failed'
  | 'unresolvable'
  | 'resolver_unavailable'
  | 'private_address'
  | 'gave_up';

/** Hosts that name this machine whatever DNS says. */
const LOOPBACK_NAME = /(^|\.)localhost\.?$/i;

function allowed(ip: IpLiteral, cfg: Config): boolean {
  return isPublic(ip) || inCidrs(ip, cfg.WEBHOOK_PRIVATE_TARGETS);
}

/** The registration check: null when the URL may be subscribed, else what is wrong with it. */
export function refuseAtRegistration(url: URL, cfg: Config): string | null {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && cfg.WEBHOOK_ALLOW_HTTP)) return 'url must use https';
  if (url.username || url.password) return 'url must not carry credentials';
  const host = url.hostname;
  const literal = ipLiteral(host);
  const loopbackName = LOOPBACK_NAME.test(host);
  const refused = literal
    ? !allowed(literal, cfg)
    : loopbackName && !(allowed({ family: 4, value: 0x7f000001 }, cfg) || allowed(ipLiteral('::1') as IpLiteral, cfg));
  return refused ? 'url must point to a public address (not a private, loopback, link-local or other internal one)' : null;
}

export type TargetVerdict = { ok: true } | { ok: false; reason: DeliveryReason; final: boolean };

interface DohAnswer {
  Status?: number;
  Answer?: { type?: number; data?: string }[];
}

const DNS_TYPES = { A: 1, AAAA: 28 } as const;
const RESOLVE_TIMEOUT_MS = 5_000;

async function lookup(cfg: Config, name: string, type: keyof typeof DNS_TYPES): Promise<string[] | 'nxdomain'> {
  const query = new URL(cfg.WEBHOOK_DNS_RESOLVER);
  query.searchParams.set('name', name);
  query.searchParams.set('type', type);
  const res = await fetch(query, { headers: { accept: 'application/dns-json' }, signal: AbortSignal.timeout(RESOLVE_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`resolver answered ${res.status}`);
  const body = (await res.json()) as DohAnswer;
  if (body.Status === 3) return 'nxdomain';
  if (body.Status !== 0) throw new Error(`resolver status ${body.Status}`);
  return (body.Answer ?? []).filter((a) => a.type === DNS_TYPES[type] && typeof a.data === 'string').map((a) => a.data as string);
}

/**
 * The delivery check, just before the POST: the URL's host is judged again (the
 * configuration may have changed) and a name is resolved; any answer that is not public
 * refuses the delivery for good. A name without addresses may be fixed by its owner, and a
 * resolver that does not answer is ours to fix: both are retried.
 */
export async function checkAtDelivery(url: URL, cfg: Config): Promise<TargetVerdict> {
  if (refuseAtRegistration(url, cfg)) return { ok: false, reason: 'private_address', final: true };
  const host = url.hostname.replace(/\.$/, '');
  if (ipLiteral(url.hostname) || LOOPBACK_NAME.test(host)) return { ok: true };
  let answers: (string[] | 'nxdomain')[];
  try {
    answers = await Promise.all([lookup(cfg, host, 'A'), lookup(cfg, host, 'AAAA')]);
  } catch {
    return { ok: false, reason: 'resolver_unavailable', final: false };
  }
  const addresses = answers.flatMap((a) => (a === 'nxdomain' ? [] : a));
  if (addresses.length === 0) return { ok: false, reason: 'unresolvable', final: false };
  for (const a of addresses) {
    const ip = ipLiteral(a);
    if (!ip || !allowed(ip, cfg)) return { ok: false, reason: 'private_address', final: true };
  }
  return { ok: true };
}
