/**
 * Desktop tokens (POST /api/v1/desktops/{id}/embed-token): who may mint one, what it opens
 * (its own desktop's status, live stream, connect and keepalive, as the owner) and that it
 * opens nothing else: every other endpoint of the route table refuses it, so a route added
 * later is covered without a new row. Then forged, stale and misdirected desktop tokens,
 * each a 401 in the envelope, as in jwt-attacks.test.ts.
 */
import { env } from 'cloudflare:workers';
import { type JWTPayload, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { purposeKey } from '../../../src/auth/session-token';
import type { Bindings } from '../../../src/env';
import type { Desktop } from '../../../src/schemas/desktop';
import { TEST_JWT_SECRET } from '../../support/test-secrets';
import { FakeBridge, registerSite } from '../fake-bridge';
import { token, uniqueUser } from '../helpers';
import { call, expectErrorEnvelope, expectSecurityHeaders, routeTable } from './support';

const SITE = 'embed-token-site';
let bridge: FakeBridge;

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});

interface Minted {
  token: string;
  expiresAt: string;
  desktopId: string;
  scope: string[];
}

async function mint(desktopId: string, as: string, body?: unknown) {
  return call<Minted>('POST', `/api/v1/desktops/${desktopId}/embed-token`, { token: as, json: body });
}

async function mintedFor(desktop: Desktop): Promise<string> {
  const res = await mint(desktop.id, await token(desktop.userId));
  expect(res.status, res.text).toBe(200);
  return res.body!.data.token;
}

/** The four routes a desktop token opens, for desktop `id`. */
const scoped = (id: string) =>
  [
    ['GET', `/api/v1/desktops/${id}/status`],
    ['GET', `/api/v1/desktops/${id}/live`],
    ['GET', `/api/v1/desktops/${id}/connect`],
    ['POST', `/api/v1/desktops/${id}/keepalive`],
  ] as const;

const now = () => Math.floor(Date.now() / 1000);
const secret = () => (env as Bindings).SESSION_SECRET ?? TEST_JWT_SECRET;

describe('minting a desktop token', () => {
  it('answers the owner a token for ten minutes by default, up to an hour on request, and nothing longer', async () => {
    const owner = uniqueUser('owner');
    const d = await bridge.runningDesktop(owner);
    const ownerToken = await token(owner);

    const res = await mint(d.id, ownerToken);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body!.data).toMatchObject({ desktopId: d.id, scope: ['status', 'live', 'connect', 'keepalive'] });
    expect(Date.parse(res.body!.data.expiresAt) - Date.now()).toBeGreaterThan(590_000);
    expect(Date.parse(res.body!.data.expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);

    const hour = await mint(d.id, ownerToken, { ttlSeconds: 3600 });
    expect(Date.parse(hour.body!.data.expiresAt) - Date.now()).toBeGreaterThan(3590_000);
    for (const ttlSeconds of [3601, 59, 600.5, '600']) {
      const bad = await mint(d.id, ownerToken, { ttlSeconds });
      expect(bad.status, `ttlSeconds ${ttlSeconds}`).toBe(400);
      expectErrorEnvelope(bad, `ttlSeconds ${ttlSeconds}`);
    }
  });

  it('lets the service that created a desktop mint for it, acting as the desktop’s owner', async () => {
    const service = `svc-${crypto.randomUUID().slice(0, 8)}`;
    // A user of the service's namespace (README "Services are tenants").
    const owner = `${service}:${uniqueUser('viewer')}`;
    const d = await bridge.runningDesktop(owner, { createdBy: `service:${service}` });
    const res = await mint(d.id, await token(service, { roles: ['service'] }));
    expect(res.status, res.text).toBe(200);
    const status = await call<{ status: string }>('GET', `/api/v1/desktops/${d.id}/status`, { token: res.body!.data.token });
    expect(status.status, status.text).toBe(200);
    // Another service, or a user who is not the owner, cannot tell the desktop exists.
    expect((await mint(d.id, await token('svc-other', { roles: ['service'] }))).status).toBe(404);
    expect((await mint(d.id, await token(uniqueUser('stranger')))).status).toBe(404);
  });

  it('is refused to a desktop token: a token cannot mint its own successor', async () => {
    const d = await bridge.runningDesktop(uniqueUser('owner'));
    const res = await mint(d.id, await mintedFor(d));
    expect(res.status).toBe(403);
    expect(res.body?.error?.code).toBe('FORBIDDEN');
  });
});

