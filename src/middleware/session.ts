/**
 * The dashboard's session cookie on the Hono side: reading, writing, renewing and
 * clearing it, the check that lets it stand in for a bearer token on API calls from the
 * page (with CSRF protection), and the middleware that gives dashboard pages `c.var.session`.
 *
 * The cookie is HttpOnly, SameSite=Lax, Secure over https (with the __Host- prefix), and
 * plain http is accepted only on a loopback address (development). SameSite alone is not
 * the CSRF defence: every cookie-authenticated API call must also carry the session's own
 * token in X-CSRF-Token, which another site can neither read nor send without a CORS
 * preflight this API never grants; WebSocket handshakes cannot carry headers, so for those
 * the browser-set Origin must be this origin.
 */
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import type { Principal } from '../auth/jwt';
import { CSRF_HEADER, type NewSession, type Session, cookieNames, sealSession, unsealSession } from '../auth/session-token';
import type { Config } from '../env';
import { ApiError } from '../errors';

export type DashboardEnv = { Bindings: AppEnv['Bindings']; Variables: AppEnv['Variables'] & { session: Session | null } };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
export const isLoopback = (url: URL) => LOOPBACK.has(url.hostname);

/** Whether this request may carry a session at all (https, or http on loopback), and whether its cookies are Secure. */
export function transport(c: Context): { secure: boolean; allowed: boolean } {
  const url = new URL(c.req.url);
  const secure = url.protocol === 'https:';
  return { secure, allowed: secure || isLoopback(url) };
}

/** Sessions are signed with SESSION_SECRET, or a key derived from JWT_SECRET; with neither, nobody can sign in. */
export const sessionSecret = (cfg: Config): string | null => cfg.SESSION_SECRET ?? cfg.JWT_SECRET ?? null;

const now = () => Math.floor(Date.now() / 1000);

/** Seconds the next session token may live: the idle lifetime, cut at SESSION_MAX_HOURS after sign-in. */
function lifetime(cfg: Config, authTime: number): number {
  return Math.min(cfg.SESSION_TTL_MINUTES * 60, authTime + cfg.SESSION_MAX_HOURS * 3600 - now());
}

export async function startSession(c: Context, cfg: Config, s: NewSession): Promise<void> {
  const secret = sessionSecret(cfg);
  if (!secret) throw new ApiError('FORBIDDEN', 'Sign-in is not configured: set SESSION_SECRET');
  const ttl = lifetime(cfg, s.authTime ?? now());
  if (ttl <= 0) return endSession(c);
  const { secure } = transport(c);
  setCookie(c, cookieNames(secure).session, await sealSession(secret, s, ttl), {
    httpOnly: true,
    secure,
    sameSite: 'Lax',
    path: '/',
    maxAge: ttl,
  });
}

export function endSession(c: Context): void {
  const { secure } = transport(c);
  deleteCookie(c, cookieNames(secure).session, { path: '/', secure, httpOnly: true, sameSite: 'Lax' });
}

/** The request's session: absent (no cookie), or the cookie's claims, or 'invalid' (forged, expired, wrong transport). */
export async function readSession(c: Context, cfg: Config): Promise<Session | 'invalid' | null> {
  const { secure, allowed } = transport(c);
  const token = getCookie(c, cookieNames(secure).session);
  if (token === undefined) return null;
  const secret = sessionSecret(cfg);
  if (!allowed || !secret) return 'invalid';
  return (await unsealSession(secret, token)) ?? 'invalid';
}

/** Past half its lifetime, a session in use gets a fresh cookie (same CSRF token and sign-in time). */
export async function renewIfDue(c: Context, cfg: Config, s: Session): Promise<void> {
  const half = (cfg.SESSION_TTL_MINUTES * 60) / 2;
  if (s.exp - now() > half) return;
  await startSession(c, cfg, s);
}

/** Constant-time string comparison (a CSRF token must not leak through timing). */
function same(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Refuses a cookie-authenticated request that did not come from the dashboard's own pages. */
export function checkCsrf(c: Context, s: Session): void {
  if (c.req.header('upgrade')?.toLowerCase() === 'websocket') {
    if (c.req.header('origin') !== new URL(c.req.url).origin) {
      throw new ApiError('FORBIDDEN', 'WebSocket from another origin refused (dashboard session)');
    }
    return;
  }
  const sent = c.req.header(CSRF_HEADER);
  if (!sent || !same(sent, s.csrf)) {
    throw new ApiError('FORBIDDEN', `Missing or wrong ${CSRF_HEADER} header: a dashboard session must send the page's token`);
  }
}

export const principalOf = (s: Session): Principal => ({ sub: s.sub, roles: new Set(s.roles) });

/**
 * For API routes: the principal of a valid, CSRF-checked dashboard session, or null when
 * the request has no session cookie at all (the caller then asks for a bearer token).
 */
export async function sessionFromCookie(c: Context<AppEnv>): Promise<Session | null> {
  const s = await readSession(c, c.var.cfg);
  if (s === null) return null;
  if (s === 'invalid') throw new ApiError('UNAUTHORIZED', 'Your dashboard session has ended; sign in again');
  checkCsrf(c, s);
  return s;
}

/** For dashboard pages: `c.var.session` (null when signed out; a stale cookie is cleared), renewed when due. */
export const loadSession = createMiddleware<DashboardEnv>(async (c, next) => {
  const cfg = c.var.cfg;
  const s = await readSession(c, cfg);
  if (s === 'invalid') endSession(c);
  const session = s === 'invalid' ? null : s;
  c.set('session', session);
  await next();
  // Only reads renew: a POST may be the sign-out that just cleared the cookie, or a sign-in that set a new one.
  if (session && c.req.method === 'GET' && c.res.status < 400) await renewIfDue(c, cfg, session);
});
