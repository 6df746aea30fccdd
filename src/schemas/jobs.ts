/** Messages on the jobs queue (edge → SiteHub → bridge) and its dead-letter queue. */
import { z } from './zod';
import { CommandSchema } from './bridge-protocol';
import { DesktopEventSchema } from './events';

export const JobMessageSchema = z.object({
  siteId: z.string().min(1),
  command: CommandSchema,
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

export const AUDIT_ROLES = ['user', 'admin', 'service', 'system', 'anonymous', 'embed'] as const;
export const AuditRoleSchema = z.enum(AUDIT_ROLES);
export type AuditRole = z.infer<typeof AuditRoleSchema>;

/**
 * One audit record (who did what to what, from where, with what outcome): what the events
 * queue carries to Postgres and what GET /api/v1/admin/audit answers. `details` may be absent
 * from messages queued before it was always sent; it reads as null then.
 */
export const AuditRecordSchema = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z.string(),
    role: AuditRoleSchema,
    action: z.string(),
    target: z.string().nullable(),
    sourceIp: z.string().nullable(),
    requestId: z.string().nullable(),
    outcome: z.string(),
    details: z.record(z.string(), z.unknown()).nullable().default(null),
  })
  .openapi('AuditRecord');
export type AuditRecord = z.infer<typeof AuditRecordSchema>;

/** Messages on the events queue: desktop events to fan out to webhooks, audit records to store. */
export const EventsMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('event'), event: DesktopEventSchema }),
  z.object({ kind: z.literal('audit'), record: AuditRecordSchema }),
]);
export type EventsMessage = z.infer<typeof EventsMessageSchema>;

/**
 * One webhook delivery; the body is fixed when the event is fanned out so every retry signs
 * the same bytes. It carries its target and the subscription's secret as stored (encrypted,
 * ../lib/secret-box), so a delivery needs no database: a Postgres outage does not hold it back.
 * Both are absent on messages queued by older releases, which read them from Postgres.
 */
export const WebhookDeliverySchema = z.object({
  webhookId: z.string(),
  eventId: z.string(),
  eventType: z.string(),
  body: z.string(),
  url: z.string().optional(),
  secret: z.string().optional(),
});
export type WebhookDelivery = z.infer<typeof WebhookDeliverySchema>;
