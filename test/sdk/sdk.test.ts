/**
 * The SDK against a scripted fetch: retries and Retry-After, idempotency keys, typed
 * errors, waiting over the live stream with its polling fallback, webhook signatures.
 * (test/e2e/sdk-cli.e2e.test.ts runs it against a real stack.)
 */
import {
  ConflictError,
  ConnectionError,
  type Desktop,
  DesktopFailedError,
  type DesktopStatus,
  GpuCapacityError,
  IdempotencyKeyReusedError,
  InvalidStateError,
  NotFoundError,
  QuotaExceededError,
  RateLimitedError,
  ServerError,
  UnauthorizedError,
  WaitTimeoutError,
  type WaitProgress,
  createClient,
  verifyWebhook,
} from '@cdaas/sdk';
import { describe, expect, it } from 'vitest';
import { retryingFetch } from '../../sdk/src/retry.ts';
import { signatureHeader } from '../../src/lib/webhook-signature.ts';

const BASE = 'http://api.test';

function desktop(status: DesktopStatus, over: Partial<Desktop> = {}): Desktop {
  return {
    id: 'dkexample00000000000000',
    userId: 'alice',
    name: 'Studio',
    plan: 'STANDARD',
    cpuCores: 4,
    memoryMb: 4096,
    protocol: 'vnc',
    status,
    statusMessage: null,
    errorMessage: null,
    siteId: 'local',
    vmId: null,
    node: null,
    ipAddress: null,
    connectionId: null,
    createdBy: 'user:alice',
    createdAt: '2026-12-01T10:00:00.000Z',
    updatedAt: '2026-12-01T10:00:00.000Z',
    lastAccessedAt: null,
    expiresAt: null,
    deletedAt: null,
    idleTimeoutMinutes: 60,
    maxSessionMinutes: null,
    lastActivityAt: null,
    lastActivitySource: null,
    lastActivityReason: null,
    idleStopAt: null,
    sessionEndsAt: null,
    stopReason: null,
    templateId: null,
    backend: 'proxmox',
    gpuSlots: 0,
    sessionUrl: null,
    ...over,
  };
}

const ok = (data: unknown, status = 200) =>
  new Response(JSON.stringify({ success: true, message: 'ok', data }), { status, headers: { 'content-type': 'application/json' } });
const failure = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ success: false, message, error: { code, requestId: 'req-1' } }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

/** A fetch that answers from a script, recording each request it was sent. */
function scripted(answer: (req: Request, n: number) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const fetch = async (req: Request) => {
    seen.push(req);
    return answer(req, seen.length);
  };
  return { fetch, seen };
}

const quick = { retries: 3, baseDelayMs: 1, maxDelayMs: 50 };

