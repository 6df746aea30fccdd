/** Bad input gets a clear 4xx in the envelope, never a 500, and stores nothing. */
import { describe, expect, it } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import { api, token, uniqueUser } from './helpers';

describe('validation', () => {
  it.each([
    [{ plan: 'ULTRA' }, /plan/],
    [{ plan: 'BASIC', name: '' }, /name/],
    [{ plan: 'BASIC', name: 'x'.repeat(101) }, /name/],
    [{ plan: 'BASIC', protocol: 'spice' }, /SPICE is not supported/],
    [{ plan: 'BASIC', cpuCores: 64 }, /cpuCores/],
    [{ plan: 'BASIC', userId: 'bad user id!' }, /userId/],
    [[], /body/],
  ])('refuses %j with 400 naming the field', async (body, message) => {
    const user = uniqueUser();
    const res = await api('POST', '/api/v1/desktops', { token: await token(user), body });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, error: { code: 'VALIDATION_FAILED' } });
    expect(res.body?.message).toMatch(message);
    const list = await api<{ total: number }>('GET', '/api/v1/desktops', { token: await token(user) });
    expect(list.body?.data.total).toBe(0);
  });

  it('refuses malformed JSON with 400', async () => {
    const res = await api('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: '{"plan":' });
    expect(res.status).toBe(400);
    expect(res.body?.success).toBe(false);
  });

  it('refuses a body over the size limit with 413', async () => {
    const res = await api('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { name: 'x'.repeat(70_000) } });
    expect(res.status).toBe(413);
    expect(res.body?.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await api('POST', '/api/v1/desktops', {
      token: await token(uniqueUser()),
      body: 'plan=BASIC',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    expect(res.body?.success).toBe(false);
  });

  it('refuses bad list filters with 400', async () => {
    const res = await api('GET', '/api/v1/desktops?status=SLEEPING&pageSize=1000', { token: await token(uniqueUser()) });
    expect(res.status).toBe(400);
    expect(res.body?.message).toMatch(/status/);
  });

  it('answers 404 for an unknown or malformed desktop id', async () => {
    const t = await token(uniqueUser());
    expect((await api('GET', '/api/v1/desktops/dkdoesnotexist0000000000', { token: t })).status).toBe(404);
    expect((await api('GET', '/api/v1/desktops/..%2F..%2Fetc', { token: t })).status).toBe(404);
  });

  it('answers unknown routes with a 404 envelope', async () => {
    const res = await api('GET', '/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: { code: 'NOT_FOUND' } });
  });

  it('applies the plan table and defaults', async () => {
    const user = uniqueUser();
    const res = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { plan: 'STANDARD' } });
    expect(res.status).toBe(202);
    expect(res.body?.data).toMatchObject({ plan: 'STANDARD', cpuCores: 4, memoryMb: 4096, name: 'Cloud Desktop', protocol: 'vnc' });
    const lower = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { plan: 'premium' } });
    expect(lower.body?.data).toMatchObject({ plan: 'PREMIUM', cpuCores: 8, memoryMb: 8192 });
  });

  it('serves the plans, the OpenAPI document and security headers', async () => {
    const plans = await api<{ plan: string; cpuCores: number; memoryMb: number }[]>('GET', '/api/v1/plans');
    expect(plans.body?.data.map((p) => [p.plan, p.cpuCores, p.memoryMb])).toEqual([
      ['BASIC', 2, 2048],
      ['STANDARD', 4, 4096],
      ['PREMIUM', 8, 8192],
    ]);
    expect(plans.headers.get('x-content-type-options')).toBe('nosniff');
    const doc = await api<never>('GET', '/api/v1/openapi.json');
    expect(doc.status).toBe(200);
    const paths = Object.keys((JSON.parse(doc.text) as { paths: Record<string, unknown> }).paths);
    for (const p of [
      '/api/v1/desktops',
      '/api/v1/desktops/{id}',
      '/api/v1/desktops/{id}/status',
      '/api/v1/desktops/{id}/connect',
      '/api/v1/desktops/{id}/start',
      '/api/v1/desktops/{id}/stop',
      '/api/v1/desktops/user/{userId}',
      '/api/v1/plans',
    ]) {
      expect(paths).toContain(p);
    }
  });
});
