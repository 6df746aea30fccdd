/**
 * Consumer of the events queue: audit records go to Postgres; desktop events are fanned
 * out to the webhooks queue, one message per matching subscription, with the body fixed
 * now so every retry signs the same bytes. System-initiated transitions (idle stop,
 * session limit, expiry, watchdog, reconciliation) are audited here too.
 *
 * Nothing here may be lost to a database outage: a batch Postgres cannot take is retried
 * with a backoff that outlasts an outage of hours (wrangler.toml: max_retries 100, up to
 * two minutes apart), then goes to the dead-letter queue, whose consumer is this same
 * function at a slower pace. Audit records are idempotent by id; a webhook event that is
 * fanned out twice reaches its subscribers under the same X-Webhook-Id.
 */
import { eq } from 'drizzle-orm';
import { type Db, withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { insertAudit, subscribersForEach } from '../../src/db/queries';
import { webhooks } from '../../src/db/schema';
import { type Bindings, type Config, config } from '../../src/env';
import { encryptSecret, isEncrypted } from '../../src/lib/secret-box';
import type { DesktopEvent } from '../../src/schemas/events';
import { type AuditRecord, EventsMessageSchema, type WebhookDelivery } from '../../src/schemas/jobs';
import { retryDelaySeconds } from './jobs';

/** Cloudflare Queues' limits on one sendBatch: 100 messages, 256 KB in all (kept well under). */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 200_000;

export const consumeEvents = (batch: MessageBatch<unknown>, env: Bindings) => consume(batch, env, { baseSeconds: 5, capSeconds: 120 });

/** The dead-letter queue's consumer: the same work, tried every ten minutes for as long as its own retries last. */
export const consumeDeadEvents = (batch: MessageBatch<unknown>, env: Bindings) =>
  consume(batch, env, { baseSeconds: 600, capSeconds: 600 });

async function consume(batch: MessageBatch<unknown>, env: Bindings, backoff: { baseSeconds: number; capSeconds: number }): Promise<void> {
  const cfg = config(env);
  const audits: AuditRecord[] = [];
  const events: { msg: Message<unknown>; event: DesktopEvent }[] = [];
  for (const msg of batch.messages) {
    const parsed = EventsMessageSchema.safeParse(msg.body);
    if (!parsed.success) {
      console.error(JSON.stringify({ msg: 'malformed events message dropped', id: msg.id }));
      msg.ack();
      continue;
    }
    if (parsed.data.kind === 'audit') audits.push(parsed.data.record);
    else {
      events.push({ msg, event: parsed.data.event });
      const system = systemAudit(parsed.data.event);
      if (system) audits.push(system);
    }
  }
  try {
    await withDb(cfg, async (db) => {
      await insertAudit(db, audits);
      if (events.length === 0) return;
      // One query for the whole batch's subscribers; a secret sealed for one event is reused by the next.
      const subscribers = await subscribersForEach(
        db,
        events.map((e) => e.event.data.desktop),
      );
      const sealed = new Map<string, string>();
      for (const { msg, event } of events) {
        await fanOut(db, cfg, env, event, subscribers(event.data.desktop), sealed);
        msg.ack();
      }
    });
    for (const m of batch.messages) m.ack();
  } catch (err) {
    // Postgres or the queue is out of reach: everything not yet acknowledged comes back, later each time.
    console.warn(JSON.stringify({ msg: 'events batch will be retried', error: describeDbError(err) }));
    for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts, backoff.baseSeconds, backoff.capSeconds) });
  }
}

/** One delivery message per matching subscription, sent in batches within the queue's limits. */
async function fanOut(
  db: Db,
  cfg: Config,
  env: Bindings,
  event: DesktopEvent,
  subs: { id: string; eventTypes: string; url: string; secret: string }[],
  sealed: Map<string, string>,
): Promise<void> {
  const body = JSON.stringify(event);
  const deliveries: WebhookDelivery[] = [];
  for (const s of subs) {
    if (!(JSON.parse(s.eventTypes) as string[]).includes(event.type)) continue;
    const secret = sealed.get(s.id) ?? (await stored(db, cfg, s));
    sealed.set(s.id, secret);
    deliveries.push({ webhookId: s.id, eventId: event.id, eventType: event.type, body, url: s.url, secret });
  }
  let chunk: WebhookDelivery[] = [];
  let bytes = 0;
  const flush = async () => {
    if (chunk.length > 0) await env.WEBHOOKS.sendBatch(chunk.map((d) => ({ body: d, contentType: 'json' as const })));
    chunk = [];
    bytes = 0;
  };
  for (const d of deliveries) {
    const size = JSON.stringify(d).length;
    if (chunk.length === BATCH_MESSAGES || bytes + size > BATCH_BYTES) await flush();
    chunk.push(d);
    bytes += size;
  }
  await flush();
}

/** The subscription's secret as it travels and rests: encrypted; a row stored before encryption is encrypted now. */
async function stored(db: Db, cfg: Config, s: { id: string; secret: string }): Promise<string> {
  if (isEncrypted(s.secret)) return s.secret;
  const sealed = await encryptSecret(cfg, s.secret);
  await db.update(webhooks).set({ secret: sealed }).where(eq(webhooks.id, s.id));
  return sealed;
}

/** A transition made by the system (not through the API, which audits itself) as an audit record. */
function systemAudit(event: DesktopEvent): AuditRecord | null {
  const t = event.data.transition;
  if (event.type !== 'desktop.status_changed' || !t || !t.actor.startsWith('system:')) return null;
  return {
    id: `${event.id}-audit`,
    at: t.at,
    actor: t.actor,
    role: 'system',
    action: `desktop.${t.event}`,
    target: event.data.desktop.id,
    sourceIp: null,
    requestId: null,
    outcome: `${t.from ?? 'new'} → ${t.to}`,
    details: { reason: t.reason },
  };
}
