/**
 * Services are tenants: a service acts only for the user ids of its namespace, has a quota
 * of its own, sees only its own users' desktops and usage, and its users' desktops carry
 * its tenant to the bridge (which keys their homes by it).
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { withDb } from '../../src/db/client';
import { desktops, usageIntervals } from '../../src/db/schema';
import { desktopToRow, subscribersFor } from '../../src/db/queries';
import { type Bindings, config } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import type { Desktop } from '../../src/schemas/desktop';
import { desktopFor } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { token, uniqueUser } from './helpers';
import { bindingsWith, call } from './security/support';

const newService = () => `svc-${crypto.randomUUID().slice(0, 8)}`;
const create = async (tok: string, userId: string, bindings?: Bindings) =>
  call<Desktop>('POST', '/api/v1/desktops', { token: tok, json: { userId, plan: 'BASIC' }, env: bindings });

describe('service namespaces', () => {
  it('let a service create desktops only for the user ids of its namespace (default: `<service>:`)', async () => {
    const sub = newService();
    const svc = await token(sub, { roles: ['service'] });
    const outsider = uniqueUser('alice');
    const refused = await create(svc, outsider);
    expect(refused.status).toBe(403);
    expect(refused.body?.message).toBe(`Service ${sub} may only create desktops for user ids starting with '${sub}:'`);
    // Another service's users are not its users either.
    expect((await create(svc, `${newService()}:bob`)).status).toBe(403);
    expect((await create(svc, `${sub}:`)).status).toBe(403);
    const made = await create(svc, `${sub}:bob`);
    expect(made.status).toBe(202);
    expect(made.body?.data).toMatchObject({ userId: `${sub}:bob`, createdBy: `service:${sub}` });
  });

  it('follow SERVICE_NAMESPACES: a prefix of the service’s choosing, or an allow-list', async () => {
    const [a, b] = [newService(), newService()];
    const bindings = bindingsWith({
      SERVICE_NAMESPACES: JSON.stringify({ [a]: { prefix: 'tenant-a/' }, [b]: { users: ['kiosk-1', 'kiosk-2'] } }),
    });
    const [ta, tb] = [await token(a, { roles: ['service'] }), await token(b, { roles: ['service'] })];
    expect((await create(ta, `tenant-a/${uniqueUser()}`, bindings)).status).toBe(202);
    expect((await create(ta, `${a}:${uniqueUser()}`, bindings)).status).toBe(403);
    expect((await create(tb, 'kiosk-3', bindings)).status).toBe(403);
    const kiosk = await create(tb, 'kiosk-1', bindings);
    expect(kiosk.status, kiosk.text).toBe(202);
  });

  it('give a service a quota of its own, across its users', async () => {
    const sub = newService();
    const svc = await token(sub, { roles: ['service'] });
    const bindings = bindingsWith({ SERVICE_NAMESPACES: JSON.stringify({ [sub]: { maxDesktops: 2 } }) });
    expect((await create(svc, `${sub}:u1`, bindings)).status).toBe(202);
    expect((await create(svc, `${sub}:u2`, bindings)).status).toBe(202);
    const over = await create(svc, `${sub}:u3`, bindings);
    expect(over.status).toBe(409);
    expect(over.body?.error?.code).toBe('QUOTA_EXCEEDED');
    expect(over.body?.message).toMatch(new RegExp(`^Quota exceeded: service ${sub} may have at most 2 active desktops`));
    // The refused create took no slot of its user.
    expect((await env.USER_ACCOUNT.getByName(`${sub}:u3`).quota()).active).toBe(0);
  });

  it('sends the tenant with every command, so the bridge keys the user’s home by it', async () => {
    const bridge = await FakeBridge.connect('local', await registerSite('local'));
    try {
      const sub = newService();
      const made = await create(await token(sub, { roles: ['service'] }), `${sub}:carol`);
      expect(made.status).toBe(202);
      const viaService = await bridge.command(made.body?.data.id ?? '', 'create');
      expect(viaService.spec).toMatchObject({ userId: `${sub}:carol`, tenant: `service:${sub}` });
      // The same user id on its own is another tenant (and another home).
      const own = await create(await token(`${sub}:erin`), `${sub}:erin`);
      expect((await bridge.command(own.body?.data.id ?? '', 'create')).spec).toMatchObject({ userId: `${sub}:erin`, tenant: 'users' });
    } finally {
      await bridge.close();
    }
  });

  it('let a service read only the usage of the desktops it created for its own users', async () => {
    const sub = newService();
    const svc = await token(sub, { roles: ['service'] });
    const user = `${sub}:dave`;
    const cfg = config(env as Bindings);
    const rows = [
      desktopFor('tenancy-site', user, { createdBy: `service:${sub}` }),
      desktopFor('tenancy-site', user, { createdBy: `user:${user}` }),
      desktopFor('tenancy-site', 'someone-else', { createdBy: `service:${newService()}` }),
    ];
    const started = new Date(Date.now() - 3_600_000).toISOString();
    await withDb(cfg, async (db) => {
      await db.insert(desktops).values(rows.map((d) => desktopToRow(d, 1)));
      await db.insert(usageIntervals).values(
        rows.map((d) => ({
          id: randomId('u'),
          desktopId: d.id,
          userId: d.userId,
          plan: 'BASIC',
          startedAt: started,
          stoppedAt: new Date().toISOString(),
        })),
      );
    });
    const mine = await call<{ intervals: { desktopId: string }[] }>('GET', `/api/v1/usage?userId=${encodeURIComponent(user)}`, {
      token: svc,
    });
    expect(mine.status).toBe(200);
    expect(mine.body?.data.intervals.map((i) => i.desktopId)).toEqual([rows[0]?.id]);
    const all = await call<{ intervals: { desktopId: string }[] }>('GET', '/api/v1/usage', { token: svc });
    expect(all.body?.data.intervals.map((i) => i.desktopId)).toEqual([rows[0]?.id]);
    expect((await call('GET', '/api/v1/usage?userId=someone-else', { token: svc })).status).toBe(403);
  });
});

describe('service subjects with colons', () => {
  it('send a service’s desktop events to that service’s subscriptions, not to a service whose sub is a prefix of it', async () => {
    const base = newService();
    const sub = `${base}:stream`;
    const cfg = config(env as Bindings);
    const subscribe = async (as: string) => {
      const res = await call<{ id: string }>('POST', '/api/v1/webhooks', {
        token: await token(as, { roles: ['service'] }),
        json: { url: `https://hooks.example.com/${encodeURIComponent(as)}` },
      });
      expect(res.status).toBe(201);
      return res.body?.data.id ?? '';
    };
    const [mine, prefix] = [await subscribe(sub), await subscribe(base)];
    const desktop = desktopFor('tenancy-site', `${sub}:alice`, { createdBy: `service:${sub}` });
    const ids = (await withDb(cfg, (db) => subscribersFor(db, desktop))).map((s) => s.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(prefix);
  });
});
