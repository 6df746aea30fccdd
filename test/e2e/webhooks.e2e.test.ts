/**
 * Webhooks end to end, with the real processes and a local receiver: every delivery is
 * signed, a desktop's running → idle_warning → stopped arrive, and a receiver that
 * fails its first answers still gets each event exactly once (deduplicated by id).
 */
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import { verifySignature } from '../../src/lib/webhook-signature';
import type { Desktop } from '../../src/schemas/desktop';
import type { DesktopEvent } from '../../src/schemas/events';
import { edgeClient, until } from './support/edge-client';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

let stack: Stack;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
/** The receiver answers 500 to this many requests first. */
let failuresLeft = 3;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      const answered = failuresLeft-- > 0 ? 500 : 200;
      received.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  stack = await startStack({
    edgeVars: {
      // The receiver is local: http, and a loopback address, each allowed only by this configuration.
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_PRIVATE_TARGETS: '127.0.0.0/8',
      WEBHOOK_RETRY_BASE_SECONDS: '1',
      WARNING_LEAD_MINUTES: '0.05',
    },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  receiver?.close();
});

const call = edgeClient(() => stack.edgeUrl);

describe('webhooks', () => {
  it('delivers signed events, running → idle_warning → stopped, each exactly once despite a failing receiver', async () => {
    const admin = await stack.token('hook-admin', ['admin']);
    const sub = await call<{ id: string; secret: string; events: string[] }>('POST', '/api/v1/webhooks', admin, {
      url: receiverUrl,
      events: ['desktop.running', 'desktop.idle_warning', 'desktop.stopped'],
    });
    expect(sub.status).toBe(201);
    const { id: webhookId, secret } = sub.body.data;
    expect(secret).toMatch(/^whsec_/);
    // The secret is shown once: listing does not repeat it.
    const list = await call<Record<string, unknown>[]>('GET', '/api/v1/webhooks', admin);
    expect(JSON.stringify(list.body)).not.toContain(secret);

    // An admin may ask for any idle timeout: 9 s, so the warning (3 s lead) and the stop come quickly.
    const created = await call<Desktop>('POST', '/api/v1/desktops', admin, {
      userId: 'hook-user',
      plan: 'BASIC',
      idleTimeoutMinutes: 0.15,
    });
    expect(created.status).toBe(202);
    const desktopId = created.body.data.id;

    const accepted = () => received.filter((r) => r.answered === 200);
    const eventsOf = () =>
      accepted()
        .map((r) => JSON.parse(r.body) as DesktopEvent)
        .filter((e) => e.data.desktop.id === desktopId);
    await until('the stopped event', () => (eventsOf().some((e) => e.type === 'desktop.stopped') ? true : undefined), {
      timeoutMs: 90_000,
    });

    for (const r of received) {
      expect(await verifySignature(secret, r.body, String(r.headers['x-webhook-signature']))).toBe(true);
      expect(r.headers['x-webhook-id']).toBe((JSON.parse(r.body) as DesktopEvent).id);
    }
    expect(received.slice(0, 3).map((r) => r.answered)).toEqual([500, 500, 500]);
    const ids = accepted().map((r) => String(r.headers['x-webhook-id']));
    expect(new Set(ids).size).toBe(ids.length);
    const ordered = eventsOf().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    expect(ordered.map((e) => e.type)).toEqual(['desktop.running', 'desktop.idle_warning', 'desktop.stopped']);
    const warning = ordered[1]?.data.warning;
    expect(warning?.kind).toBe('idle');
    expect(ordered[2]?.data.desktop.stopReason).toMatch(/^No activity for 0.15 minutes/);

    // Every attempt is in the subscription's delivery log: its outcome and reason class, not the receiver's answer or timing.
    const log = await call<Record<string, unknown>[]>('GET', `/api/v1/webhooks/${webhookId}/deliveries`, admin);
    const failed = log.body.data.filter((a) => a.outcome === 'failed');
    expect(failed.map((a) => a.reason)).toEqual(['http_status', 'http_status', 'http_status']);
    for (const a of log.body.data) expect(Object.keys(a).sort()).toEqual(['at', 'attempt', 'eventId', 'eventType', 'outcome', 'reason']);
    expect(log.body.data.filter((a) => a.outcome === 'delivered').length).toBe(accepted().length);
    // A forged signature does not verify.
    expect(await verifySignature('whsec_other', received[0]?.body ?? '', String(received[0]?.headers['x-webhook-signature']))).toBe(false);
  }, 120_000);

  it('audits lifecycle actions with actor, role, target, request id and outcome', async () => {
    const admin = await stack.token('hook-admin', ['admin']);
    const page = await until('audit records', async () => {
      const r = await call<{
        items: { action: string; actor: string; role: string; target: string | null; requestId: string | null; outcome: string }[];
      }>('GET', '/api/v1/admin/audit?action=desktop.create', admin);
      return r.body.data.items.length > 0 ? r.body.data : undefined;
    });
    expect(page.items[0]).toMatchObject({ action: 'desktop.create', actor: 'hook-admin', role: 'admin', outcome: '202' });
    expect(page.items[0]?.target).toMatch(/^dk/);
    expect(page.items[0]?.requestId).toBeTruthy();
    const idle = await call<{ items: { actor: string }[] }>('GET', '/api/v1/admin/audit?action=desktop.idle_timeout', admin);
    expect(idle.body.data.items[0]?.actor).toBe('system:idle');
  });
});
