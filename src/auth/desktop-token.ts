/**
 * Desktop tokens: short-lived bearer tokens scoped to one desktop, for a browser that shows
 * it (the <cloud-desktop> element). An app's backend, holding its service token, mints one
 * with POST /api/v1/desktops/{id}/embed-token and hands only this to the page, so the
 * service token never reaches a browser.
 *
 * A desktop token opens four routes of its one desktop, as that desktop's owner, and
 * nothing else: its status, its live stream, /connect and /keepalive. It is an HS256 JWT
 * under a key derived with HKDF from SESSION_SECRET (or JWT_SECRET) for this purpose alone,
 * so it never verifies as an API bearer token or a dashboard session, nor the other way
 * round; its `typ` header says which verifier it is for. Its lifetime is at most an hour,
 * checked on every use, not only at minting.
 */
import { z } from 'zod';
import type { Config } from '../env';
import { ApiError } from '../errors';
import { DesktopIdSchema } from '../schemas/desktop';
import { UserIdSchema } from '../schemas/user-id';
import type { Principal } from './jwt';
import { seal, unseal } from './session-token';

export const DESKTOP_TOKEN_TYP = 'desktop-token';
export const DESKTOP_TOKEN_TTL = { defaultSeconds: 600, minSeconds: 60, maxSeconds: 3600 } as const;

/** What a desktop token may do, by route: `METHOD /api/v1/desktops/{id}/<suffix>`. */
export const DESKTOP_TOKEN_SCOPE = ['status', 'live', 'connect', 'keepalive'] as const;
const ALLOWED: Record<string, (typeof DESKTOP_TOKEN_SCOPE)[number]> = {
  'GET status': 'status',
  'GET live': 'live',
  'GET connect': 'connect',
  'POST keepalive': 'keepalive',
};

const ClaimsSchema = z
  .object({
    /** The desktop's owner: the token acts as them, on this desktop only. */
    sub: UserIdSchema,
    desktop: DesktopIdSchema,
    /** Who minted it (`role:sub`), for the audit trail. */
    by: z.string().min(1).max(300),
    iat: z.number().int(),
    exp: z.number().int(),
  })
  .refine((c) => c.exp - c.iat <= DESKTOP_TOKEN_TTL.maxSeconds, 'lifetime over the maximum');

export interface DesktopScope {
  desktopId: string;
  mintedBy: string;
}

/** A principal that came from a desktop token: the owner, limited to one desktop. */
export interface ScopedPrincipal extends Principal {
  desktopScope: DesktopScope;
}

export const desktopScopeOf = (p: Principal): DesktopScope | null => (p as Partial<ScopedPrincipal>).desktopScope ?? null;

/** Desktop tokens share the dashboard's sealing secret; with neither secret set, none can be minted. */
function sealingSecret(cfg: Config): string | null {
  return cfg.SESSION_SECRET ?? cfg.JWT_SECRET ?? null;
}

export async function mintDesktopToken(
  cfg: Config,
  desktop: { id: string; userId: string },
  mintedBy: string,
  ttlSeconds: number,
): Promise<{ token: string; expiresAt: string }> {
  const secret = sealingSecret(cfg);
  if (!secret) throw new ApiError('FORBIDDEN', 'Desktop tokens are not configured: set SESSION_SECRET');
  const token = await seal(secret, DESKTOP_TOKEN_TYP, { sub: desktop.userId, desktop: desktop.id, by: mintedBy }, ttlSeconds);
  return { token, expiresAt: new Date((Math.floor(Date.now() / 1000) + ttlSeconds) * 1000).toISOString() };
}

/** The token's `typ` header, read without verifying anything (it only picks the verifier). */
export function isDesktopToken(token: string): boolean {
  const head = token.split('.', 1)[0] ?? '';
  try {
    const header = JSON.parse(atob(head.replaceAll('-', '+').replaceAll('_', '/'))) as { typ?: unknown };
    return header.typ === DESKTOP_TOKEN_TYP;
  } catch {
    return false;
  }
}

const unauthorized = (message: string) => new ApiError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': 'Bearer' });

/**
 * The principal of a desktop token sent to `method path`, or a refusal: 401 when the
 * token does not verify, 403 when it is valid but this is not one of its desktop's four
 * routes.
 */
export async function principalOfDesktopToken(cfg: Config, token: string, method: string, path: string): Promise<ScopedPrincipal> {
  const secret = sealingSecret(cfg);
  const claims = secret ? await unseal(secret, DESKTOP_TOKEN_TYP, token, ClaimsSchema) : null;
  if (!claims) throw unauthorized('Invalid or expired desktop token');
  const m = /^\/api\/v1\/desktops\/([^/]+)\/([^/]+)\/?$/.exec(path);
  const allowed = m && m[1] === claims.desktop && ALLOWED[`${method} ${m[2]}`];
  if (!allowed) {
    throw new ApiError('FORBIDDEN', `A desktop token only opens the ${DESKTOP_TOKEN_SCOPE.join(', ')} routes of its own desktop`);
  }
  return { sub: claims.sub, roles: new Set(), desktopScope: { desktopId: claims.desktop, mintedBy: claims.by } };
}
