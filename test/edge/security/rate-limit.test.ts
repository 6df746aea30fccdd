/**
 * Rate limits through the Workers rate-limiting binding, inside workerd. The configured
 * limiters are swapped for RATE_LIMIT_TEST (3 per 10 s, vitest.config.ts), one at a time,
 * so a 429 shows after three requests while the real budgets stay as configured. Every
 * test uses fresh keys (addresses, users), and starts early in a 10 s window: the
 * binding's windows are fixed and follow the wall clock.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { clientKey } from '../../../src/middleware/rate-limit';
import { registerSite } from '../fake-bridge';
import { token, uniqueUser } from '../helpers';
import { type Answer, bindingsWith, call, expectErrorEnvelope, expectSecurityHeaders, freshWindow, uniqueIp } from './support';

const SMALL = (env as unknown as { RATE_LIMIT_TEST: RateLimit }).RATE_LIMIT_TEST;
const LIMIT = 3;
const NO_DESKTOP = '/api/v1/desktops/dk0000000000000000000000';

function expect429(res: Answer, label: string) {
  expect(res.status, `${label}: ${res.text}`).toBe(429);
  expect(res.body?.error?.code).toBe('RATE_LIMITED');
  expect(res.headers.get('retry-after')).toBe('10');
  expectErrorEnvelope(res, label);
  expectSecurityHeaders(res, label);
}

async function times(n: number, make: (i: number) => Promise<Answer>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await make(i)).status);
  return out;
}

describe('rate limits', () => {
  it('binds the configured limiters', () => {
    for (const name of [
      'RATE_LIMIT_IP',
      'RATE_LIMIT_TOKEN',
      'RATE_LIMIT_SERVICE',
      'RATE_LIMIT_BRIDGE',
      'RATE_LIMIT_HEALTH',
      'RATE_LIMIT_AUDIT',
      'RATE_LIMIT_SHARE',
    ] as const) {
      expect(typeof env[name].limit, name).toBe('function');
    }
  });

  it('limits each client address, answering 429 RATE_LIMITED with Retry-After', async () => {
    const b = bindingsWith({ RATE_LIMIT_IP: SMALL });
    const ip = uniqueIp();
    await freshWindow();
    const get = (from: string) => call('GET', '/api/v1/plans', { env: b, headers: { 'cf-connecting-ip': from } });
    expect(await times(LIMIT, () => get(ip))).toEqual([200, 200, 200]);
    expect429(await get(ip), 'over the address limit');
    expect((await get(uniqueIp())).status).toBe(200);
  });

  it('limits each user by the token’s sub, whichever token and address it comes with', async () => {
    const b = bindingsWith({ RATE_LIMIT_TOKEN: SMALL });
    const user = uniqueUser();
    await freshWindow();
    const got = await times(LIMIT, async (i) =>
      call('GET', NO_DESKTOP, { env: b, token: await token(user, { exp: `${60 + i}m` }), headers: { 'cf-connecting-ip': uniqueIp() } }),
    );
    expect(got).toEqual([404, 404, 404]);
    const fresh = await token(user, { exp: '2h' });
    expect429(await call('GET', NO_DESKTOP, { env: b, token: fresh, headers: { 'cf-connecting-ip': uniqueIp() } }), 'over the user limit');
    // Someone else, from the same address, is not affected.
    expect((await call('GET', NO_DESKTOP, { env: b, token: await token(uniqueUser()) })).status).toBe(404);
  });

  it('gives service tokens their own budget', async () => {
    const service = await token(`svc-${crypto.randomUUID().slice(0, 8)}`, { roles: ['service'] });
    await freshWindow();
    // The user limiter is small: a service does not spend it.
    const users = bindingsWith({ RATE_LIMIT_TOKEN: SMALL });
    expect(await times(LIMIT + 2, () => call('GET', NO_DESKTOP, { env: users, token: service }))).toEqual([404, 404, 404, 404, 404]);
    // The service limiter is small: now the service is limited.
    const services = bindingsWith({ RATE_LIMIT_SERVICE: SMALL });
    const other = await token(`svc-${crypto.randomUUID().slice(0, 8)}`, { roles: ['service'] });
    expect(await times(LIMIT, () => call('GET', NO_DESKTOP, { env: services, token: other }))).toEqual([404, 404, 404]);
    expect429(await call('GET', NO_DESKTOP, { env: services, token: other }), 'over the service limit');
  });

  it('counts bad tokens against the address before verifying them', async () => {
    const b = bindingsWith({ RATE_LIMIT_IP: SMALL });
    const ip = uniqueIp();
    await freshWindow();
    const bad = await token('mallory', { secret: 'guessed-secret-guessed-secret-guessed-secret!' });
    expect(await times(LIMIT, () => call('GET', NO_DESKTOP, { env: b, token: bad, headers: { 'cf-connecting-ip': ip } }))).toEqual([
      401, 401, 401,
    ]);
    expect429(await call('GET', NO_DESKTOP, { env: b, token: await token('mallory'), headers: { 'cf-connecting-ip': ip } }), 'guessing');
  });

  it('keeps /healthz out of the API budget, with a limit of its own', async () => {
    const ip = uniqueIp();
    await freshWindow();
    const api = bindingsWith({ RATE_LIMIT_IP: SMALL });
    await times(LIMIT + 1, () => call('GET', '/api/v1/plans', { env: api, headers: { 'cf-connecting-ip': ip } }));
    expect((await call('GET', '/healthz', { env: api, headers: { 'cf-connecting-ip': ip } })).status).toBe(200);

    const health = bindingsWith({ RATE_LIMIT_HEALTH: SMALL });
    const prober = uniqueIp();
    expect(await times(LIMIT, () => call('GET', '/healthz', { env: health, headers: { 'cf-connecting-ip': prober } }))).toEqual([
      200, 200, 200,
    ]);
    expect429(await call('GET', '/healthz', { env: health, headers: { 'cf-connecting-ip': prober } }), 'healthz');
    // The API from the same prober address is not affected.
    expect((await call('GET', '/api/v1/plans', { env: health, headers: { 'cf-connecting-ip': prober } })).status).toBe(200);
  });

  it('limits share-link attempts per address on a budget of their own, so guessing links is slow and the API stays open', async () => {
    const b = bindingsWith({ RATE_LIMIT_SHARE: SMALL });
    const guesser = uniqueIp();
    const guess = (from: string, i: number) =>
      call('POST', '/api/v1/share', {
        env: b,
        json: { token: `dk0000000000000000000000.sl_made_up_${i}.${'x'.repeat(32)}` },
        headers: { 'cf-connecting-ip': from },
      });
    await freshWindow();
    expect(await times(LIMIT, (i) => guess(guesser, i))).toEqual([404, 404, 404]);
    expect429(await guess(guesser, LIMIT), 'share-link guesses');
    // The same address may still use the API, and another address may still open links.
    expect((await call('GET', '/api/v1/plans', { env: b, headers: { 'cf-connecting-ip': guesser } })).status).toBe(200);
    expect((await guess(uniqueIp(), 0)).status).toBe(404);
  });

  it('gives the bridge endpoint a budget per address, apart from the API, so failing keys from elsewhere cannot lock a bridge out', async () => {
    const site = `rl-${crypto.randomUUID().slice(0, 8)}`;
    const key = await registerSite(site);
    const path = `/api/v1/sites/${site}/bridge`;
    const wrong = { authorization: 'Bearer sk_not-the-key', upgrade: 'websocket' };
    await freshWindow();

    // The site's office has spent its API budget; its bridge still gets through.
    const office = uniqueIp();
    const api = bindingsWith({ RATE_LIMIT_IP: SMALL });
    await times(LIMIT + 1, () => call('GET', '/api/v1/plans', { env: api, headers: { 'cf-connecting-ip': office } }));
    expect((await call('GET', path, { env: api, headers: { ...wrong, 'cf-connecting-ip': office } })).status).toBe(401);

    // An address failing keys, or making up site ids, is stopped before any lookup.
    const b = bindingsWith({ RATE_LIMIT_BRIDGE: SMALL });
    const attacker = uniqueIp();
    const attempts = await times(LIMIT, (i) =>
      call('GET', i === 0 ? path : `/api/v1/sites/made-up-${i}/bridge`, { env: b, headers: { ...wrong, 'cf-connecting-ip': attacker } }),
    );
    expect(attempts).toEqual([401, 401, 401]);
    const limited = await call('GET', path, {
      env: b,
      headers: { authorization: `Bearer ${key}`, upgrade: 'websocket', 'cf-connecting-ip': attacker },
    });
    expect429(limited, 'bridge attempts');
    expect(limited.webSocket).toBeNull();
    // The real bridge, from its own address, still connects.
    const res = await call('GET', path, {
      env: b,
      headers: { authorization: `Bearer ${key}`, upgrade: 'websocket', 'cf-connecting-ip': uniqueIp() },
    });
    expect(res.status).toBe(101);
    res.webSocket?.accept();
    res.webSocket?.close(1000, 'done');
  });

  it('treats an IPv6 /64 as one client', async () => {
    const b = bindingsWith({ RATE_LIMIT_IP: SMALL });
    const hex = () => Math.floor(Math.random() * 0xffff).toString(16);
    const net = `2001:db8:${hex()}:${hex()}`;
    await freshWindow();
    const get = (ip: string) => call('GET', '/api/v1/plans', { env: b, headers: { 'cf-connecting-ip': ip } });
    expect(await times(LIMIT, (i) => get(`${net}::${i + 1}`))).toEqual([200, 200, 200]);
    expect429(await get(`${net}:ffff:1:2:3`), 'same /64');
    expect((await get(`2001:db8:${hex()}:${hex()}::1`)).status).toBe(200);
  });

  it('never limits the exempt addresses', async () => {
    const ip = uniqueIp();
    const b = bindingsWith({ RATE_LIMIT_IP: SMALL, RATE_LIMIT_TOKEN: SMALL, RATE_LIMIT_EXEMPT_IPS: `192.0.2.1, ${ip}` });
    const tok = await token(uniqueUser());
    await freshWindow();
    const got = await times(LIMIT * 2, () => call('GET', NO_DESKTOP, { env: b, token: tok, headers: { 'cf-connecting-ip': ip } }));
    expect(got.every((s) => s === 404)).toBe(true);
  });

  it('lets requests through when the limiter itself fails, and says so in the log', async () => {
    const broken: RateLimit = { limit: () => Promise.reject(new Error('limiter unavailable')) };
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const res = await call('GET', '/api/v1/plans', {
        env: bindingsWith({ RATE_LIMIT_IP: broken }),
        headers: { 'cf-connecting-ip': uniqueIp() },
      });
      expect(res.status).toBe(200);
      expect(errors.mock.calls.map((a) => String(a[0])).join('\n')).toContain('rate limiter failed');
    } finally {
      errors.mockRestore();
    }
  });

  it('runs the configured limiters on the real bindings', async () => {
    // No swap: one request per budget passes the limiters as configured in wrangler.toml.
    const ip = uniqueIp();
    const headers = { 'cf-connecting-ip': ip };
    expect((await call('GET', '/api/v1/plans', { headers })).status).toBe(200);
    expect((await call('GET', '/healthz', { headers })).status).toBe(200);
    expect((await call('GET', NO_DESKTOP, { headers, token: await token(uniqueUser()) })).status).toBe(404);
    expect((await call('GET', '/api/v1/sites/nowhere/bridge', { headers: { ...headers, authorization: 'Bearer x' } })).status).toBe(401);
  });
});

describe('clientKey', () => {
  it.each([
    ['203.0.113.9', '203.0.113.9'],
    [' 203.0.113.9 ', '203.0.113.9'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002::7', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['64:ff9b::198.51.100.7', '64:ff9b:0:0::/64'],
  ])('%s → %s', (raw, key) => {
    expect(clientKey(raw)).toBe(key);
  });

  it('has no key without an address (no client: a service binding, the test runtime)', () => {
    expect(clientKey(undefined)).toBeNull();
    expect(clientKey('')).toBeNull();
  });
});
