/**
 * What storage holds opens nothing by itself: a webhook's signing secret is kept
 * encrypted with a Worker secret (the edge needs it again to sign), a connect ticket only
 * as its hash, a site key only as its hash.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { withDb } from '../../../src/db/client';
import { sites, webhooks } from '../../../src/db/schema';
import { type Bindings, config } from '../../../src/env';
import { decryptSecret } from '../../../src/lib/secret-box';
import { FakeBridge, registerSite } from '../fake-bridge';
import { api, token, uniqueUser } from '../helpers';

const cfg = () => config(env as Bindings);

describe('secrets at rest', () => {
  it('keeps a webhook signing secret encrypted, readable only with the Worker secret', async () => {
    const res = await api<{ id: string; secret: string }>('POST', '/api/v1/webhooks', {
      token: await token(uniqueUser('at-rest')),
      body: { url: 'https://hooks.example.com/at-rest' },
    });
    expect(res.status).toBe(201);
    const { id, secret } = res.body!.data;
    const [row] = await withDb(cfg(), (db) => db.select().from(webhooks).where(eq(webhooks.id, id)));
    expect(row?.secret).toMatch(/^enc:v1:/);
    expect(row?.secret).not.toContain(secret.slice(6));
    expect(await decryptSecret(cfg(), row?.secret ?? '')).toBe(secret);
    // Another key cannot read it.
    await expect(
      decryptSecret(config({ ...(env as Bindings), ENCRYPTION_KEY: 'another-key-another-key-another-key!' }), row?.secret ?? ''),
    ).rejects.toThrow();
  });

  it('keeps a connect ticket only as its hash', async () => {
    const siteId = `at-rest-${crypto.randomUUID().slice(0, 8)}`;
    const bridge = await FakeBridge.connect(siteId, await registerSite(siteId));
    const user = uniqueUser('at-rest');
    const { seedDesktop } = await import('../builders');
    const d = await seedDesktop(siteId, user);
    await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId: 42000, ipAddress: '10.42.0.1', connectionId: '42' });
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    await vi.waitFor(async () => expect((await stub.get())?.status).toBe('RUNNING'));
    const issued = await stub.issueTicket();
    if (!issued.ok) throw new Error(issued.message);
    const secret = issued.value.ticket.split('.')[1] ?? '';
    const stored = await runInDurableObject(stub, (_o, state) =>
      state.storage.sql
        .exec<{ secret: string }>('SELECT secret FROM tickets')
        .toArray()
        .map((r) => r.secret),
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]).not.toBe(secret);
    expect(stored[0]).toMatch(/^[0-9a-f]{64}$/);
    // The ticket still opens the desktop once.
    expect((await stub.redeemTicket(secret)).ok).toBe(true);
    expect((await stub.redeemTicket(secret)).ok).toBe(false);
    expect((await stub.redeemTicket(stored[0] ?? '')).ok).toBe(false);
    await bridge.close();
  });

  it('keeps a site key only as its hash', async () => {
    const siteId = `at-rest-${crypto.randomUUID().slice(0, 8)}`;
    const key = await registerSite(siteId);
    const [row] = await withDb(cfg(), (db) => db.select().from(sites).where(eq(sites.id, siteId)));
    expect(row?.keyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row?.keyHash).not.toContain(key);
  });
});
