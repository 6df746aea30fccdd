/**
 * Webhooks cannot be pointed inward (SSRF): a URL whose host is a private, loopback,
 * link-local, CGNAT, multicast or otherwise non-public address is refused at registration
 * in every notation a URL parser accepts, and a name is resolved (DoH, the stub zone of
 * test/support/global-setup.ts) before each delivery and refused when it points inward.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { withDb } from '../../../src/db/client';
import { webhookDeliveries } from '../../../src/db/schema';
import { type Bindings, config } from '../../../src/env';
import worker from '../../../workers/index';
import type { WebhookDelivery } from '../../../src/schemas/jobs';
import { parseIPv4 } from '../../../src/webhooks/addresses';
import { token, uniqueUser } from '../helpers';
import { bindingsWith, call } from './support';

const INWARD = [
  // IPv4, every notation of loopback
  'https://127.0.0.1/hook',
  'https://127.1/hook',
  'https://127.0.1/hook',
  'https://2130706433/hook',
  'https://0x7f000001/hook',
  'https://0x7f.0.0.1/hook',
  'https://0x7f.1/hook',
  'https://0177.0.0.1/hook',
  'https://017700000001/hook',
  'https://127.0.0.1./hook',
  'https://127.255.255.254:8443/hook',
  // private, link-local (cloud metadata), CGNAT, this network, multicast, broadcast, reserved
  'https://10.0.0.1/hook',
  'https://172.16.5.4/hook',
  'https://192.168.1.1/hook',
  'https://169.254.169.254/latest/meta-data/',
  'https://0xa9fea9fe/latest/meta-data/',
  'https://2852039166/latest/meta-data/',
  'https://100.64.0.1/hook',
  'https://100.127.255.254/hook',
  'https://0.0.0.0/hook',
  'https://0/hook',
  'https://224.0.0.1/hook',
  'https://239.255.255.250/hook',
  'https://255.255.255.255/hook',
  'https://240.0.0.1/hook',
  'https://198.18.0.1/hook',
  // IPv6: loopback, unspecified, IPv4-mapped and -compatible, NAT64, 6to4, Teredo, link-local, unique-local, multicast, documentation
  'https://[::1]/hook',
  'https://[0:0:0:0:0:0:0:1]/hook',
  'https://[::]/hook',
  'https://[::ffff:127.0.0.1]/hook',
  'https://[::ffff:7f00:1]/hook',
  'https://[0:0:0:0:0:ffff:127.0.0.1]/hook',
  'https://[::ffff:169.254.169.254]/hook',
  'https://[::ffff:10.0.0.1]/hook',
  'https://[::127.0.0.1]/hook',
  'https://[64:ff9b::a9fe:a9fe]/hook',
  'https://[2002:7f00:1::]/hook',
  'https://[2002:a9fe:a9fe::1]/hook',
  'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook',
  'https://[fe80::1]/hook',
  'https://[fc00::1]/hook',
  'https://[fd12:3456:789a::1]/hook',
  'https://[ff02::1]/hook',
  'https://[2001:db8::1]/hook',
  // names that are this machine whatever DNS says
  'https://localhost/hook',
  'https://LOCALHOST./hook',
  'https://api.localhost/hook',
];

const PUBLIC = [
  'https://93.184.216.34/hook',
  'https://[2606:4700:4700::1111]/hook',
  'https://hooks.example.com/hook',
  'https://public.hooks.test/x',
];

/**
 * A fresh user each time (everyone may have WEBHOOK_MAX_PER_OWNER subscriptions), without
 * desktops: no other test's events are fanned out to these URLs.
 */
const subscribe = async (url: string, bindings?: Bindings) => {
  const tok = await token(uniqueUser('ssrf'));
  const res = await call<{ id: string; url: string }>('POST', '/api/v1/webhooks', {
    token: tok,
    json: { url, events: ['desktop.running'] },
    env: bindings,
  });
  return Object.assign(res, { tok });
};

