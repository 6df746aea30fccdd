/** A user's (or a service's) limit of active desktops, as its UserAccount Durable Object keeps it and the admin API answers it. */
import { z } from './zod';

export const QuotaSchema = z.object({
  maxDesktops: z.number(),
  /** An admin set the limit (or the service's configuration did); false: the default. */
  custom: z.boolean(),
  /** Desktops not DELETED. */
  active: z.number(),
});
export type Quota = z.infer<typeof QuotaSchema>;
