/**
 * Bearer JWT verification with jose. Keys: an HS256 shared secret (JWT_SECRET) and/or
 * a JWKS URL for RS256 / ES256 / EdDSA. Each algorithm is only accepted with the key
 * type made for it, so an HS256 token "signed" with a JWKS public key (algorithm
 * confusion) or `alg: none` never verifies. iss and aud are always checked.
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../env';
import { ApiError } from '../errors';
import { isUserId, USER_ID_MAX } from '../schemas/user-id';

export type Role = 'admin' | 'service';

export interface Principal {
  /** The user id (JWT `sub`); for a service token, the service's own id. */
  sub: string;
  roles: ReadonlySet<Role>;
}

export const isAdmin = (p: Principal) => p.roles.has('admin');
export const isService = (p: Principal) => p.roles.has('service');

/** `role:sub`, as recorded in transitions. */
export function actorOf(p: Principal): string {
  return `${isAdmin(p) ? 'admin' : isService(p) ? 'service' : 'user'}:${p.sub}`;
}

const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
const secretCache = new Map<string, Uint8Array>();

function hmacKey(secret: string): Uint8Array {
  let key = secretCache.get(secret);
  if (!key) {
    key = new TextEncoder().encode(secret);
    secretCache.set(secret, key);
  }
  return key;
}

function jwks(url: string) {
  let set = jwksCache.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    jwksCache.set(url, set);
  }
  return set;
}

/**
 * Tokens already verified by this isolate, so a client polling with the same token pays
 * for the signature check once. Only the exact token string hits; its expiry and
 * not-before are still checked on every use. Bounded, oldest evicted first.
 */
const verified = new Map<string, { principal: Principal; exp: number; nbf: number; cfg: Config }>();
const VERIFIED_MAX = 5000;

function remember(token: string, principal: Principal, payload: JWTPayload, cfg: Config): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
  verified.set(token, { principal, exp: payload.exp ?? 0, nbf: payload.nbf ?? 0, cfg });
}

const unauthorized = (message: string) => new ApiError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': 'Bearer' });

export async function verifyBearer(authorization: string | undefined, cfg: Config): Promise<Principal> {
  if (!authorization) throw unauthorized('Missing bearer token: send Authorization: Bearer <JWT>');
  const match = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
  if (!match?.[1]) throw unauthorized('Malformed Authorization header: expected Bearer <JWT>');
  const token = match[1];
  const now = Math.floor(Date.now() / 1000);
  const hit = verified.get(token);
  // The same Config object means the same keys, issuer and audience as when it was verified.
  if (hit && hit.cfg === cfg && hit.exp > now && hit.nbf <= now) return hit.principal;

  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    throw unauthorized('Invalid token');
  }
  const symmetric = alg === 'HS256';
  const allowed = cfg.JWT_ALGORITHMS.filter((a) => (a === 'HS256' ? Boolean(cfg.JWT_SECRET) : Boolean(cfg.JWKS_URL)));
  if (!alg || !allowed.includes(alg as (typeof allowed)[number])) throw unauthorized('Invalid token: algorithm not accepted');

  let payload: JWTPayload;
  try {
    const options = { issuer: cfg.JWT_ISSUER, audience: cfg.JWT_AUDIENCE, algorithms: [alg], requiredClaims: ['sub', 'exp'] };
    payload =
      symmetric && cfg.JWT_SECRET
        ? (await jwtVerify(token, hmacKey(cfg.JWT_SECRET), options)).payload
        : (await jwtVerify(token, jwks(cfg.JWKS_URL ?? ''), options)).payload;
  } catch (err) {
    throw unauthorized(describeJoseError(err));
  }
  // A token must not outlive JWT_MAX_TTL_SECONDS: counted from its iat, or from now when it has
  // none (or claims one in the future to look shorter-lived).
  const issued = Math.min(payload.iat ?? now, now);
  if ((payload.exp ?? Number.POSITIVE_INFINITY) - issued > cfg.JWT_MAX_TTL_SECONDS) {
    throw unauthorized(`Invalid token: it lives longer than ${cfg.JWT_MAX_TTL_SECONDS} s (JWT_MAX_TTL_SECONDS)`);
  }
  const sub = payload.sub;
  if (!sub) throw unauthorized('Invalid token: sub claim missing');
  if (!isUserId(sub)) throw unauthorized(`Invalid token: sub must be printable ASCII without spaces, at most ${USER_ID_MAX} characters`);
  const claimed = Array.isArray(payload.roles) ? payload.roles : [];
  const roles = new Set<Role>(claimed.filter((r): r is Role => r === 'admin' || r === 'service'));
  const principal = { sub, roles };
  remember(token, principal, payload, cfg);
  return principal;
}

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'Token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'Token not yet valid';
    if (err.claim === 'iss' || err.claim === 'aud') return `Invalid token: wrong ${err.claim}`;
    return `Invalid token: ${err.claim} claim check failed`;
  }
  if (err instanceof errors.JWKSNoMatchingKey) return 'Invalid token: unknown signing key';
  return 'Invalid token';
}