describe('what a desktop token opens', () => {
  it('reads the status, follows the live stream, connects and keeps its own desktop alive', async () => {
    const d = await bridge.runningDesktop(uniqueUser('owner'));
    const t = await mintedFor(d);

    const status = await call<{ status: string }>('GET', `/api/v1/desktops/${d.id}/status`, { token: t });
    expect(status.status, status.text).toBe(200);
    expect(status.body!.data.status).toBe('RUNNING');

    const live = await call('GET', `/api/v1/desktops/${d.id}/live`, { token: t, headers: { accept: 'text/event-stream' } });
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toMatch(/^text\/event-stream/);

    const connect = await call<{ connectionUrl: string }>('GET', `/api/v1/desktops/${d.id}/connect`, { token: t });
    expect(connect.status, connect.text).toBe(200);
    // The ticket rides in the fragment (src/routes/connect.ts).
    expect(connect.body!.data.connectionUrl).toMatch(new RegExp(`/api/v1/connect#${d.id}\\.`));

    const kept = await call<Desktop>('POST', `/api/v1/desktops/${d.id}/keepalive`, { token: t, json: { reason: 'watching' } });
    expect(kept.status, kept.text).toBe(200);
    expect(kept.body!.data).toMatchObject({ lastActivitySource: 'keepalive', lastActivityReason: 'watching' });
  });

  it('is refused by every other endpoint of the route table, and changes nothing there', async () => {
    const owner = uniqueUser('owner');
    const d = await bridge.runningDesktop(owner);
    const t = await mintedFor(d);
    // These answer the same with or without a token: they are public, or take another credential.
    const tokenless = new Set([
      'GET /healthz',
      'GET /api/v1/openapi.json',
      'GET /api/v1/plans',
      'GET /api/v1/connect',
      'POST /api/v1/connect',
      // A guest's share link: no account, the link's token is the credential.
      'GET /api/v1/share',
      'POST /api/v1/share',
      'GET /api/v1/sites/{siteId}/bridge',
    ]);
    const allowed = new Set(scoped('{id}').map(([m, p]) => `${m} ${p}`));
    const { keys } = await routeTable();
    const refusedAt: string[] = [];
    for (const key of keys) {
      if (tokenless.has(key) || allowed.has(key)) continue;
      const [method, template] = key.split(' ') as [string, string];
      const path = template.replaceAll('{id}', d.id).replaceAll('{userId}', owner).replaceAll('{siteId}', SITE);
      const res = await call(method, path, { token: t, json: method === 'GET' || method === 'DELETE' ? undefined : {} });
      expect(res.status, `${key}: ${res.text.slice(0, 200)}`).toBe(403);
      expect(res.body?.error?.code, key).toBe('FORBIDDEN');
      expectErrorEnvelope(res, key);
      expectSecurityHeaders(res, key);
      refusedAt.push(key);
    }
    // Stop, start, delete and the rest were all tried, and the desktop is as it was.
    expect(refusedAt).toEqual(expect.arrayContaining(['POST /api/v1/desktops/{id}/stop', 'DELETE /api/v1/desktops/{id}']));
    expect(refusedAt.length).toBeGreaterThanOrEqual(keys.length - tokenless.size - 4);
    expect((await (env as Bindings).DESKTOP_SESSION.getByName(d.id).get())?.status).toBe('RUNNING');
  });

  it('opens none of the four routes of another desktop, even one of the same owner', async () => {
    const owner = uniqueUser('owner');
    const [a, b] = [await bridge.runningDesktop(owner), await bridge.runningDesktop(owner)];
    const t = await mintedFor(a!);
    for (const [method, path] of scoped(b!.id)) {
      const res = await call(method, path, { token: t });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });
});

/** A desktop token as the edge mints it, or altered as an attacker would. */
async function desktopToken(
  claims: JWTPayload,
  opts: { key?: Uint8Array; typ?: string; iss?: string; aud?: string; alg?: string } = {},
): Promise<string> {
  const key = opts.key ?? (await purposeKey(secret(), 'desktop-token'));
  return new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: opts.typ ?? 'desktop-token' })
    .setIssuer(opts.iss ?? 'cdaas-dashboard')
    .setAudience(opts.aud ?? 'desktop-token')
    .sign(key);
}

const b64url = (s: string) => btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

describe('forged, stale and misdirected desktop tokens', () => {
  let desktop: Desktop;
  let other: Desktop;
  let genuine: string;
  const valid = (extra: JWTPayload = {}): JWTPayload => ({
    sub: desktop.userId,
    desktop: desktop.id,
    by: `user:${desktop.userId}`,
    iat: now(),
    exp: now() + 600,
    ...extra,
  });

  beforeAll(async () => {
    const owner = uniqueUser('owner');
    desktop = await bridge.runningDesktop(owner);
    other = await bridge.runningDesktop(uniqueUser('victim'));
    genuine = await mintedFor(desktop);
  });

  const ATTACKS: [string, () => Promise<string>][] = [
    [
      'the genuine token with its payload pointed at another desktop (signature kept)',
      async () => {
        const [h, , sig] = genuine.split('.');
        const payload = b64url(JSON.stringify(valid({ sub: other.userId, desktop: other.id })));
        return `${h}.${payload}.${sig}`;
      },
    ],
    [
      'signed with the API’s JWT_SECRET instead of the desktop-token key',
      () => desktopToken(valid(), { key: new TextEncoder().encode(TEST_JWT_SECRET) }),
    ],
    ['signed with the dashboard session key', async () => desktopToken(valid(), { key: await purposeKey(secret(), 'session') })],
    ['alg none', async () => `${b64url(JSON.stringify({ alg: 'none', typ: 'desktop-token' }))}.${b64url(JSON.stringify(valid()))}.`],
    ['expired', () => desktopToken(valid({ iat: now() - 1200, exp: now() - 60 }))],
    ['a lifetime over an hour, though correctly signed', () => desktopToken(valid({ exp: now() + 7200 }))],
    ['no expiry', () => desktopToken(valid({ exp: undefined }))],
    ['no desktop claim', () => desktopToken(valid({ desktop: undefined }))],
    ['wrong audience (a dashboard session’s)', () => desktopToken(valid(), { aud: 'session' })],
    ['wrong issuer', () => desktopToken(valid(), { iss: 'cdaas-local' })],
    ['a session-typed token sent as a bearer token', () => desktopToken(valid(), { typ: 'session', aud: 'session', key: undefined })],
  ];

  it('accepts the genuine token (the control)', async () => {
    for (const [method, path] of scoped(desktop.id)) {
      const res = await call(method, path, { token: genuine, headers: { accept: 'text/event-stream' } });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(200);
    }
  });

  it.each(ATTACKS)('refuses %s with a 401', async (label, make) => {
    const forged = await make();
    for (const id of [desktop.id, other.id]) {
      const res = await call('GET', `/api/v1/desktops/${id}/status`, { token: forged });
      expect(res.status, `${label} on ${id}: ${res.text}`).toBe(401);
      expectErrorEnvelope(res, label);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
  });
});
