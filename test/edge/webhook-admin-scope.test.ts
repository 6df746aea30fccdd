/**
 * An admin's all-desktops subscription lasts only while its owner keeps showing the admin
 * role: using the API without it (demoted) ends the scope at once, and a scope not renewed
 * by admin use for WEBHOOK_ADMIN_DAYS lapses.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { subscribersFor } from '../../src/db/queries';
import { webhooks } from '../../src/db/schema';
import { randomId } from '../../src/lib/ids';
import { type Bindings, config } from '../../src/env';
import { api, token, uniqueUser } from './helpers';

const cfg = () => config(env as Bindings);
const someonesDesktop = () => ({ userId: uniqueUser('anyone'), createdBy: 'user:anyone' });
const delivered = async (id: string) => (await withDb(cfg(), (db) => subscribersFor(db, someonesDesktop()))).some((s) => s.id === id);

async function subscribeAsAdmin(sub: string): Promise<{ id: string; adminUntil: string | null }> {
  const res = await api<{ id: string; adminUntil: string | null }>('POST', '/api/v1/webhooks', {
    token: await token(sub, { roles: ['admin'] }),
    body: { url: `https://hooks.example.com/${sub}` },
  });
  expect(res.status).toBe(201);
  return res.body!.data;
}

describe('an admin’s all-desktops webhook', () => {
  it('receives every desktop’s events while its owner is an admin, and stops at once when the owner shows up without the role', async () => {
    const sub = uniqueUser('admin-demoted');
    const hook = await subscribeAsAdmin(sub);
    expect(Date.parse(hook.adminUntil ?? '') - Date.now()).toBeGreaterThan((cfg().WEBHOOK_ADMIN_DAYS - 0.01) * 86_400_000);
    expect(await delivered(hook.id)).toBe(true);
    // Demoted: the same person, now with a plain user token.
    expect((await api('GET', '/api/v1/webhooks', { token: await token(sub) })).status).toBe(200);
    await vi.waitFor(async () => expect(await delivered(hook.id)).toBe(false), { timeout: 10_000, interval: 100 });
  }, 20_000);

  it('lapses when not renewed by admin use, and is renewed by it', async () => {
    // A subscription whose owner has not used the API as an admin for WEBHOOK_ADMIN_DAYS.
    const sub = uniqueUser('admin-away');
    const id = randomId('wh');
    const now = new Date().toISOString();
    await withDb(cfg(), (db) =>
      db.insert(webhooks).values({
        id,
        ownerRole: 'admin',
        ownerSub: sub,
        url: `https://hooks.example.com/${sub}`,
        eventTypes: JSON.stringify(['desktop.running']),
        secret: 'whsec_not-used-here',
        createdAt: now,
        adminUntil: new Date(Date.now() - 60_000).toISOString(),
      }),
    );
    expect(await delivered(id)).toBe(false);
    // The owner uses the API as an admin again.
    expect((await api('GET', '/api/v1/admin/users', { token: await token(sub, { roles: ['admin'] }) })).status).toBe(200);
    await vi.waitFor(async () => expect(await delivered(id)).toBe(true), { timeout: 10_000, interval: 100 });
  }, 20_000);
});
