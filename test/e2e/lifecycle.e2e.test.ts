/**
 * End to end with the real processes: the edge under wrangler dev, the on-prem bridge,
 * the Proxmox and Guacamole simulators, and Postgres. A desktop goes through its whole
 * life and nothing is left behind in the simulators.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../scripts/lib/tokens';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { edgeClient } from './support/edge-client';
import { setTimeout as sleep } from 'node:timers/promises';

let stack: Stack;
/** An identity provider's JWKS endpoint, with one key of each asymmetric algorithm the edge accepts. */
let jwksServer: Server;
const signers: Record<'RS256' | 'ES256' | 'EdDSA', { privateKey: CryptoKey; jwk: JWK }> = {} as never;

beforeAll(async () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    signers[alg] = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: `kid-${alg}`, alg, use: 'sig' } };
  }
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: Object.values(signers).map((s) => s.jwk) }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
  stack = await startStack({ edgeVars: { JWKS_URL: jwksUrl } });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
  jwksServer?.close();
});

const PVE_AUTH = { authorization: 'PVEAPIToken=root@pam!dev=11111111-2222-3333-4444-555555555555' };

const call = edgeClient(() => stack.edgeUrl);

async function waitForStatus(tok: string, id: string, want: Desktop['status'], timeoutMs = 60_000): Promise<Desktop> {
  const deadline = Date.now() + timeoutMs;
  let last: Desktop | undefined;
  while (Date.now() < deadline) {
    last = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
    if (last.status === want) return last;
    if (last.status === 'FAILED' && want !== 'FAILED') throw new Error(`desktop FAILED: ${last.errorMessage}`);
    await sleep(100);
  }
  throw new Error(`desktop ${id} still ${last?.status} after ${timeoutMs} ms (wanted ${want})`);
}

async function pve<T>(path: string): Promise<T> {
  const res = await fetch(`${stack.proxmoxUrl}${path}`, { headers: PVE_AUTH });
  return ((await res.json()) as { data: T }).data;
}

