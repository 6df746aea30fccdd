/**
 * What every answer carries (security headers, the envelope on failures), CORS for the
 * configured origins only, and the request body limit.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { MAX_BODY_BYTES } from '../../../src/app';
import { type Bindings, config } from '../../../src/env';
import type { Desktop } from '../../../src/schemas/desktop';
import { registerSite } from '../fake-bridge';
import { token, uniqueUser } from '../helpers';
import { type Answer, bindingsWith, call, expectErrorEnvelope, expectSecurityHeaders } from './support';

const APP = 'https://desk.example.com';
const DEV_UI = 'http://localhost:5173';
const withCors = bindingsWith({ CORS_ORIGINS: `${APP}, ${DEV_UI}` });
const preflight = (origin: string, b?: Bindings) =>
  call('OPTIONS', '/api/v1/desktops', {
    env: b,
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

function expectNoCors(res: Answer, label: string) {
  expect(res.headers.get('access-control-allow-origin'), label).toBeNull();
  expect(res.headers.get('access-control-allow-credentials'), label).toBeNull();
}

describe('CORS', () => {
  it('answers a preflight from a configured origin with what the API needs, and no credentials', async () => {
    const res = await preflight(APP, withCors);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, DELETE');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Content-Type/);
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toMatch(/Origin/);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expectSecurityHeaders(res, 'preflight');
    expect((await preflight(DEV_UI, withCors)).headers.get('access-control-allow-origin')).toBe(DEV_UI);
  });

  const strangers = [
    'https://evil.example',
    'null',
    'http://desk.example.com',
    'https://desk.example.com.evil.example',
    'https://evil-desk.example.com',
    'https://desk.example.com:8443',
    'HTTPS://DESK.EXAMPLE.COM',
  ];
  it.each(strangers)('refuses a preflight from %s with 403, granting nothing', async (origin) => {
    const res = await preflight(origin, withCors);
    expect(res.status).toBe(403);
    expectNoCors(res, origin);
    expectErrorEnvelope(res, origin);
    expectSecurityHeaders(res, origin);
  });

  it('allows no origin at all by default', async () => {
    expect(config(env).CORS_ORIGINS.size).toBe(0);
    for (const origin of [APP, 'http://127.0.0.1:8787', 'http://localhost:8787']) {
      const res = await preflight(origin);
      expect(res.status).toBe(403);
      expectNoCors(res, origin);
    }
  });

  it('lets a configured origin read answers, errors and 429s included', async () => {
    const ok = await call('GET', '/api/v1/plans', { env: withCors, headers: { origin: APP } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id/);
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    const denied = await call('GET', '/api/v1/desktops', { env: withCors, headers: { origin: APP } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(APP);
    const SMALL = (env as unknown as { RATE_LIMIT_TEST: RateLimit }).RATE_LIMIT_TEST;
    const limited = bindingsWith({ CORS_ORIGINS: APP, RATE_LIMIT_IP: SMALL });
    const ip = `10.77.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    let last: Answer | undefined;
    for (let i = 0; i < 8 && last?.status !== 429; i++) {
      last = await call('GET', '/api/v1/plans', { env: limited, headers: { origin: APP, 'cf-connecting-ip': ip } });
    }
    expect(last?.status).toBe(429);
    expect(last?.headers.get('access-control-allow-origin')).toBe(APP);
  });

  it('grants nothing to other origins on actual requests (the browser then withholds the answer)', async () => {
    for (const origin of strangers) {
      const res = await call('GET', '/api/v1/plans', { env: withCors, headers: { origin } });
      expectNoCors(res, origin);
      expect(res.headers.get('vary')).toMatch(/Origin/);
    }
  });

  it('marks answers as varying by Origin once any origin is configured', async () => {
    expect((await call('GET', '/api/v1/plans', { env: withCors })).headers.get('vary')).toMatch(/Origin/);
    expect((await call('GET', '/api/v1/plans')).headers.get('vary')).toBeNull();
  });

  it('refuses to start with an entry that is not an origin', () => {
    for (const bad of ['https://desk.example.com/', 'desk.example.com', 'https://desk.example.com/app', '*']) {
      expect(() => config(bindingsWith({ CORS_ORIGINS: bad })), bad).toThrow(/CORS_ORIGINS/);
    }
  });
});

describe('security headers', () => {
  it('are on every kind of answer: success, each failure, 404, 413, 415, preflight, WebSocket upgrade and 500', async () => {
    const user = uniqueUser();
    const tok = await token(user);
    const made = await call<Desktop>('POST', '/api/v1/desktops', { token: tok, json: { plan: 'BASIC' } });
    const id = made.body!.data.id;
    const site = `hdr-${crypto.randomUUID().slice(0, 8)}`;
    const key = await registerSite(site);
    const answers: [string, Answer, number][] = [
      ['200', await call('GET', '/api/v1/plans'), 200],
      ['200 openapi', await call('GET', '/api/v1/openapi.json'), 200],
      ['200 healthz', await call('GET', '/healthz'), 200],
      ['202', made, 202],
      ['400', await call('GET', '/api/v1/desktops?pageSize=0', { token: tok }), 400],
      ['401', await call('GET', '/api/v1/desktops'), 401],
      ['403', await call('GET', '/api/v1/admin/sites', { token: tok }), 403],
      ['404 route', await call('GET', '/nowhere'), 404],
      ['404 method', await call('PATCH', '/api/v1/plans'), 404],
      ['404 desktop', await call('GET', '/api/v1/desktops/dk0000000000000000000000', { token: tok }), 404],
      ['200 connect page', await call('GET', '/api/v1/connect'), 200],
      ['404 connect', await call('POST', '/api/v1/connect', { json: { ticket: `${id}.${'A'.repeat(43)}` } }), 404],
      ['409', await call('POST', `/api/v1/desktops/${id}/start`, { token: tok }), 409],
      ['413', await call('POST', '/api/v1/desktops', { token: tok, json: { name: 'x'.repeat(MAX_BODY_BYTES) } }), 413],
      ['415', await call('POST', '/api/v1/desktops', { token: tok, body: 'plan=BASIC', headers: { 'content-type': 'text/plain' } }), 415],
      ['403 preflight', await preflight('https://evil.example'), 403],
      ['204 preflight', await preflight(APP, withCors), 204],
    ];
    const ws = await call('GET', `/api/v1/sites/${site}/bridge`, { headers: { authorization: `Bearer ${key}`, upgrade: 'websocket' } });
    answers.push(['101', ws, 101]);
    ws.webSocket?.accept();
    ws.webSocket?.close(1000, 'done');

    // A broken configuration: the generic 500, still with the headers and the envelope.
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      answers.push(['500', await call('GET', '/api/v1/plans', { env: bindingsWith({ WATCHDOG_SECONDS: 'not json' }) }), 500]);
    } finally {
      errors.mockRestore();
    }

    for (const [label, res, status] of answers) {
      expect(res.status, label).toBe(status);
      expectSecurityHeaders(res, label);
      if (status >= 400) expectErrorEnvelope(res, label);
    }
    const broken = answers.at(-1)![1];
    expect(broken.body?.message).not.toMatch(/WATCHDOG|json/i);
  });

  it('keeps the connect link’s referrer private and uncached', async () => {
    // The connect route sets them itself; they survive the common middleware.
    const res = await call('POST', '/api/v1/connect', { json: { ticket: `dk0000000000000000000000.${'A'.repeat(43)}` } });
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const page = await call('GET', '/api/v1/connect');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('cache-control')).toBe('no-store');
    // Its one script, by hash; nothing else runs, and only this origin may frame it (the dashboard's desktop view).
    expect(page.headers.get('content-security-policy')).toMatch(
      /script-src 'sha256-[A-Za-z0-9+/=]+'; connect-src 'self';.*frame-ancestors 'self'/,
    );
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });
});

describe('body size limit', () => {
  const tok = () => token(uniqueUser());

  it('refuses a declared body over 64 KiB with 413 before reading it', async () => {
    const res = await call('POST', '/api/v1/desktops', { token: await tok(), json: { name: 'x'.repeat(MAX_BODY_BYTES) } });
    expect(res.status).toBe(413);
    expect(res.body?.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a streamed body without a length once it passes 64 KiB', async () => {
    const chunk = new TextEncoder().encode(`{"name":"${'y'.repeat(16 * 1024)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (sent > MAX_BODY_BYTES * 4) return ctrl.close();
        sent += chunk.byteLength;
        ctrl.enqueue(chunk);
      },
    });
    const res = await call('POST', '/api/v1/desktops', {
      token: await tok(),
      body: stream,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(413);
    expect(sent).toBeLessThanOrEqual(MAX_BODY_BYTES * 4 + chunk.byteLength);
  });

  it('applies to admin routes and to routes that take no body', async () => {
    const admin = await token(uniqueUser('admin'), { roles: ['admin'] });
    const big = 'z'.repeat(MAX_BODY_BYTES + 1);
    expect(
      (await call('PUT', '/api/v1/admin/users/bob/quota', { token: admin, body: big, headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(413);
    expect((await call('POST', '/api/v1/desktops/dk0000000000000000000000/start', { token: admin, body: big })).status).toBe(413);
  });

  it('lets a body of exactly 64 KiB through to validation', async () => {
    const padding = MAX_BODY_BYTES - JSON.stringify({ name: '' }).length;
    const res = await call('POST', '/api/v1/desktops', { token: await tok(), json: { name: 'n'.repeat(padding) } });
    expect(res.status).toBe(400);
    expect(res.body?.error?.code).toBe('VALIDATION_FAILED');
  });
});
