/**
 * Forged, stale and misdirected bearer tokens: every one is a 401 in the envelope. The
 * Worker runs with an HS256 secret and a JWKS (an identity provider's RS256 and ES256
 * keys, served to jose through a stubbed fetch), so algorithm confusion has a real
 * public key to abuse. Valid tokens of both kinds pass first, so a 401 below means the
 * attack was refused, not that the set-up is broken.
 */
import { type CryptoKey, type JWK, type JWTPayload, SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Bindings } from '../../../src/env';
import { TEST_JWT_SECRET } from '../../support/test-secrets';
import { AUDIENCE, ISSUER } from '../helpers';
import { bindingsWith, call, expectErrorEnvelope, expectSecurityHeaders } from './support';

const JWKS_URL = `https://idp.example.test/${crypto.randomUUID()}/jwks.json`;
const enc = new TextEncoder();
const LIST = '/api/v1/desktops';

let bindings: Bindings;
const idp: Record<'RS256' | 'ES256', { privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }> = {} as never;
const realFetch = globalThis.fetch;

beforeAll(async () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    idp[alg] = { privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid: `idp-${alg}`, alg, use: 'sig' } };
  }
  // The identity provider's JWKS endpoint, as jose fetches it from inside the Worker.
  vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === JWKS_URL) return Promise.resolve(Response.json({ keys: [idp.RS256.jwk, idp.ES256.jwk] }));
    return realFetch(input, init);
  });
  bindings = bindingsWith({ JWKS_URL });
});
afterAll(() => vi.restoreAllMocks());

const b64url = (x: string | Uint8Array) => {
  const bytes = typeof x === 'string' ? enc.encode(x) : x;
  return btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
};
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: JWTPayload = {}): JWTPayload => ({
  sub: 'alice',
  roles: [],
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now(),
  exp: now() + 600,
  ...extra,
});

