/**
 * Consumer of the events queue: audit records go to Postgres; desktop events are fanned
 * out to the webhooks queue, one message per matching subscription, with the body fixed
 * now so every retry signs the same bytes. System-initiated transitions (idle stop,
 * session limit, expiry, watchdog, reconciliation) are audited here too.
 */
import { withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { insertAudit, subscribersFor } from '../../src/db/queries';
import { type Bindings, config } from '../../src/env';
import type { DesktopEvent } from '../../src/schemas/events';
import { type AuditRecord, EventsMessageSchema, type WebhookDelivery } from '../../src/schemas/jobs';

export async function consumeEvents(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
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
      for (const { msg, event } of events) {
        const subs = await subscribersFor(db, event.data.desktop);
        const body = JSON.stringify(event);
        const deliveries: WebhookDelivery[] = subs
          .filter((s) => (JSON.parse(s.eventTypes) as string[]).includes(event.type))
          .map((s) => ({ webhookId: s.id, eventId: event.id, eventType: event.type, body }));
        if (deliveries.length > 0) await env.WEBHOOKS.sendBatch(deliveries.map((d) => ({ body: d, contentType: 'json' as const })));
        msg.ack();
      }
    });
    for (const m of batch.messages) m.ack();
  } catch (err) {
    // Postgres or the queue is out of reach: everything not yet acknowledged comes back.
    console.warn(JSON.stringify({ msg: 'events batch will be retried', error: describeDbError(err) }));
    batch.retryAll({ delaySeconds: 5 });
  }
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