describe('retries', () => {
  it('waits out a 429 for its Retry-After, then answers', async () => {
    const waits: number[] = [];
    const { fetch, seen } = scripted((_r, n) => (n === 1 ? failure(429, 'RATE_LIMITED', 'slow down', { 'retry-after': '2' }) : ok([])));
    const res = await retryingFetch(fetch, { maxDelayMs: 5000 }, async (ms) => {
      waits.push(ms);
    })(new Request(`${BASE}/api/v1/templates`));
    expect([res.status, seen.length, waits]).toEqual([200, 2, [2000]]);
  });

  it('backs off exponentially on 503s without Retry-After, and gives up after its retries', async () => {
    const waits: number[] = [];
    const { fetch, seen } = scripted(() => failure(503, 'DATABASE_UNAVAILABLE', 'down'));
    const res = await retryingFetch(fetch, { retries: 3, baseDelayMs: 100 }, async (ms) => {
      waits.push(ms);
    })(new Request(`${BASE}/x`));
    expect([res.status, seen.length]).toEqual([503, 4]);
    // Each wait is within [half, all] of 100·2^n.
    waits.forEach((ms, n) => {
      expect(ms).toBeGreaterThanOrEqual(50 * 2 ** n);
      expect(ms).toBeLessThanOrEqual(100 * 2 ** n);
    });
  });

  it('does not wait longer than maxDelayMs: a longer Retry-After is answered as RateLimitedError with it', async () => {
    const { fetch, seen } = scripted(() => failure(429, 'RATE_LIMITED', 'slow down', { 'retry-after': '120' }));
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    const err = await cdaas.templates.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfterMs: 120_000, requestId: 'req-1' });
    expect(seen).toHaveLength(1);
  });

  it('sends one Idempotency-Key per create, the same on its own retries', async () => {
    const { fetch, seen } = scripted((_r, n) => (n === 1 ? failure(503, 'SITE_UNAVAILABLE', 'busy') : ok(desktop('PENDING'), 202)));
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    await cdaas.desktops.create({ name: 'Studio' });
    await cdaas.desktops.create({ name: 'Studio' });
    await cdaas.desktops.create({ name: 'Studio' }, { idempotencyKey: 'my-key-1' });
    const keys = seen.map((r) => r.headers.get('idempotency-key'));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(keys[3]).toBe('my-key-1');
    expect(await seen[1]!.json()).toEqual({ name: 'Studio' });
    expect(seen[0]!.headers.get('authorization')).toBe('Bearer t');
  });

  it('retries a create still being handled under its key (409 IDEMPOTENCY_KEY_IN_USE) until it answers', async () => {
    const { fetch, seen } = scripted((_r, n) =>
      n < 3 ? failure(409, 'IDEMPOTENCY_KEY_IN_USE', 'still running', { 'retry-after': '0' }) : ok(desktop('PENDING'), 202),
    );
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    expect((await cdaas.desktops.create()).status).toBe('PENDING');
    expect(seen).toHaveLength(3);
  });

  it('repeats a read whose connection failed, never a start', async () => {
    let calls = 0;
    const fetch = async (req: Request) => {
      calls++;
      if (req.method === 'GET' && calls === 1) throw new TypeError('fetch failed');
      if (req.method === 'POST') throw new TypeError('fetch failed');
      return ok([]);
    };
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    expect(await cdaas.templates.list()).toEqual([]);
    calls = 0;
    await expect(cdaas.desktops.start('dkexample00000000000000')).rejects.toBeInstanceOf(ConnectionError);
    expect(calls).toBe(1);
  });
});

describe('typed errors', () => {
  it.each([
    [409, 'QUOTA_EXCEEDED', QuotaExceededError],
    [409, 'GPU_CAPACITY', GpuCapacityError],
    [409, 'INVALID_STATE', InvalidStateError],
    [404, 'NOT_FOUND', NotFoundError],
    [401, 'UNAUTHORIZED', UnauthorizedError],
    [422, 'IDEMPOTENCY_KEY_REUSED', IdempotencyKeyReusedError],
  ] as const)('%i %s', async (status, code, Class) => {
    const { fetch } = scripted(() => failure(status, code, `the API says ${code}`));
    const err = await createClient({ baseUrl: BASE, token: 't', fetch, retry: quick })
      .desktops.get('dkexample00000000000000')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Class);
    expect(err).toMatchObject({ status, code, message: `the API says ${code}`, requestId: 'req-1' });
  });

  it('groups the 409s under ConflictError, and names an answer without an envelope by its status', async () => {
    expect(new QuotaExceededError('x', { status: 409, error: { code: 'QUOTA_EXCEEDED' } })).toBeInstanceOf(ConflictError);
    const { fetch } = scripted(() => new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const err = await createClient({ baseUrl: BASE, token: 't', fetch, retry: quick })
      .templates.list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(err).toMatchObject({ status: 502, code: 'HTTP_502' });
  });
});

/** A text/event-stream response whose chunks split events (and lines) in awkward places. */
function eventStream(messages: unknown[]): Response {
  const text = `: live status of the desktop\n\n${messages.map((m) => `event: x\r\ndata: ${JSON.stringify(m)}\r\n\r\n`).join('')}`;
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 37) controller.enqueue(bytes.slice(i, i + 37));
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
}