/** A compact JWT with any header and payload, signed (or not) as the attacker likes. */
async function forge(header: Record<string, unknown>, payload: JWTPayload, sign: (input: string) => Promise<string> = async () => '') {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${await sign(input)}`;
}

async function hmac(secret: string | Uint8Array, input: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    typeof secret === 'string' ? enc.encode(secret) : secret,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return b64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(input))));
}

const rs256 = async (input: string) =>
  b64url(new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', idp.RS256.privateKey, enc.encode(input))));

const hs256 = (payload: JWTPayload, secret = TEST_JWT_SECRET, header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256', ...header }).sign(enc.encode(secret));

const fromIdp = (alg: 'RS256' | 'ES256', payload: JWTPayload, header: Record<string, unknown> = {}, key = idp[alg].privateKey) =>
  new SignJWT(payload).setProtectedHeader({ alg, kid: `idp-${alg}`, ...header }).sign(key);

describe('bearer tokens that verify', () => {
  it('accepts an HS256 token and RS256 / ES256 tokens from the JWKS (the controls)', async () => {
    // The last one is signed by hand, as the critical-header attack below is.
    const byHand = await forge({ alg: 'RS256', kid: 'idp-RS256' }, claims(), rs256);
    for (const tok of [await hs256(claims()), await fromIdp('RS256', claims()), await fromIdp('ES256', claims()), byHand]) {
      const res = await call('GET', LIST, { token: tok, env: bindings });
      expect(res.status, res.text).toBe(200);
    }
  });
});

const ATTACKS: [string, () => Promise<string>][] = [
  ['alg none, no signature', () => forge({ alg: 'none', typ: 'JWT' }, claims({ roles: ['admin'] }))],
  ['alg "None" (case variant), no signature', () => forge({ alg: 'None', typ: 'JWT' }, claims({ roles: ['admin'] }))],
  ['an HS256 token with its signature stripped', async () => `${(await hs256(claims())).split('.').slice(0, 2).join('.')}.`],
  [
    'HS256 signed with the JWKS RSA public key as JWK JSON (algorithm confusion)',
    () => forge({ alg: 'HS256', kid: 'idp-RS256' }, claims({ roles: ['admin'] }), (i) => hmac(JSON.stringify(idp.RS256.jwk), i)),
  ],
  [
    'HS256 signed with the JWKS RSA public key as PEM (algorithm confusion)',
    async () => {
      const pem = await exportSPKI(idp.RS256.publicKey);
      return forge({ alg: 'HS256', kid: 'idp-RS256' }, claims({ roles: ['admin'] }), (i) => hmac(pem, i));
    },
  ],
  [
    'HS256 signed with the JWKS EC public key as PEM (algorithm confusion)',
    async () => {
      const pem = await exportSPKI(idp.ES256.publicKey);
      return forge({ alg: 'HS256', kid: 'idp-ES256' }, claims({ roles: ['admin'] }), (i) => hmac(pem, i));
    },
  ],
  ['expired (exp a minute ago)', () => hs256(claims({ iat: now() - 3600, exp: now() - 60 }))],
  ['expired, from the JWKS', () => fromIdp('RS256', claims({ iat: now() - 3600, exp: now() - 60 }))],
  ['not yet valid (nbf in an hour)', () => hs256(claims({ nbf: now() + 3600 }))],
  ['wrong issuer', () => hs256(claims({ iss: 'https://evil.example' }))],
  ['wrong audience', () => hs256(claims({ aud: 'another-api' }))],
  ['no audience', () => hs256(claims({ aud: undefined }))],
  [
    'a tampered payload (HS256: sub and roles changed, signature kept)',
    async () => {
      const [h, , s] = (await hs256(claims())).split('.');
      return `${h}.${b64url(JSON.stringify(claims({ sub: 'mallory', roles: ['admin'] })))}.${s}`;
    },
  ],
  [
    'a tampered payload (RS256 from the JWKS, signature kept)',
    async () => {
      const [h, , s] = (await fromIdp('RS256', claims())).split('.');
      return `${h}.${b64url(JSON.stringify(claims({ roles: ['admin'] })))}.${s}`;
    },
  ],
  [
    'an unknown kid (RS256, a key the JWKS does not hold)',
    async () => fromIdp('RS256', claims(), { kid: 'rotated-away' }, (await generateKeyPair('RS256')).privateKey),
  ],
  ['a known kid, signed by another key', async () => fromIdp('ES256', claims(), {}, (await generateKeyPair('ES256')).privateKey)],
  [
    'a jku header pointing at the attacker’s own JWKS',
    async () => {
      const k = await generateKeyPair('RS256');
      return fromIdp('RS256', claims({ roles: ['admin'] }), { kid: 'evil', jku: 'https://evil.example/jwks.json' }, k.privateKey);
    },
  ],
  [
    'an embedded jwk header with the attacker’s key',
    async () => {
      const k = await generateKeyPair('ES256', { extractable: true });
      return fromIdp('ES256', claims({ roles: ['admin'] }), { kid: 'evil', jwk: await exportJWK(k.publicKey) }, k.privateKey);
    },
  ],
  [
    'an unknown critical header (validly signed by the JWKS key)',
    () => forge({ alg: 'RS256', kid: 'idp-RS256', crit: ['x-evil'], 'x-evil': true }, claims(), rs256),
  ],
  ['no exp claim', () => hs256(claims({ exp: undefined }))],
  // JWT_MAX_TTL_SECONDS (a day by default): a leaked long-lived token is not a standing key.
  ['a lifetime of 30 days', () => hs256(claims({ iat: now(), exp: now() + 30 * 86_400 }))],
  ['a lifetime of 30 days, from the JWKS', () => fromIdp('RS256', claims({ iat: now(), exp: now() + 30 * 86_400 }))],
  ['no iat and an exp a year away', () => hs256(claims({ iat: undefined, exp: now() + 365 * 86_400 }))],
  ['an iat in the future, to shorten the lifetime it shows', () => hs256(claims({ iat: now() + 29 * 86_400, exp: now() + 30 * 86_400 }))],
  ['no sub claim', () => hs256(claims({ sub: undefined }))],
  ['a sub with a space in it', () => hs256(claims({ sub: 'alice smith' }))],
  ['a sub over 255 characters', () => hs256(claims({ sub: 'a'.repeat(256) }))],
  [
    'another environment (staging issuer and staging secret)',
    () => hs256(claims({ iss: 'cdaas-staging' }), 'staging-only-secret-staging-only-secret-0123'),
  ],
  ['another environment’s secret with this issuer', () => hs256(claims(), 'staging-only-secret-staging-only-secret-0123')],
  ['a token that is not a JWT', async () => 'eyJhbGciOiJIUzI1NiJ9.not-base64!.x'],
];

describe('bearer tokens that must not verify', () => {
  afterAll(() => console.log(`JWT attacks refused: ${ATTACKS.length}`));

  it.each(ATTACKS)('refuses %s with 401', async (_name, make) => {
    const res = await call('GET', LIST, { token: await make(), env: bindings });
    expect(res.status, res.text).toBe(401);
    expect(res.body?.error?.code).toBe('UNAUTHORIZED');
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expectErrorEnvelope(res, 'jwt attack');
    expectSecurityHeaders(res, 'jwt attack');
  });

  it('counts its attacks', () => {
    expect(ATTACKS.length).toBe(30);
  });
});