async function guacAdminToken(): Promise<string> {
  const res = await fetch(`${stack.guacamoleUrl}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=guacadmin&password=guacadmin',
  });
  return ((await res.json()) as { authToken: string }).authToken;
}

async function guacConnections(token: string): Promise<{ identifier: string; name: string }[]> {
  const res = await fetch(`${stack.guacamoleUrl}/api/session/data/postgresql/connections`, { headers: { 'Guacamole-Token': token } });
  return Object.values((await res.json()) as Record<string, { identifier: string; name: string }>);
}

const vmsNamed = async (name: string) => (await pve<{ name?: string; vmid: number }[]>('/nodes/pve1/qemu')).filter((v) => v.name === name);

describe('desktop lifecycle, end to end', () => {
  it('creates a PREMIUM desktop, connects, stops, starts and deletes it, leaving nothing behind', async () => {
    const user = 'e2e-alice';
    const tok = await stack.token(user);
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { name: 'E2E desktop', plan: 'PREMIUM' });
    expect(created.status).toBe(202);
    expect(['PENDING', 'PROVISIONING']).toContain(created.body.data.status);
    const id = created.body.data.id;

    const running = await waitForStatus(tok, id, 'RUNNING');
    expect(running.vmId).toEqual(expect.any(Number));
    expect(running.ipAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const events = (await call<TransitionRecord[]>('GET', `/api/v1/desktops/${id}/events`, tok)).body.data;
    expect(events.map((e) => e.to)).toEqual(['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);

    // The VM in Proxmox has the plan's resources and carries the desktop id.
    const vm = await pve<{ cores: number; memory: string; name: string }>(`/nodes/${running.node}/qemu/${running.vmId}/config`);
    expect(vm).toMatchObject({ cores: 8, memory: '8192', name: `desk-${id}` });

    // The connect URL opens exactly this desktop's connection in the Guacamole web client.
    const connect = await call<{ url: string; expiresAt: string }>('GET', `/api/v1/desktops/${id}/connect`, tok);
    expect(connect.status).toBe(200);
    // What the link's page does in a browser: POST the ticket from the fragment, open the answer.
    const link = new URL(connect.body.data.url);
    const ticket = decodeURIComponent(link.hash.slice(1));
    const redeem = () =>
      fetch(`${stack.edgeUrl}${link.pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ticket }),
      });
    const hop = await redeem();
    expect(hop.status).toBe(200);
    const location = new URL(((await hop.json()) as { data: { url: string } }).data.url);
    expect(location.origin + location.pathname).toBe(`${stack.guacamoleUrl}/`);
    const m = /^#\/client\/([A-Za-z0-9_-]+)\?token=([0-9A-F]{64})$/.exec(location.hash);
    expect(m).not.toBeNull();
    const [identifier, type, dataSource] = Buffer.from(m![1]!, 'base64url').toString('utf8').split('\0');
    expect([identifier, type, dataSource]).toEqual([running.connectionId, 'c', 'postgresql']);
    const seen = await guacConnections(m![2]!);
    expect(seen.map((c) => [c.identifier, c.name])).toEqual([[running.connectionId, `desk-${id}`]]);
    // The link works once.
    expect((await redeem()).status).toBe(404);

    expect((await call('POST', `/api/v1/desktops/${id}/stop`, tok)).status).toBe(202);
    await waitForStatus(tok, id, 'STOPPED');
    expect((await pve<{ status: string }>(`/nodes/${running.node}/qemu/${running.vmId}/status/current`)).status).toBe('stopped');

    expect((await call('POST', `/api/v1/desktops/${id}/start`, tok)).status).toBe(202);
    await waitForStatus(tok, id, 'RUNNING');

    const del = await call<Desktop>('DELETE', `/api/v1/desktops/${id}`, tok);
    expect(del.status).toBe(202);
    await waitForStatus(tok, id, 'DELETED');
    expect(await vmsNamed(`desk-${id}`)).toEqual([]);
    expect((await guacConnections(await guacAdminToken())).filter((c) => c.name === `desk-${id}`)).toEqual([]);
  });

  it('holds commands while the bridge is offline and converges once it is back', async () => {
    await stack.bridge.stop();
    await stack.waitForBridge(false);
    const tok = await stack.token('e2e-bob');
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { plan: 'BASIC' });
    expect(created.status).toBe(202);
    const id = created.body.data.id;
    expect((await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data.status).toBe('PENDING');
    await stack.startBridge();
    await stack.waitForBridge(true);
    await waitForStatus(tok, id, 'RUNNING');
    expect(await vmsNamed(`desk-${id}`)).toHaveLength(1);
  });

  it('accepts RS256, ES256 and EdDSA tokens from the JWKS, and refuses a JWKS key used as an HS256 secret', async () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const tok = await new SignJWT({ roles: [] })
        .setProtectedHeader({ alg, kid: `kid-${alg}` })
        .setSubject(`jwks-${alg}`)
        .setIssuer(LOCAL_ISSUER)
        .setAudience(LOCAL_AUDIENCE)
        .setExpirationTime('5m')
        .sign(signers[alg].privateKey);
      const res = await call<{ items: Desktop[] }>('GET', '/api/v1/desktops', tok);
      expect(res.status, alg).toBe(200);
    }
    const confused = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: 'kid-RS256' })
      .setSubject('mallory')
      .setIssuer(LOCAL_ISSUER)
      .setAudience(LOCAL_AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(signers.RS256.jwk)));
    expect((await call('GET', '/api/v1/desktops', confused)).status).toBe(401);
    const unknownKid = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'not-in-the-set' })
      .setSubject('eve')
      .setIssuer(LOCAL_ISSUER)
      .setAudience(LOCAL_AUDIENCE)
      .setExpirationTime('5m')
      .sign((await generateKeyPair('ES256')).privateKey);
    expect((await call('GET', '/api/v1/desktops', unknownKid)).status).toBe(401);
  });

  it('gives 50 concurrent creates on one Proxmox node 50 distinct VMIDs, all RUNNING', async () => {
    const ids = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const created = await call<Desktop>('POST', '/api/v1/desktops', await stack.token(`e2e-many-${i}`), { plan: 'BASIC' });
        expect(created.status).toBe(202);
        return { id: created.body.data.id, tok: await stack.token(`e2e-many-${i}`) };
      }),
    );
    const running = await Promise.all(ids.map(({ id, tok }) => waitForStatus(tok, id, 'RUNNING', 120_000)));
    const vmids = running.map((d) => d.vmId);
    expect(new Set(vmids).size).toBe(50);
    for (const d of running) expect(await vmsNamed(`desk-${d.id}`)).toEqual([expect.objectContaining({ vmid: d.vmId })]);
  }, 180_000);

  it('reports the site as connected to admins, and only up or not on the public /healthz', async () => {
    const admin = await stack.token('health-admin', ['admin']);
    const res = await fetch(`${stack.edgeUrl}/api/v1/admin/health`, { headers: { authorization: `Bearer ${admin}` } });
    const body = (await res.json()) as { data: { sites: { id: string; bridge: string }[] } };
    expect(body.data.sites.find((s) => s.id === stack.siteId)?.bridge).toBe('connected');
    const probe = await fetch(`${stack.edgeUrl}/healthz`);
    expect(((await probe.json()) as { data: unknown }).data).toEqual({ status: 'ok' });
  });
});
