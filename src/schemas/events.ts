/**
 * Desktop events: what webhooks deliver and the events queue carries. A receiver
 * deduplicates by `id` (also sent as X-Webhook-Id); `createdAt` is when it happened.
 */
import { z } from './zod';
import { DesktopSchema, TransitionRecordSchema, WarningKindSchema } from './desktop';

export const EVENT_TYPES = [
  'desktop.status_changed',
  'desktop.running',
  'desktop.stopped',
  'desktop.failed',
  'desktop.deleted',
  'desktop.idle_warning',
  'desktop.session_limit_warning',
  'desktop.expiry_warning',
  'desktop.snapshot_created',
  'desktop.snapshot_deleted',
  'desktop.snapshot_restored',
  'desktop.snapshot_failed',
  /** A rebuild finished: the desktop runs on a new VM from its template (`data.transition` is its last step). */
  'desktop.rebuilt',
] as const;
export const EventTypeSchema = z.enum(EVENT_TYPES);
export type EventType = z.infer<typeof EventTypeSchema>;

export const DesktopEventSchema = z.object({
  id: z.string(),
  type: EventTypeSchema,
  createdAt: z.string(),
  data: z.object({
    desktop: DesktopSchema,
    /** For status events: the transition. */
    transition: TransitionRecordSchema.optional(),
    /** For warnings: when the stop (or the deletion, for expiry) will happen unless something changes. */
    warning: z.object({ kind: WarningKindSchema, at: z.string() }).optional(),
    /** For snapshot events: which snapshot, what was done to it, and for a failure the bridge's reason. */
    snapshot: z.object({ name: z.string(), operation: z.enum(['take', 'delete', 'restore']), error: z.string().optional() }).optional(),
  }),
});
export type DesktopEvent = z.infer<typeof DesktopEventSchema>;
