/**
 * Refusals are audited: a 401 (no token, a bad one, a bad site key) and a 429 leave a
 * record with the address, the request id and what was asked, and a flood of them leaves
 * a bounded number of records.
 */
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { withDb } from '../../../src/db/client';
import { auditLog } from '../../../src/db/schema';
import { type Bindings, config } from '../../../src/env';
import { token } from '../helpers';
import { bindingsWith, call, freshWindow, uniqueIp } from './support';

const SMALL = (env as unknown as { RATE_LIMIT_TEST: RateLimit }).RATE_LIMIT_TEST;
const NO_DESKTOP = '/api/v1/desktops/dk0000000000000000000000';

const recordsFrom = (ip: string) => withDb(config(env as Bindings), (db) => db.select().from(auditLog).where(eq(auditLog.sourceIp, ip)));

describe('refusals in the audit log', () => {
  it('records a 401 for a forged token, a missing one and a bad site key', async () => {
    const ip = uniqueIp();
    const headers = { 'cf-connecting-ip': ip };
    const forged = await token('mallory', { roles: ['admin'], secret: 'guessed-secret-guessed-secret-guessed-secret!' });
    const answers = [
      await call('GET', '/api/v1/admin/users', { token: forged, headers }),
      await call('GET', NO_DESKTOP, { headers }),
      await call('GET', '/api/v1/sites/some-site/bridge', {
        headers: { ...headers, authorization: 'Bearer sk_guess', upgrade: 'websocket' },
      }),
    ];
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401]);
    const rows = await vi.waitFor(
      async () => {
        const found = await recordsFrom(ip);
        expect(found).toHaveLength(3);
        return found;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(rows.map((r) => [r.action, r.actor, r.role, r.outcome, r.target]).sort()).toEqual(
      [
        ['auth.refused', 'anonymous', 'anonymous', '401', 'GET /api/v1/admin/users'],
        ['auth.refused', 'anonymous', 'anonymous', '401', `GET ${NO_DESKTOP}`],
        ['auth.refused', 'anonymous', 'anonymous', '401', 'GET /api/v1/sites/some-site/bridge'],
      ].sort(),
    );
    expect(rows.map((r) => r.requestId).sort()).toEqual(answers.map((a) => a.headers.get('x-request-id')).sort());
  }, 20_000);

  it('records a 429, with the principal when the limit was its own', async () => {
    const ip = uniqueIp();
    await freshWindow();
    const b = bindingsWith({ RATE_LIMIT_TOKEN: SMALL });
    const tok = await token(`limited-${crypto.randomUUID().slice(0, 8)}`);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await call('GET', NO_DESKTOP, { env: b, token: tok, headers: { 'cf-connecting-ip': ip } })).status);
    expect(statuses).toEqual([404, 404, 404, 429]);
    const [row] = await vi.waitFor(
      async () => {
        const found = await withDb(config(env as Bindings), (db) =>
          db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.sourceIp, ip), eq(auditLog.action, 'rate_limited'))),
        );
        expect(found).toHaveLength(1);
        return found;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(row).toMatchObject({ outcome: '429', role: 'user', target: `GET ${NO_DESKTOP}` });
  }, 20_000);

  it('keeps a flood of refusals to a bounded number of records per address', async () => {
    const ip = uniqueIp();
    await freshWindow(10, 6000);
    const first = Date.now();
    for (let i = 0; i < 45; i++) expect((await call('GET', NO_DESKTOP, { headers: { 'cf-connecting-ip': ip } })).status).toBe(401);
    // The limiter's windows follow the wall clock (10 s): 20 records in each window the flood touched.
    const windows = Math.floor(Date.now() / 10_000) - Math.floor(first / 10_000) + 1;
    await vi.waitFor(async () => expect((await recordsFrom(ip)).length).toBeGreaterThanOrEqual(20), { timeout: 10_000, interval: 100 });
    await scheduler.wait(1000);
    const recorded = (await recordsFrom(ip)).length;
    expect(recorded).toBeLessThanOrEqual(20 * windows);
    expect(recorded).toBeLessThan(45);
  }, 20_000);
});
