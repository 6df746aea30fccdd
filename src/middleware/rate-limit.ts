/**
 * Rate limits with the Workers rate-limiting binding (wrangler.toml [[ratelimits]]): per
 * client IP before anything else runs, per principal once the token is verified. A
 * refusal is the PRD envelope with 429 RATE_LIMITED and Retry-After.
 *
 * Which budget a request spends:
 *  - GET /healthz: RATE_LIMIT_HEALTH per IP, apart from the API, so probes are never
 *    starved by API traffic from the same address (and API clients cannot starve them).
 *  - the bridge upgrade (/api/v1/sites/{siteId}/bridge): RATE_LIMIT_BRIDGE per IP, before
 *    the site key is looked up. Apart from the API, so a site's office traffic does not
 *    starve its bridge; per address and not per site, so failing keys from elsewhere cannot
 *    lock a bridge out and made-up site ids from one address cannot multiply the lookups.
 *  - redeeming a share link (POST /api/v1/share): RATE_LIMIT_SHARE per IP; each attempt costs
 *    a bridge request, and nobody without an account has a token to be limited by.
 *  - everything else: RATE_LIMIT_IP per IP; then, behind requireAuth, RATE_LIMIT_TOKEN
 *    per user (JWT sub) or RATE_LIMIT_SERVICE per service.
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { isService } from '../auth/jwt';
import { ApiError } from '../errors';

const BRIDGE_PATH = /^\/api\/v1\/sites\/[^/]*\/bridge$/;

/**
 * The client's address as Cloudflare reports it; IPv6 reduced to its /64, which one
 * client usually holds whole (per-address keys would let it rotate through 2^64 of them).
 * Null when there is no client (a service binding, the test runtime): Cloudflare always
 * sets the header on requests from the internet.
 */
export function clientKey(raw: string | undefined): string | null {
  const ip = raw?.trim().toLowerCase().replace(/%.*$/, '');
  if (!ip) return null;
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped?.[1]) return mapped[1];
  const [head = '', tail] = ip.split('::', 2);
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // A dotted IPv4 tail stands for two groups.
  const width = (gs: string[]) => gs.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - width(left) - width(right))).fill('0'), ...right];
  const prefix = groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, ''));
  return `${prefix.join(':')}::/64`;
}

async function spend(c: Context<AppEnv>, limiter: RateLimit, key: string, what: string): Promise<void> {
  let allowed: boolean;
  try {
    allowed = (await limiter.limit({ key })).success;
  } catch (err) {
    // The limiter is a guard, not a dependency: if it fails, serve rather than refuse everyone.
    console.error(
      JSON.stringify({ msg: 'rate limiter failed; request let through', requestId: c.var.requestId, what, error: String(err) }),
    );
    return;
  }
  if (allowed) return;
  const period = c.var.cfg.RATE_LIMIT_PERIOD_SECONDS;
  throw new ApiError('RATE_LIMITED', `Too many requests ${what}; retry in ${period} s`, undefined, { 'Retry-After': String(period) });
}

function exempt(c: Context<AppEnv>, raw: string | undefined): boolean {
  return raw !== undefined && c.var.cfg.RATE_LIMIT_EXEMPT_IPS.has(raw.trim());
}

/** Per client IP, for every request; picks the budget by path (see the header). */
export const rateLimitByClient = createMiddleware<AppEnv>(async (c, next) => {
  const raw = c.req.header('cf-connecting-ip');
  const ip = clientKey(raw);
  if (ip && !exempt(c, raw)) {
    const path = c.req.path;
    if (path === '/healthz') await spend(c, c.env.RATE_LIMIT_HEALTH, ip, 'to /healthz from this address');
    else if (path.startsWith('/api/v1/sites/') && BRIDGE_PATH.test(path))
      await spend(c, c.env.RATE_LIMIT_BRIDGE, ip, 'to the bridge endpoint from this address');
    else if (path === '/api/v1/share' && c.req.method === 'POST')
      await spend(c, c.env.RATE_LIMIT_SHARE, ip, 'redeeming share links from this address');
    else await spend(c, c.env.RATE_LIMIT_IP, ip, 'from this address');
  }
  await next();
});

/** Per principal (the verified JWT's sub); goes behind requireAuth. */
export const rateLimitByPrincipal = createMiddleware<AppEnv>(async (c, next) => {
  const raw = c.req.header('cf-connecting-ip');
  if (!exempt(c, raw)) {
    const p = c.var.principal;
    if (isService(p)) await spend(c, c.env.RATE_LIMIT_SERVICE, p.sub, 'for this service token');
    else await spend(c, c.env.RATE_LIMIT_TOKEN, p.sub, 'for this user');
  }
  await next();
});