describe('webhook URLs at registration', () => {
  it('reads every IPv4 notation the way a URL parser does', () => {
    for (const host of ['127.0.0.1', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '017700000001', '0x7f.1', '127.0.0.1.']) {
      expect(parseIPv4(host), host).toBe(0x7f000001);
    }
    expect(parseIPv4('hooks.example.com')).toBeNull();
    expect(parseIPv4('127.0.0.256')).toBeNull();
  });

  it.each(INWARD)('refuses %s', async (url) => {
    const res = await subscribe(url);
    expect(res.status, res.text).toBe(400);
    expect(res.body?.error?.code).toBe('VALIDATION_FAILED');
    expect(res.body?.message).toMatch(/public address/);
  });

  it.each(PUBLIC)('accepts %s', async (url) => {
    const res = await subscribe(url);
    expect(res.status, res.text).toBe(201);
  });

  it('accepts http and private targets only when the configuration names them', async () => {
    expect((await subscribe('http://hooks.example.com/x')).status).toBe(400);
    expect((await subscribe('https://127.0.0.1:9/x')).status).toBe(400);
    const local = bindingsWith({ WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_PRIVATE_TARGETS: '127.0.0.0/8' });
    expect((await subscribe('http://127.0.0.1:9/x', local)).status).toBe(201);
    expect((await subscribe('http://localhost:9/x', local)).status).toBe(201);
    // Only the ranges named: loopback allowed does not open the rest of the private space.
    expect((await subscribe('http://10.0.0.1/x', local)).status).toBe(400);
    expect((await subscribe('http://[::ffff:127.0.0.1]/x', local)).status).toBe(400);
  });
});

describe('webhook names at delivery', () => {
  async function deliver(host: string) {
    const made = await subscribe(`https://${host}/hook`);
    expect(made.status, made.text).toBe(201);
    const webhookId = made.body!.data.id;
    const eventId = `ev${crypto.randomUUID().replaceAll('-', '')}`;
    const body: WebhookDelivery = { webhookId, eventId, eventType: 'desktop.running', body: '{}' };
    const batch = createMessageBatch<WebhookDelivery>('cdaas-webhooks', [{ id: 'm1', timestamp: new Date(), attempts: 1, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env as Bindings, ctx);
    const result = await getQueueResult(batch, ctx);
    const [attempt] = await withDb(config(env as Bindings), (db) =>
      db
        .select()
        .from(webhookDeliveries)
        .where(and(eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.eventId, eventId))),
    );
    return { acked: result.explicitAcks.includes('m1'), retried: result.retryMessages.length > 0, attempt, tok: made.tok };
  }

  it.each([
    'private.hooks.test',
    'metadata.hooks.test',
    'loopback.hooks.test',
    'mixed.hooks.test',
    'v6-loopback.hooks.test',
    'v6-mapped.hooks.test',
  ])('refuses %s, which resolves to a private address, and sends nothing', async (host) => {
    const { acked, attempt, tok } = await deliver(host);
    expect(acked).toBe(true);
    expect(attempt).toMatchObject({ outcome: 'refused', error: 'private_address', httpStatus: null });
    // What the subscriber sees: the outcome and its class.
    const log = await call<Record<string, unknown>[]>('GET', `/api/v1/webhooks/${attempt?.webhookId}/deliveries`, {
      token: tok,
    });
    expect(log.body?.data).toEqual([
      {
        eventId: attempt?.eventId,
        eventType: 'desktop.running',
        attempt: 1,
        outcome: 'refused',
        reason: 'private_address',
        at: expect.any(String),
      },
    ]);
  });

  it.each(['empty.hooks.test', 'nowhere.hooks.test'])('tries %s again later: a name without addresses may yet get some', async (host) => {
    const { acked, retried, attempt } = await deliver(host);
    expect([acked, retried]).toEqual([false, true]);
    expect(attempt).toMatchObject({ outcome: 'failed', error: 'unresolvable' });
  });
});