describe('snapshots', () => {
  it('lists, takes, restores and removes a desktop’s snapshots at their paths, answering the data', async () => {
    const listing = {
      snapshots: [{ name: 'clean', description: '', takenAt: '2026-12-05T08:00:00.000Z', withRam: false, parent: null }],
      unsupported: null,
    };
    const taken = { snapshot: { name: 'clean', description: '', withRam: true }, desktop: desktop('RUNNING') };
    const { fetch, seen } = scripted((req) => {
      if (req.method === 'GET') return ok(listing);
      if (req.url.endsWith('/restore')) return ok(desktop('STARTING'), 202);
      return ok(taken, 202);
    });
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    const id = 'dkexample00000000000000';
    expect(await cdaas.desktops.snapshots.list(id)).toEqual(listing);
    expect(await cdaas.desktops.snapshots.create(id, { name: 'clean', withRam: true })).toEqual(taken);
    expect((await cdaas.desktops.snapshots.restore(id, 'clean')).status).toBe('STARTING');
    await cdaas.desktops.snapshots.remove(id, 'clean');
    expect(seen.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      `GET /api/v1/desktops/${id}/snapshots`,
      `POST /api/v1/desktops/${id}/snapshots`,
      `POST /api/v1/desktops/${id}/snapshots/clean/restore`,
      `DELETE /api/v1/desktops/${id}/snapshots/clean`,
    ]);
    expect(await seen[1]!.json()).toEqual({ name: 'clean', withRam: true });
  });

  it('answers the snapshot refusals as typed errors', async () => {
    const { fetch } = scripted((_r, n) =>
      n === 1 ? failure(409, 'SNAPSHOT_QUOTA', 'Snapshot quota reached') : failure(409, 'SNAPSHOTS_UNSUPPORTED', 'plain LVM'),
    );
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    await expect(cdaas.desktops.snapshots.create('dkexample00000000000000')).rejects.toBeInstanceOf(QuotaExceededError);
    const err = await cdaas.desktops.snapshots.create('dkexample00000000000000').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'SNAPSHOTS_UNSUPPORTED', message: 'plain LVM' });
  });
});

