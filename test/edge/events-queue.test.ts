/**
 * The events queue: nothing recorded is lost to a database outage, and an event reaches
 * every subscription, however many there are, within the queue's limits per send.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { withDb } from '../../src/db/client';
import { auditLog, webhooks } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import worker from '../../workers/index';
import { randomId } from '../../src/lib/ids';
import { encryptSecret } from '../../src/lib/secret-box';
import type { DesktopEvent } from '../../src/schemas/events';
import type { EventsMessage, EventsMessageSchema, WebhookDelivery } from '../../src/schemas/jobs';
import type { z } from '../../src/schemas/zod';
import { desktopFor } from './builders';
import { api, token, uniqueUser } from './helpers';
import { bindingsWith } from './security/support';

const cfg = () => config(env as Bindings);

function eventFor(userId: string): DesktopEvent {
  const desktop = { ...desktopFor('events-site', userId), status: 'RUNNING' as const };
  return { id: randomId('ev'), type: 'desktop.running', createdAt: new Date().toISOString(), data: { desktop } };
}

async function consume(queue: string, messages: EventsMessage[], bindings: Bindings) {
  const batch = createMessageBatch<EventsMessage>(
    queue,
    messages.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return getQueueResult(batch, ctx);
}

describe('events queue', () => {
  it('fans an event out to more subscriptions than one send may carry', async () => {
    const user = uniqueUser('fan-out');
    const secret = await encryptSecret(cfg(), 'whsec_fan-out');
    const now = new Date().toISOString();
    // More than WEBHOOK_MAX_PER_OWNER lets one owner make: the limit per send is what is tested here.
    await withDb(cfg(), (db) =>
      db.insert(webhooks).values(
        Array.from({ length: 230 }, (_, i) => ({
          id: randomId('wh'),
          ownerRole: 'user',
          ownerSub: user,
          url: `https://hooks.example.com/fan-out/${i}`,
          eventTypes: JSON.stringify(['desktop.running']),
          secret,
          createdAt: now,
        })),
      ),
    );
    // Records what is sent, held to Cloudflare Queues' limits per sendBatch (100 messages, 256 KB).
    const sent: WebhookDelivery[] = [];
    const recorder = {
      send: async () => {},
      sendBatch: async (batch: { body: WebhookDelivery }[]) => {
        if (batch.length > 100) throw new Error(`sendBatch of ${batch.length} messages: at most 100`);
        if (JSON.stringify(batch).length > 256_000) throw new Error('sendBatch over 256 KB');
        sent.push(...batch.map((m) => m.body));
      },
    };
    const event = eventFor(user);
    const result = await consume('cdaas-events', [{ kind: 'event', event }], bindingsWith({ WEBHOOKS: recorder }));
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toContain('m0');
    // (Admins' subscriptions of other test files get it too.)
    const mine = sent.filter((d) => d.url?.startsWith('https://hooks.example.com/fan-out/'));
    expect(mine).toHaveLength(230);
    expect(new Set(mine.map((d) => d.webhookId)).size).toBe(230);
    // Each delivery carries its target and the secret as stored (encrypted): no database needed to deliver it.
    for (const d of mine)
      expect(d).toMatchObject({ eventId: event.id, url: expect.stringMatching(/^https:\/\/hooks\.example\.com\//), secret });
  });

  it('keeps every event and audit record while Postgres is unreachable, for the next try', async () => {
    const down = bindingsWith({ DATABASE_URL: 'postgres://nobody:nothing@127.0.0.1:9/none', DB_WS_PROXY: '127.0.0.1:9/v1' });
    const audit: EventsMessage = {
      kind: 'audit',
      record: {
        id: randomId('au'),
        at: new Date().toISOString(),
        actor: 'x',
        role: 'user',
        action: 'desktop.create',
        target: null,
        sourceIp: null,
        requestId: null,
        outcome: '202',
        details: null,
      },
    };
    for (const queue of ['cdaas-events', 'cdaas-events-dlq']) {
      const result = await consume(queue, [{ kind: 'event', event: eventFor(uniqueUser('outage')) }, audit], down);
      expect(result.explicitAcks, queue).toEqual([]);
      expect(result.retryMessages.map((m) => m.msgId).sort(), queue).toEqual(['m0', 'm1']);
    }
  });

  it('stores an audit record queued without details, as the release before sent them', async () => {
    const id = randomId('au');
    const queued: z.input<typeof EventsMessageSchema> = {
      kind: 'audit',
      record: {
        id,
        at: new Date().toISOString(),
        actor: 'x',
        role: 'user',
        action: 'desktop.create',
        target: null,
        sourceIp: null,
        requestId: null,
        outcome: '202',
      },
    };
    const result = await consume('cdaas-events', [queued as EventsMessage], env as Bindings);
    expect(result.retryMessages).toEqual([]);
    const rows = await withDb(cfg(), (db) => db.select().from(auditLog).where(eq(auditLog.id, id)));
    expect(rows).toEqual([expect.objectContaining({ id, action: 'desktop.create', details: null })]);
  });

  it('limits the subscriptions one owner may have', async () => {
    const tok = await token(uniqueUser('limit'));
    const max = cfg().WEBHOOK_MAX_PER_OWNER;
    for (let i = 0; i < max; i++) {
      expect((await api('POST', '/api/v1/webhooks', { token: tok, body: { url: `https://hooks.example.com/limit/${i}` } })).status).toBe(
        201,
      );
    }
    const over = await api('POST', '/api/v1/webhooks', { token: tok, body: { url: 'https://hooks.example.com/limit/over' } });
    expect(over.status).toBe(409);
    expect(over.body?.error?.code).toBe('QUOTA_EXCEEDED');
    expect(over.body?.message).toContain(String(max));
  });
});
