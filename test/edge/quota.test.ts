import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import type { UserSummaryOut } from '../../src/routes/admin';
import type { Desktop } from '../../src/schemas/desktop';
import type { z } from 'zod';
import { api, token, uniqueUser } from './helpers';

const create = async (tok: string, body: Record<string, unknown> = {}) =>
  api<Desktop>('POST', '/api/v1/desktops', { token: tok, body: { plan: 'BASIC', ...body } });

describe('quota', () => {
  it('allows one active desktop per user by default and names the limit when refusing', async () => {
    const t = await token(uniqueUser());
    expect((await create(t)).status).toBe(202);
    const second = await create(t);
    expect(second.status).toBe(409);
    expect(second.body?.error?.code).toBe('QUOTA_EXCEEDED');
    expect(second.body?.message).toMatch(/at most 1 active desktop/);
  });

  it('lets concurrent creates of one user through only up to the limit', async () => {
    const t = await token(uniqueUser());
    const results = await Promise.all(Array.from({ length: 6 }, () => create(t)));
    expect(results.filter((r) => r.status === 202)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(5);
  });

  it('holds the slot of a create on its way, and frees the slot of a create that died before its desktop existed', async () => {
    const user = uniqueUser();
    const t = await token(user);
    const reserve = (desktopId: string, at: number) =>
      runInDurableObject(env.USER_ACCOUNT.getByName(user), (_o, state) => {
        state.storage.sql.exec('DELETE FROM active_desktops');
        state.storage.sql.exec('INSERT INTO active_desktops (desktop_id, reserved_at) VALUES (?, ?)', desktopId, at);
      });
    await reserve('dkonitswayxxxxxxxxxxxxx', Date.now());
    expect((await create(t)).status).toBe(409);
    await reserve('dkabandonedxxxxxxxxxxxx', Date.now() - 10 * 60_000);
    expect((await create(t)).status).toBe(202);
  });

  it('applies the limit an admin sets', async () => {
    const user = uniqueUser();
    const admin = await token('root', { roles: ['admin'] });
    const set = await api<{ maxDesktops: number }>('PUT', `/api/v1/admin/users/${user}/quota`, { token: admin, body: { maxDesktops: 3 } });
    expect(set.status).toBe(200);
    expect(set.body?.data.maxDesktops).toBe(3);
    const t = await token(user);
    for (let i = 0; i < 3; i++) expect((await create(t)).status).toBe(202);
    const fourth = await create(t);
    expect(fourth.status).toBe(409);
    expect(fourth.body?.message).toMatch(/at most 3 active desktops/);
    const q = await api<{ active: number }>('GET', `/api/v1/admin/users/${user}/quota`, { token: admin });
    expect(q.body?.data.active).toBe(3);
  });

  it('does not limit admins themselves', async () => {
    const t = await token(uniqueUser('admin'), { roles: ['admin'] });
    for (let i = 0; i < 3; i++) expect((await create(t)).status).toBe(202);
  });

  it('lists users with their limits and active desktops for admins, those with a custom limit included', async () => {
    const admin = await token('root', { roles: ['admin'] });
    const [busy, limited] = [uniqueUser('busy'), uniqueUser('limited')];
    await api('PUT', `/api/v1/admin/users/${limited}/quota`, { token: admin, body: { maxDesktops: 4 } });
    expect((await create(await token(busy))).status).toBe(202);
    type Summary = z.infer<typeof UserSummaryOut>;
    const find = async (userId: string) => {
      const all: Summary[] = [];
      for (let page = 1; ; page++) {
        const res = await api<{ items: Summary[]; total: number }>('GET', `/api/v1/admin/users?pageSize=200&page=${page}`, {
          token: admin,
        });
        expect(res.status).toBe(200);
        all.push(...(res.body?.data.items ?? []));
        if (all.length >= (res.body?.data.total ?? 0) || res.body?.data.items.length === 0) break;
      }
      return all.find((u) => u.userId === userId);
    };
    // The list reads the write-through copy, which follows the create within moments.
    await vi.waitFor(async () => expect(await find(busy)).toMatchObject({ maxDesktops: 1, custom: false, active: 1, desktops: 1 }), {
      timeout: 15_000,
      interval: 100,
    });
    expect(await find(limited)).toMatchObject({ maxDesktops: 4, custom: true, active: 0, desktops: 0, lastCreatedAt: null });
    expect((await api('GET', '/api/v1/admin/users', { token: await token(busy) })).status).toBe(403);
    expect((await api('GET', '/api/v1/admin/users?pageSize=0', { token: admin })).status).toBe(400);
  });

  it('refuses a negative or absurd limit', async () => {
    const admin = await token('root', { roles: ['admin'] });
    expect((await api('PUT', '/api/v1/admin/users/bob/quota', { token: admin, body: { maxDesktops: -1 } })).status).toBe(400);
  });
});