describe('waitUntil', () => {
  it('follows the live stream to RUNNING, reporting each step, without polling', async () => {
    const { fetch, seen } = scripted((req) =>
      req.url.endsWith('/live')
        ? eventStream([
            { type: 'snapshot', desktop: desktop('PENDING') },
            { type: 'transition', desktop: desktop('PROVISIONING', { statusMessage: 'allocated VMID 101' }) },
            { type: 'progress', step: 'clone', message: 'cloning template 9000', desktop: desktop('PROVISIONING') },
            { type: 'transition', desktop: desktop('RUNNING', { statusMessage: 'Desktop ready' }) },
          ])
        : failure(500, 'INTERNAL_ERROR', 'should not be asked'),
    );
    const progress: WaitProgress[] = [];
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: quick });
    const d = await cdaas.desktops.waitUntil('dkexample00000000000000', 'RUNNING', { onProgress: (p) => progress.push(p) });
    expect(d.status).toBe('RUNNING');
    expect(progress.map((p) => [p.status, p.message, p.step ?? null, p.via])).toEqual([
      ['PENDING', null, null, 'live'],
      ['PROVISIONING', 'allocated VMID 101', null, 'live'],
      ['PROVISIONING', 'cloning template 9000', 'clone', 'live'],
      ['RUNNING', 'Desktop ready', null, 'live'],
    ]);
    expect(seen.map((r) => [r.method, new URL(r.url).pathname, r.headers.get('accept')])).toEqual([
      ['GET', '/api/v1/desktops/dkexample00000000000000/live', 'text/event-stream'],
    ]);
  });

  it('polls when the live stream is unavailable', async () => {
    let polls = 0;
    const { fetch } = scripted((req) => {
      if (req.url.endsWith('/live')) return new Response('no streams here', { status: 502 });
      polls++;
      return ok({ ...desktop(polls < 3 ? 'CONFIGURING' : 'RUNNING'), siteBridge: 'connected' });
    });
    const progress: WaitProgress[] = [];
    const cdaas = createClient({ baseUrl: BASE, token: 't', fetch, retry: { retries: 0 } });
    const d = await cdaas.desktops.waitUntil('dkexample00000000000000', 'RUNNING', {
      pollIntervalMs: 5,
      onProgress: (p) => progress.push(p),
    });
    expect([d.status, polls]).toEqual(['RUNNING', 3]);
    // A poll that shows nothing new is not reported.
    expect(progress.map((p) => [p.status, p.via])).toEqual([
      ['CONFIGURING', 'poll'],
      ['RUNNING', 'poll'],
    ]);
  });

  it('rejects with DesktopFailedError, carrying the reason, when the desktop FAILED', async () => {
    const failed = desktop('FAILED', { errorMessage: 'Timed out after 600 s in PROVISIONING' });
    const { fetch } = scripted(() =>
      eventStream([
        { type: 'snapshot', desktop: desktop('PROVISIONING') },
        { type: 'transition', desktop: failed },
      ]),
    );
    const err = await createClient({ baseUrl: BASE, token: 't', fetch })
      .desktops.waitUntil('dkexample00000000000000', 'RUNNING')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DesktopFailedError);
    expect((err as DesktopFailedError).message).toMatch(/FAILED \(Timed out after 600 s in PROVISIONING\)/);
    expect((err as DesktopFailedError).desktop.status).toBe('FAILED');
  });

  it('times out with WaitTimeoutError naming the last status', async () => {
    const { fetch } = scripted((req) => (req.url.endsWith('/live') ? new Response(null, { status: 503 }) : ok(desktop('STARTING'))));
    const err = await createClient({ baseUrl: BASE, token: 't', fetch, retry: { retries: 0 } })
      .desktops.waitUntil('dkexample00000000000000', 'RUNNING', { timeoutMs: 60, pollIntervalMs: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as WaitTimeoutError).lastStatus).toBe('STARTING');
  });

  it('answers a missing desktop with NotFoundError rather than polling', async () => {
    const { fetch } = scripted(() => failure(404, 'NOT_FOUND', 'Desktop not found'));
    await expect(
      createClient({ baseUrl: BASE, token: 't', fetch }).desktops.waitUntil('dkexample00000000000000', 'RUNNING'),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('verifyWebhook', () => {
  const secret = 'whsec_test_0123456789';
  const body = JSON.stringify({ id: 'ev1', type: 'desktop.running', data: { desktop: { id: 'dk1', name: 'Grüße' } } });

  it('accepts what the API signs, as a string or as the raw bytes', async () => {
    const header = await signatureHeader(secret, body);
    expect(await verifyWebhook(secret, body, header)).toBe(true);
    expect(await verifyWebhook(secret, new TextEncoder().encode(body), header)).toBe(true);
  });

  it('refuses a changed body, another secret, an old signature, and junk', async () => {
    const now = Date.now();
    const header = await signatureHeader(secret, body, Math.floor(now / 1000) - 600);
    expect(await verifyWebhook(secret, body, header, { now })).toBe(false);
    expect(await verifyWebhook(secret, body, header, { now, toleranceSeconds: 900 })).toBe(true);
    const fresh = await signatureHeader(secret, body);
    expect(await verifyWebhook(secret, body.replace('dk1', 'dk2'), fresh)).toBe(false);
    expect(await verifyWebhook('whsec_other', body, fresh)).toBe(false);
    for (const junk of ['', 't=1', 'v1=abc', 't=x,v1=00', null, undefined]) expect(await verifyWebhook(secret, body, junk)).toBe(false);
  });
});
