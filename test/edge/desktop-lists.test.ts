/**
 * Desktop lists read your own writes: a user's or a service's list (every filter) shows a
 * desktop in the status GET /{id}/status shows, at once, even while the desktop's Postgres
 * copy lags behind; an admin's fleet-wide list says that it may lag.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, settled, token, uniqueUser } from './helpers';

interface Page {
  items: Desktop[];
  total: number;
  consistency: 'current' | 'eventual';
  asOf: string;
}

let bridge: FakeBridge;
beforeAll(async () => {
  bridge = await FakeBridge.connect('local', await registerSite('local'));
});
afterAll(async () => {
  await bridge.close();
});

const list = async (tok: string, query = '') => {
  const res = await api<Page>('GET', `/api/v1/desktops${query}`, { token: tok });
  expect(res.status).toBe(200);
  return res.body!.data;
};
const ids = (page: Page) => page.items.map((d) => d.id);

/** Holds the desktop's write-through to Postgres for an hour: what a slow or unreachable database looks like. */
async function holdPostgresCopy(id: string): Promise<void> {
  await runInDurableObject(env.DESKTOP_SESSION.getByName(id), (_o, state) => {
    state.storage.sql.exec(`UPDATE meta SET value = json_set(value, '$.notBefore', ?) WHERE key = 'sync'`, Date.now() + 3_600_000);
  });
}

async function statusOf(tok: string, id: string): Promise<Desktop['status']> {
  return (await api<{ status: Desktop['status'] }>('GET', `/api/v1/desktops/${id}/status`, { token: tok })).body!.data.status;
}

async function runningDesktop(creatorToken: string, body: Record<string, unknown>, vmId: number): Promise<Desktop> {
  const created = await api<Desktop>('POST', '/api/v1/desktops', { token: creatorToken, body: { plan: 'STANDARD', ...body } });
  expect(created.status).toBe(202);
  const d = created.body!.data;
  await settled(d.id);
  await holdPostgresCopy(d.id);
  await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId, ipAddress: '10.20.0.7', connectionId: String(vmId) });
  // The client polls its status, as an integration would, until it is RUNNING...
  for (let i = 0; (await statusOf(creatorToken, d.id)) !== 'RUNNING'; i++) {
    if (i > 500) throw new Error('never RUNNING');
    await scheduler.wait(10);
  }
  return d;
}

describe('a user’s list', () => {
  it('finds a desktop RUNNING with ?status=RUNNING as soon as /status shows it, while Postgres still has it PENDING', async () => {
    const user = uniqueUser();
    const tok = await token(user);
    const d = await runningDesktop(tok, { name: 'Fresh' }, 31001);

    const running = await list(tok, '?status=RUNNING');
    expect(ids(running)).toEqual([d.id]);
    expect(running.items[0]).toMatchObject({ status: 'RUNNING', ipAddress: '10.20.0.7' });
    expect(running).toMatchObject({ total: 1, consistency: 'current' });
    expect(ids(await list(tok, '?status=PENDING'))).toEqual([]);
    expect(ids(await list(tok, '?plan=STANDARD&status=RUNNING&page=1&pageSize=5'))).toEqual([d.id]);
    expect(ids(await list(tok, '?plan=BASIC'))).toEqual([]);
    expect(ids(await list(tok))).toEqual([d.id]);

    // The fleet-wide list reads the Postgres copy, which still says PENDING, and says it may lag.
    const fleet = await list(await token('root', { roles: ['admin'] }), '?status=PENDING&pageSize=100');
    expect(fleet.consistency).toBe('eventual');
    expect(Date.parse(fleet.asOf)).not.toBeNaN();
    expect(ids(fleet)).toContain(d.id);
    // An admin's list of one user is that user's current list.
    const forUser = await list(await token('root', { roles: ['admin'] }), `?userId=${user}&status=RUNNING`);
    expect([ids(forUser), forUser.consistency]).toEqual([[d.id], 'current']);
  });

  it('shows STOPPING as the stop answers it, then STOPPED, then DELETED only when asked for', async () => {
    const user = uniqueUser();
    const tok = await token(user);
    const d = await runningDesktop(tok, {}, 31002);

    const stopping = await api<Desktop>('POST', `/api/v1/desktops/${d.id}/stop`, { token: tok });
    expect(stopping.body?.data.status).toBe('STOPPING');
    expect(ids(await list(tok, '?status=STOPPING'))).toEqual([d.id]);
    expect(ids(await list(tok, '?status=RUNNING'))).toEqual([]);

    const stop = await bridge.command(d.id, 'stop');
    bridge.complete(stop);
    while ((await statusOf(tok, d.id)) !== 'STOPPED') await scheduler.wait(10);
    expect(ids(await list(tok, '?status=STOPPED'))).toEqual([d.id]);

    expect((await api('DELETE', `/api/v1/desktops/${d.id}`, { token: tok })).status).toBe(202);
    bridge.complete(await bridge.command(d.id, 'delete'));
    while ((await statusOf(tok, d.id)) !== 'DELETED') await scheduler.wait(10);
    expect(ids(await list(tok))).toEqual([]);
    expect(ids(await list(tok, '?status=DELETED'))).toEqual([d.id]);
    expect((await api<Desktop[]>('GET', `/api/v1/desktops/user/${user}`, { token: tok })).body?.data).toEqual([]);
  });

  it('still lists desktops made before its index existed (taken once from Postgres)', async () => {
    const user = uniqueUser();
    const tok = await token(user);
    const created = await api<Desktop>('POST', '/api/v1/desktops', { token: tok, body: { plan: 'BASIC' } });
    const id = created.body!.data.id;
    await settled(id);
    await runInDurableObject(env.DESKTOP_INDEX.getByName(`user:${user}`), (_o, state) => {
      state.storage.sql.exec('DELETE FROM desktops');
      state.storage.sql.exec(`DELETE FROM meta WHERE key = 'seeded'`);
    });
    expect(ids(await list(tok))).toEqual([id]);
  });
});

describe('a service’s list', () => {
  it('shows the desktops it created, current, for all its users or one, and nobody else’s', async () => {
    const sub = uniqueUser('svc');
    const service = await token(sub, { roles: ['service'] });
    // A service acts for the users of its namespace: by default, ids starting with `<its sub>:`.
    const [alice, bob] = [`${sub}:alice`, `${sub}:bob`];
    const a = await runningDesktop(service, { userId: alice }, 31003);
    const b = (await api<Desktop>('POST', '/api/v1/desktops', { token: service, body: { userId: bob, plan: 'BASIC' } })).body!.data;

    expect(ids(await list(service, '?status=RUNNING'))).toEqual([a.id]);
    expect(ids(await list(service))).toEqual([b.id, a.id]);
    expect(ids(await list(service, `?userId=${bob}`))).toEqual([b.id]);
    expect((await list(service)).consistency).toBe('current');
    expect(ids(await list(await token(uniqueUser('svc'), { roles: ['service'] })))).toEqual([]);
    // Alice sees the desktop a service made for her in her own list, RUNNING.
    expect(ids(await list(await token(alice), '?status=RUNNING'))).toEqual([a.id]);
  });
});
