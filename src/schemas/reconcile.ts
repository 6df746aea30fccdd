/** A site's reconciliation report: what workers/reconcile/reconcile.ts found, its site hub keeps, and the admin API answers. */
import { z } from './zod';

export const RemovalSchema = z.enum(['sent', 'waiting for grace period', 'bridge offline', 'awaiting confirmation']);
export type Removal = z.infer<typeof RemovalSchema>;

export const ReconcileReportSchema = z
  .object({
    /** Names this report for a confirmation. */
    id: z.string(),
    siteId: z.string(),
    at: z.string(),
    /** Why nothing was checked (the bridge is offline), if so. */
    skipped: z.string().optional(),
    inventory: z.object({ vms: z.number(), connections: z.number(), sessions: z.number(), takenAt: z.string() }).optional(),
    /** Desktops whose leftovers exist at the site although the desktop does not. */
    orphans: z.array(
      z.object({
        desktopId: z.string(),
        vms: z.array(z.number()),
        connections: z.array(z.string()),
        session: z.boolean(),
        removal: RemovalSchema,
      }),
    ),
    /** Leftovers named like a desktop's but without this deployment's marks: never touched. */
    foreign: z.number(),
    /** Set when more orphans were due than RECONCILE_MAX_REMOVALS allows at once: nothing was removed. */
    confirmation: z.object({ needed: z.number(), limit: z.number() }).optional(),
    /** Desktops whose state was corrected from what the site has. */
    corrected: z.array(z.object({ desktopId: z.string(), outcome: z.enum(['vm_missing', 'vm_stopped_externally']) })),
    checked: z.number(),
  })
  .openapi('ReconcileReport');
export type ReconcileReport = z.infer<typeof ReconcileReportSchema>;
