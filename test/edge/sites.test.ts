/**
 * On-prem sites: a bridge logs in against the key hash the site's hub keeps (so it does
 * while Postgres is down), rotating the key hangs up on a bridge that still uses the old
 * one, and a removed site opens to no key.
 */
import { createExecutionContext, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { sites } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import worker from '../../workers/index';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token } from './helpers';
import { bindingsWith } from './security/support';

const newSite = () => `sites-${crypto.randomUUID().slice(0, 8)}`;

/** The bridge upgrade through the Worker, with bindings of our choosing. */
async function dial(siteId: string, key: string, bindings: Bindings = env as Bindings): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://edge.test/api/v1/sites/${siteId}/bridge`, { headers: { upgrade: 'websocket', authorization: `Bearer ${key}` } }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

/** Waits until the socket is closed by the edge; answers the close code. */
function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.addEventListener('close', (ev) => resolve(ev.code)));
}

describe('site keys', () => {
  it('let a bridge log in while Postgres is unreachable', async () => {
    const siteId = newSite();
    const key = await registerSite(siteId);
    const down = bindingsWith({ DATABASE_URL: 'postgres://nobody:nothing@127.0.0.1:9/none', DB_WS_PROXY: '127.0.0.1:9/v1' });
    const res = await dial(siteId, key, down);
    expect(res.status).toBe(101);
    res.webSocket?.accept();
    res.webSocket?.close(1000, 'test done');
    // And a wrong key is still refused.
    expect((await dial(siteId, 'sk_not-the-key', down)).status).toBe(401);
  });

  it('hang up on a bridge connected with the old key when the key is rotated; only the new key logs in', async () => {
    const siteId = newSite();
    const oldKey = await registerSite(siteId);
    const bridge = await FakeBridge.connect(siteId, oldKey);
    const hungUp = closed(bridge.ws);
    const newKey = await registerSite(siteId);
    expect(await hungUp).toBe(4003);
    expect((await dial(siteId, oldKey)).status).toBe(401);
    const fresh = await FakeBridge.connect(siteId, newKey);
    await vi.waitFor(async () => expect((await (env as Bindings).SITE_HUB.getByName(siteId).status()).connected).toBe(true));
    await fresh.close();
  });

  it('can be removed: the bridge is hung up on, no key opens the site, and it is no longer listed', async () => {
    const admin = await token('root', { roles: ['admin'] });
    const siteId = newSite();
    const key = await registerSite(siteId);
    const bridge = await FakeBridge.connect(siteId, key);
    const hungUp = closed(bridge.ws);
    const removed = await api('DELETE', `/api/v1/admin/sites/${siteId}`, { token: admin });
    expect(removed.status).toBe(200);
    expect(await hungUp).toBe(4004);
    expect((await dial(siteId, key)).status).toBe(401);
    const sites = await api<{ id: string }[]>('GET', '/api/v1/admin/sites', { token: admin });
    expect(sites.body?.data.map((s) => s.id)).not.toContain(siteId);
    expect((await api('DELETE', `/api/v1/admin/sites/${siteId}`, { token: admin })).status).toBe(404);
  });
});

describe('a site hub', () => {
  it('knows its site from its name, before any bridge has connected', async () => {
    const siteId = newSite();
    const hub = (env as Bindings).SITE_HUB.getByName(siteId);
    expect((await hub.status()).siteId).toBe(siteId);
    expect(await hub.bookGpu('dk0000000000000001', 'rn1', 1)).toMatchObject({
      ok: false,
      message: expect.stringContaining(`Site '${siteId}' has reported no GPUs`),
    });
  });

  it('greets its bridge with its site, and records under it a bridge that went silent', async () => {
    const siteId = newSite();
    const bridge = await FakeBridge.connect(siteId, await registerSite(siteId));
    expect(bridge.received.find((f) => f.type === 'hello')).toMatchObject({ siteId });
    const hub = (env as Bindings).SITE_HUB.getByName(siteId);
    // No frame for an hour: the next alarm treats the link as dead.
    await runInDurableObject(hub, (_hub, state) => {
      for (const ws of state.getWebSockets()) ws.serializeAttachment({ ...ws.deserializeAttachment(), lastSeen: Date.now() - 3_600_000 });
    });
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    expect((await hub.status()).connected).toBe(false);
    const [row] = await withDb(config(env as Bindings), (db) => db.select().from(sites).where(eq(sites.id, siteId)));
    expect(row?.lastDisconnectedAt).not.toBeNull();
  });
});

describe('health', () => {
  it('tells strangers only whether the edge is up; admins see each site, its bridge version and queue depth', async () => {
    const siteId = newSite();
    const bridge = await FakeBridge.connect(siteId, await registerSite(siteId));
    const probe = await api<Record<string, unknown>>('GET', '/healthz');
    expect(probe.status).toBe(200);
    expect(probe.body?.data).toEqual({ status: 'ok' });
    expect(probe.text).not.toContain(siteId);
    expect(probe.text).not.toContain('fake');

    const admin = await token('root', { roles: ['admin'] });
    const detail = await api<{ sites: { id: string; bridge: string; bridgeVersion: string | null; commandsInFlight: number }[] }>(
      'GET',
      '/api/v1/admin/health',
      { token: admin },
    );
    expect(detail.body?.data.sites.find((s) => s.id === siteId)).toMatchObject({
      bridge: 'connected',
      bridgeVersion: 'fake',
      commandsInFlight: 0,
    });
    expect((await api('GET', '/api/v1/admin/health', { token: await token('someone') })).status).toBe(403);
    await bridge.close();
  });
});
