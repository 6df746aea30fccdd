import { describe, expect, it } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
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

  it('refuses a negative or absurd limit', async () => {
    const admin = await token('root', { roles: ['admin'] });
    expect((await api('PUT', '/api/v1/admin/users/bob/quota', { token: admin, body: { maxDesktops: -1 } })).status).toBe(400);
  });
});
