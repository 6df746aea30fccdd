/** Messages on the jobs queue (edge → SiteHub → bridge) and its dead-letter queue. */
import { z } from 'zod';
import { CommandSchema } from './bridge-protocol';

export const JobMessageSchema = z.object({
  siteId: z.string().min(1),
  command: CommandSchema,
});
export type JobMessage = z.infer<typeof JobMessageSchema>;
