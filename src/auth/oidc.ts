/**
 * OpenID Connect sign-in for the dashboard: the authorisation-code flow with PKCE (S256)
 * against OIDC_ISSUER, its discovery document and keys, and the ID token checks of OIDC
 * Core 3.1.3.7 (issuer, audience, azp, expiry, nonce, signature by a key of the issuer's
 * JWKS with an asymmetric algorithm) done with jose. Claims become our principal: `sub`
 * is the user id, the roles claim (OIDC_ROLES_CLAIM) holding OIDC_ADMIN_ROLE makes an admin.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { Config } from '../env';
import { isUserId, USER_ID_MAX } from '../schemas/user-id';
import { randomToken } from './session-token';

export class OidcError extends Error {
  override name = 'OidcError';
}

const DiscoverySchema = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
});
export type Discovery = z.infer<typeof DiscoverySchema>;

const DISCOVERY_TTL_MS = 3_600_000;
const discoveries = new Map<string, { doc: Discovery; until: number }>();
const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** The issuer's discovery document (cached for an hour per isolate); its `issuer` must be exactly the configured one (Discovery 4.3). */
export async function discover(issuer: string): Promise<Discovery> {
  const hit = discoveries.get(issuer);
  if (hit && hit.until > Date.now()) return hit.doc;
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new OidcError(`The identity provider did not answer (${url}: ${String(err)})`);
  }
  if (!res.ok) throw new OidcError(`The identity provider's discovery document answered ${res.status} (${url})`);
  const parsed = DiscoverySchema.safeParse(await res.json().catch(() => null));
  if (!parsed.success) throw new OidcError(`The identity provider's discovery document is incomplete (${url})`);
  if (parsed.data.issuer !== issuer) {
    throw new OidcError(`The discovery document names issuer ${parsed.data.issuer}, not the configured ${issuer}`);
  }
  const methods = parsed.data.code_challenge_methods_supported;
  if (methods && !methods.includes('S256')) throw new OidcError('The identity provider does not support PKCE with S256');
  discoveries.set(issuer, { doc: parsed.data, until: Date.now() + DISCOVERY_TTL_MS });
  return parsed.data;
}

const b64url = (bytes: ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');

/** What the sign-in remembers between the redirect out and the callback (in a sealed cookie). */
export const FlowStateSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string(), next: z.string() });
export type FlowState = z.infer<typeof FlowStateSchema>;

/** The redirect to the issuer, and the state to keep for the callback. */
export async function beginSignIn(cfg: Config, redirectUri: string, next: string): Promise<{ url: string; flow: FlowState }> {
  const { issuer, clientId } = settings(cfg);
  const d = await discover(issuer);
  const flow: FlowState = { state: randomToken(), nonce: randomToken(), verifier: randomToken(48), next };
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(flow.verifier)));
  const url = new URL(d.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: cfg.OIDC_SCOPES,
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  return { url: url.toString(), flow };
}

function settings(cfg: Config): { issuer: string; clientId: string } {
  if (!cfg.OIDC_ISSUER || !cfg.OIDC_CLIENT_ID) throw new OidcError('Single sign-on is not configured (OIDC_ISSUER, OIDC_CLIENT_ID)');
  return { issuer: cfg.OIDC_ISSUER, clientId: cfg.OIDC_CLIENT_ID };
}

/** Algorithms an ID token may be signed with: asymmetric only, so only the issuer's own keys can sign one. */
const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const TokenResponseSchema = z.object({ id_token: z.string().min(1) });
const TokenErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

/**
 * The callback's half: checks `state` (and RFC 9207's `iss` when sent), redeems the code
 * with the PKCE verifier, verifies the ID token, and returns its claims.
 */
export async function finishSignIn(
  cfg: Config,
  redirectUri: string,
  flow: FlowState,
  query: { code?: string; state?: string; iss?: string },
): Promise<JWTPayload> {
  const { issuer, clientId } = settings(cfg);
  if (!query.state || query.state !== flow.state) throw new OidcError('The sign-in answer does not match the sign-in that was started');
  if (query.iss !== undefined && query.iss !== issuer) throw new OidcError('The sign-in answer came from another issuer');
  if (!query.code) throw new OidcError('The identity provider sent no authorisation code');
  const d = await discover(issuer);

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: query.code,
    redirect_uri: redirectUri,
    code_verifier: flow.verifier,
  });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (cfg.OIDC_CLIENT_SECRET) {
    // RFC 6749 2.3.1: each part form-encoded before the Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${btoa(`${enc(clientId)}:${enc(cfg.OIDC_CLIENT_SECRET)}`)}`;
  } else {
    body.set('client_id', clientId);
  }
  let res: Response;
  try {
    res = await fetch(d.token_endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new OidcError(`The identity provider's token endpoint did not answer (${String(err)})`);
  }
  const json: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const e = TokenErrorSchema.safeParse(json);
    throw new OidcError(
      e.success
        ? `The identity provider refused the code: ${e.data.error}${e.data.error_description ? ` (${e.data.error_description})` : ''}`
        : `The token endpoint answered ${res.status}`,
    );
  }
  const tokens = TokenResponseSchema.safeParse(json);
  if (!tokens.success) throw new OidcError('The identity provider sent no ID token');

  let keys = keySets.get(d.jwks_uri);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(d.jwks_uri), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    keySets.set(d.jwks_uri, keys);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(tokens.data.id_token, keys, {
      issuer,
      audience: clientId,
      algorithms: ID_TOKEN_ALGORITHMS,
      requiredClaims: ['sub', 'iat', 'exp'],
      clockTolerance: 30,
    }));
  } catch (err) {
    throw new OidcError(`The ID token did not verify (${err instanceof Error ? err.message : String(err)})`);
  }
  // Core 3.1.3.7 (4, 5): with several audiences, the token must have been issued to us.
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== clientId)
    throw new OidcError('The ID token was issued to another client');
  if (payload.nonce !== flow.nonce) throw new OidcError('The ID token does not belong to this sign-in (nonce)');
  return payload;
}

/** `sub`, admin or not (from the configured roles claim), and a display name. */
export function principalClaims(cfg: Config, claims: JWTPayload): { sub: string; admin: boolean; name: string | null } {
  const sub = claims.sub ?? '';
  if (!isUserId(sub))
    throw new OidcError(`Your account id cannot be used here (printable ASCII without spaces, at most ${USER_ID_MAX} characters)`);
  let value: unknown = claims;
  for (const part of cfg.OIDC_ROLES_CLAIM.split('.')) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  // A roles claim is a list, or (some providers) one space-separated string.
  const roles = Array.isArray(value)
    ? value.filter((r): r is string => typeof r === 'string')
    : typeof value === 'string'
      ? value.split(' ')
      : [];
  const name = [claims.name, claims.preferred_username, claims.email].find((v): v is string => typeof v === 'string' && v.length > 0);
  return { sub, admin: roles.includes(cfg.OIDC_ADMIN_ROLE), name: name ? name.slice(0, 200) : null };
}
