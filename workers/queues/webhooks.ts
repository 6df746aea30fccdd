/**
 * Webhook deliveries: one queue message per (subscription, event). A delivery is a
 * signed POST; a 2xx answer ends it, anything else (a redirect, which is never followed,
 * or a time-out) is retried with exponential backoff until the queue's last try, after
 * which the dead-letter consumer records it as dead. Before each POST the target is
 * checked again (../../src/webhooks/target): a host that resolves to a private address is
 * refused, and nothing is sent. Every attempt is logged in webhook_deliveries: the
 * subscriber sees its outcome and a reason class, never the remote's words or timing.
 *
 * A delivery carries its target and the (encrypted) secret, so a Postgres outage does not
 * hold it back: Postgres is asked whether the subscription still exists (an unsubscribe
 * drops deliveries in flight), and told about the attempts, whenever it answers.
 */
import { inArray } from 'drizzle-orm';
import { withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { webhookDeliveries, webhooks } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import { decryptSecret } from '../../src/lib/secret-box';
import { signatureHeader } from '../../src/lib/webhook-signature';
import { type DeliveryReason, checkAtDelivery } from '../../src/webhooks/target';
import { type WebhookDelivery, WebhookDeliverySchema } from '../../src/schemas/jobs';
import { retryDelaySeconds } from './jobs';

const TIMEOUT_MS = 10_000;
/** Tries before a delivery is dead: the first and wrangler.toml's max_retries (7) of cdaas-webhooks. */
const TRIES = 8;

type Attempt = typeof webhookDeliveries.$inferInsert;
type DeliveryOutcome = 'delivered' | 'failed' | 'refused' | 'dead';

export async function deliverWebhooks(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const cfg = config(env);
  const parsed = batch.messages.map((msg) => ({ msg, delivery: WebhookDeliverySchema.safeParse(msg.body) }));
  for (const { msg, delivery } of parsed) if (!delivery.success) msg.ack();
  const valid = parsed.flatMap(({ msg, delivery }) => (delivery.success ? [{ msg, d: delivery.data }] : []));
  if (valid.length === 0) return;

  let byId: Map<string, { url: string; secret: string; deletedAt: string | null }> | null = null;
  try {
    const subs = await withDb(cfg, (db) =>
      db
        .select({ id: webhooks.id, url: webhooks.url, secret: webhooks.secret, deletedAt: webhooks.deletedAt })
        .from(webhooks)
        .where(inArray(webhooks.id, [...new Set(valid.map((v) => v.d.webhookId))])),
    );
    byId = new Map(subs.map((s) => [s.id, s]));
  } catch (err) {
    console.warn(JSON.stringify({ msg: 'webhooks delivered without checking for unsubscribes', error: describeDbError(err) }));
  }
  const attempts: Attempt[] = [];
  await Promise.all(
    valid.map(async ({ msg, d }) => {
      const sub = byId?.get(d.webhookId);
      if (byId && (!sub || sub.deletedAt)) {
        msg.ack(); // unsubscribed meanwhile
        return;
      }
      const url = d.url ?? sub?.url;
      const stored = d.secret ?? sub?.secret;
      if (!url || !stored) {
        // A message of an older release, which names its subscription only, while Postgres is out of reach.
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, cfg.WEBHOOK_RETRY_BASE_SECONDS, 3600) });
        return;
      }
      const startedAt = new Date().toISOString();
      const target = await checkAtDelivery(new URL(url), cfg);
      if (!target.ok) {
        attempts.push(
          record(d, msg.attempts, target.final ? 'refused' : 'failed', startedAt, { status: null, reason: target.reason, ms: 0 }),
        );
        if (target.final) msg.ack();
        else msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, cfg.WEBHOOK_RETRY_BASE_SECONDS, 3600) });
        return;
      }
      const result = await post(url, await decryptSecret(cfg, stored), d);
      const delivered = result.reason === null;
      attempts.push(record(d, msg.attempts, delivered ? 'delivered' : 'failed', startedAt, result));
      if (delivered) msg.ack();
      else msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, cfg.WEBHOOK_RETRY_BASE_SECONDS, 3600) });
    }),
  );
  if (attempts.length === 0) return;
  await withDb(cfg, (db) => db.insert(webhookDeliveries).values(attempts)).catch((err: unknown) =>
    console.warn(JSON.stringify({ msg: 'could not log webhook attempts', error: describeDbError(err) })),
  );
}

/**
 * The last try failed too: record the delivery as dead (the subscriber sees it in its log).
 * While Postgres cannot take the record, the message waits in this queue (its own retries).
 */
export async function deadWebhooks(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const dead: Attempt[] = [];
  for (const msg of batch.messages) {
    const d = WebhookDeliverySchema.safeParse(msg.body);
    if (d.success) dead.push(record(d.data, TRIES, 'dead', new Date().toISOString(), { status: null, reason: 'gave_up', ms: 0 }));
  }
  try {
    if (dead.length) await withDb(config(env), (db) => db.insert(webhookDeliveries).values(dead));
    batch.ackAll();
  } catch (err) {
    console.warn(JSON.stringify({ msg: 'dead webhook deliveries will be recorded later', error: describeDbError(err) }));
    batch.retryAll({ delaySeconds: 300 });
  }
}

interface PostResult {
  status: number | null;
  /** null when delivered (2xx). */
  reason: DeliveryReason | null;
  ms: number;
}

async function post(url: string, secret: string, d: WebhookDelivery): Promise<PostResult> {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'cdaas-webhooks/1',
        'x-webhook-id': d.eventId,
        'x-webhook-event': d.eventType,
        'x-webhook-signature': await signatureHeader(secret, d.body),
      },
      body: d.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await res.body?.cancel();
    const reason = res.status >= 200 && res.status < 300 ? null : res.status >= 300 && res.status < 400 ? 'redirect' : 'http_status';
    return { status: res.status, reason, ms: Date.now() - started };
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    return { status: null, reason: timedOut ? 'timeout' : 'connection_failed', ms: Date.now() - started };
  }
}

/** One attempt for the log; `at` is when it started, so the log says nothing of how long the remote took. */
function record(d: WebhookDelivery, attempt: number, outcome: DeliveryOutcome, at: string, r: PostResult): Attempt {
  return {
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    attempt,
    outcome,
    // For operators querying Postgres; the subscriber's API shows the outcome and reason only.
    httpStatus: r.status,
    error: r.reason,
    durationMs: r.ms,
    at,
  };
}
