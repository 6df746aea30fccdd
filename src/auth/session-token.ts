/**
 * The dashboard's sealed cookies: the session (who is signed in) and the sign-in flow's
 * state (OIDC state, nonce, PKCE verifier); and the embed's desktop tokens (./desktop-token).
 * Each is a short-lived HS256 JWT whose key is
 * derived with HKDF from SESSION_SECRET (or JWT_SECRET) and a purpose label, so a session
 * never verifies as an API bearer token or as flow state, nor the other way round.
 *
 * Runtime-agnostic (jose + Web Crypto): the Worker uses it, and so do the benchmark and
 * the browser tests, which mint a session for a known secret.
 */
import { SignJWT, jwtVerify } from 'jose';
import { z } from 'zod';
import { UserIdSchema } from '../schemas/user-id';

export type SealPurpose = 'session' | 'oidc-flow' | 'desktop-token';

const ISSUER = 'cdaas-dashboard';
const keyCache = new Map<string, Promise<Uint8Array>>();

/** 32 bytes of HKDF-SHA256(secret, info = purpose): one key per purpose from one secret. */
export function purposeKey(secret: string, purpose: SealPurpose): Promise<Uint8Array> {
  const cacheKey = `${purpose}\u0000${secret}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), 'HKDF', false, ['deriveBits']);
      const bits = await crypto.subtle.deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode(`cdaas dashboard ${purpose} v1`) },
        base,
        256,
      );
      return new Uint8Array(bits);
    })();
    keyCache.set(cacheKey, key);
  }
  return key;
}

export async function seal(secret: string, purpose: SealPurpose, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: purpose })
    .setIssuer(ISSUER)
    .setAudience(purpose)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(await purposeKey(secret, purpose));
}

/** The claims, if the token is ours, for this purpose, unexpired and shaped like `schema`; otherwise null. */
export async function unseal<T extends z.ZodType>(
  secret: string,
  purpose: SealPurpose,
  token: string,
  schema: T,
): Promise<z.infer<T> | null> {
  try {
    const { payload } = await jwtVerify(token, await purposeKey(secret, purpose), {
      issuer: ISSUER,
      audience: purpose,
      algorithms: ['HS256'],
      typ: purpose,
    });
    const parsed = schema.safeParse(payload);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export const SessionSchema = z.object({
  sub: UserIdSchema,
  /** Only `admin` travels in a session: a person at a browser is never a service. */
  roles: z.array(z.literal('admin')).max(1),
  name: z.string().max(200).nullable(),
  /** The page sends it back in X-CSRF-Token with every API call. */
  csrf: z.string().min(20).max(100),
  /** Sign-in time (unix seconds): renewals never carry a session past SESSION_MAX_HOURS from it. */
  authTime: z.number().int(),
  method: z.enum(['oidc', 'dev']),
  iat: z.number().int(),
  exp: z.number().int(),
});
export type Session = z.infer<typeof SessionSchema>;
export type NewSession = Omit<Session, 'iat' | 'exp' | 'csrf' | 'authTime'> & Partial<Pick<Session, 'csrf' | 'authTime'>>;

export const randomToken = (bytes = 32) => {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
};

/** A session token for `s`: a fresh CSRF token and sign-in time unless it is a renewal that keeps them. */
export function sealSession(secret: string, s: NewSession, ttlSeconds: number): Promise<string> {
  const claims = {
    sub: s.sub,
    roles: s.roles,
    name: s.name,
    csrf: s.csrf ?? randomToken(),
    authTime: s.authTime ?? Math.floor(Date.now() / 1000),
    method: s.method,
  };
  return seal(secret, 'session', claims, ttlSeconds);
}

export const unsealSession = (secret: string, token: string) => unseal(secret, 'session', token, SessionSchema);

/**
 * Cookie names. Over https they carry the __Host- prefix (the browser then insists on
 * Secure, Path=/ and no Domain, so a sibling subdomain cannot plant one); plain http is
 * only ever served on a loopback address in development, where the prefix cannot be used.
 */
export function cookieNames(secure: boolean) {
  return secure ? { session: '__Host-cdaas_session', flow: '__Host-cdaas_signin' } : { session: 'cdaas_session', flow: 'cdaas_signin' };
}

export const CSRF_HEADER = 'X-CSRF-Token';
