/** Who may call what: bearer JWT verification and desktop ownership. */
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import { AUDIENCE, ISSUER, api, token, uniqueUser } from './helpers';

const LIST = '/api/v1/desktops';

function b64url(obj: unknown): string {
  return btoa(JSON.stringify(obj)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

describe('bearer tokens', () => {
  it('answers 401 in the envelope without a token', async () => {
    const res = await api('GET', LIST);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ success: false, error: { code: 'UNAUTHORIZED' } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  const cases: [string, () => Promise<string>, RegExp][] = [
    ['an expired token', () => token('alice', { exp: Math.floor(Date.now() / 1000) - 60 }), /expired/],
    ['a token for another audience', () => token('alice', { aud: 'other-api' }), /wrong aud/],
    ['a token from another issuer', () => token('alice', { iss: 'evil' }), /wrong iss/],
    [
      'a token signed with another secret',
      () => token('alice', { secret: 'another-secret-another-secret-another-secret!' }),
      /Invalid token/,
    ],
    [
      'an unsigned token (alg none)',
      async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: 9999999999 })}.`,
      /Invalid token/,
    ],
    [
      'a tampered payload',
      async () => {
        const [h, , s] = (await token('alice')).split('.');
        return `${h}.${b64url({ sub: 'mallory', roles: ['admin'], iss: ISSUER, aud: AUDIENCE, exp: 9999999999 })}.${s}`;
      },
      /Invalid token/,
    ],
    [
      'an RS256 token when no JWKS is configured',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT({})
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setSubject('alice')
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('1h')
          .sign(privateKey);
      },
      /algorithm not accepted/,
    ],
    ['garbage', async () => 'not-a-jwt', /Invalid token/],
  ];
  for (const [name, make, message] of cases) {
    it(`refuses ${name} with 401`, async () => {
      const res = await api('GET', LIST, { token: await make() });
      expect(res.status).toBe(401);
      expect(res.body?.message).toMatch(message);
    });
  }

  it('does not treat a JWKS public key as an HS256 secret (algorithm confusion)', async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = JSON.stringify(await exportJWK(publicKey));
    const forged = await token('alice', { roles: ['admin'], secret: jwk });
    expect((await api('GET', LIST, { token: forged })).status).toBe(401);
  });
});

describe('ownership', () => {
  async function create(tok: string, body: Record<string, unknown> = {}) {
    return api<Desktop>('POST', LIST, { token: tok, body: { name: 'Mine', plan: 'BASIC', ...body } });
  }

  it("answers 404 for another user's desktop, as if it did not exist", async () => {
    const owner = uniqueUser();
    const d = (await create(await token(owner))).body!.data;
    const stranger = await token(uniqueUser());
    for (const [method, path] of [
      ['GET', `/api/v1/desktops/${d.id}`],
      ['GET', `/api/v1/desktops/${d.id}/status`],
      ['GET', `/api/v1/desktops/${d.id}/events`],
      ['GET', `/api/v1/desktops/${d.id}/connect`],
      ['POST', `/api/v1/desktops/${d.id}/start`],
      ['POST', `/api/v1/desktops/${d.id}/stop`],
      ['DELETE', `/api/v1/desktops/${d.id}`],
    ] as const) {
      const res = await api(method, path, { token: stranger });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body?.error?.code).toBe('NOT_FOUND');
    }
    const list = await api<{ items: Desktop[] }>('GET', LIST, { token: stranger });
    expect(list.body?.data.items).toEqual([]);
    expect((await api('GET', `/api/v1/desktops/user/${owner}`, { token: stranger })).status).toBe(403);
    expect((await api('GET', `${LIST}?userId=${owner}`, { token: stranger })).status).toBe(403);
  });

  it('takes the subjects identity providers issue (Auth0 style) as user ids, everywhere', async () => {
    const owner = `auth0|${crypto.randomUUID()}`;
    const tok = await token(owner);
    const d = (await create(tok)).body!.data;
    expect(d.userId).toBe(owner);
    const mine = await api<Desktop[]>('GET', `/api/v1/desktops/user/${encodeURIComponent(owner)}`, { token: tok });
    expect(mine.status).toBe(200);
    expect(mine.body?.data.map((x) => x.id)).toEqual([d.id]);
    const admin = await token(uniqueUser('admin'), { roles: ['admin'] });
    const quota = await api<{ userId: string; active: number }>('GET', `/api/v1/admin/users/${encodeURIComponent(owner)}/quota`, {
      token: admin,
    });
    expect(quota.body?.data).toMatchObject({ userId: owner, active: 1 });
    expect((await api('DELETE', `/api/v1/desktops/${d.id}`, { token: tok })).status).toBe(202);
  });

  it('lets an admin see and act on any desktop', async () => {
    const owner = uniqueUser();
    const d = (await create(await token(owner))).body!.data;
    const admin = await token(uniqueUser('admin'), { roles: ['admin'] });
    expect((await api('GET', `/api/v1/desktops/${d.id}`, { token: admin })).status).toBe(200);
    // The paginated list reads Postgres, which the create reaches a moment after its 202.
    await vi.waitFor(async () => {
      const byUser = await api<{ items: Desktop[] }>('GET', `${LIST}?userId=${owner}`, { token: admin });
      expect(byUser.body?.data.items.map((x) => x.id)).toEqual([d.id]);
    });
    expect((await api('DELETE', `/api/v1/desktops/${d.id}`, { token: admin })).status).toBe(202);
  });

  it('lets a service create for the user it names and act on what it created', async () => {
    const service = await token('streaming-app', { roles: ['service'] });
    // A user of the service's namespace (`streaming-app:…`; see test/edge/tenancy.test.ts).
    const user = `streaming-app:${uniqueUser('streamer')}`;
    const res = await create(service, { userId: user, plan: 'PREMIUM' });
    expect(res.status).toBe(202);
    expect(res.body?.data).toMatchObject({ userId: user, createdBy: 'service:streaming-app', cpuCores: 8 });
    expect((await api('GET', `/api/v1/desktops/${res.body!.data.id}/status`, { token: service })).status).toBe(200);
    const mine = await api<Desktop[]>('GET', `/api/v1/desktops/user/${user}`, { token: service });
    expect(mine.body?.data.map((x) => x.id)).toEqual([res.body!.data.id]);
    // The user owns it too.
    expect((await api('GET', `/api/v1/desktops/${res.body!.data.id}`, { token: await token(user) })).status).toBe(200);
    // Another service does not see it.
    const other = await token('other-app', { roles: ['service'] });
    expect((await api('GET', `/api/v1/desktops/${res.body!.data.id}`, { token: other })).status).toBe(404);
  });

  it('requires a service to name the user, and a user to create only for themselves', async () => {
    const service = await token('streaming-app', { roles: ['service'] });
    const missing = await create(service);
    expect(missing.status).toBe(400);
    expect(missing.body?.message).toMatch(/userId is required/);
    const forOther = await create(await token(uniqueUser()), { userId: 'someone-else' });
    expect(forOther.status).toBe(403);
  });

  it('keeps admin endpoints for admins', async () => {
    const res = await api('PUT', '/api/v1/admin/users/bob/quota', { token: await token(uniqueUser()), body: { maxDesktops: 5 } });
    expect(res.status).toBe(403);
    expect(res.body?.error?.code).toBe('FORBIDDEN');
  });
});
