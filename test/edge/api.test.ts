import { describe, expect, it } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import { api, token, uniqueUser } from './helpers';

describe('desktop API', () => {
  it('creates a desktop: 202 at once with PENDING and the plan resources', async () => {
    const user = uniqueUser();
    const res = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { name: 'Work', plan: 'PREMIUM' } });
    expect(res.status).toBe(202);
    expect(res.body?.success).toBe(true);
    expect(res.body?.data).toMatchObject({ userId: user, name: 'Work', plan: 'PREMIUM', cpuCores: 8, memoryMb: 8192, status: 'PENDING' });
    expect(typeof res.body?.data.id).toBe('string');
    const got = await api<Desktop>('GET', `/api/v1/desktops/${res.body?.data.id}`, { token: await token(user) });
    expect(got.status).toBe(200);
    expect(got.body?.data.id).toBe(res.body?.data.id);
  });
});
