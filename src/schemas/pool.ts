/**
 * Warm pools (issue 13): ready desktops of one template at one site, built before anyone
 * asks, so a create for that template is answered by a desktop that is already RUNNING
 * (or STOPPED, in the tier that costs no CPU or RAM). How big a pool is at a moment is
 * ./pool-sizing.ts; what its replenisher does is src/desktop/pool-plan.ts.
 *
 * An unclaimed member is a desktop owned by its pool (`poolOwner`), made by the pool's
 * own actor (`poolActor`): it is listed in nobody's index, bills nobody, and only admins
 * see it. A claim makes it the claimer's for good; on delete it is destroyed, never
 * returned to the pool.
 */
import { PoolSizingSchema } from './pool-sizing';
import { z } from './zod';

export const PoolIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lower-case letters, digits and dashes, at most 40, starting with a letter or digit')
  .openapi({ example: 'win11-office' });

/** The owner of a pool's unclaimed members. */
export const poolOwner = (poolId: string) => `pool:${poolId}`;
/** Who builds, starts, stops and destroys a pool's members (the `createdBy` of a member). */
export const poolActor = (poolId: string) => `system:pool:${poolId}`;

/** The Durable Object of one shard of a pool (workers/warm-pool/warm-pool.ts). */
export const poolShardName = (poolId: string, shard: number) => `${poolId}#${shard}`;

/** Whether a desktop is a pool's unclaimed member (a user id that merely looks like a pool's is not: its creator must be the pool). */
export function isPoolMember(d: { userId: string; createdBy: string }): boolean {
  return d.createdBy.startsWith('system:pool:') && d.userId === poolOwner(d.createdBy.slice('system:pool:'.length));
}

export const PoolInputSchema = z
  .object({
    templateId: z.string().min(1).describe('The template the members are built from; a create for it is answered from the pool'),
    siteId: z.string().min(1).optional().describe('The site the members run at (default: the default site)'),
    sizing: PoolSizingSchema,
    shards: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(1)
      .describe('How many objects share the members, so that one pool is not one hot object at many claims per second'),
    paused: z.boolean().default(false).describe('A paused pool hands out what it has but builds nothing'),
  })
  .openapi('PoolInput');
export type PoolInput = z.infer<typeof PoolInputSchema>;

export const PoolSchema = PoolInputSchema.extend({
  id: PoolIdSchema,
  siteId: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
}).openapi('Pool');
export type Pool = z.infer<typeof PoolSchema>;

export const PoolMemberViewSchema = z.object({
  desktopId: z.string(),
  shard: z.number().int(),
  tier: z.enum(['running', 'stopped']),
  phase: z.enum(['building', 'ready', 'moving', 'failed']),
  since: z.string(),
});

export const PoolStatsSchema = z.object({
  /** Claims answered from the running tier (RUNNING at once). */
  hits: z.number().int(),
  /** Claims answered from the stopped tier (started for the claimer). */
  warmHits: z.number().int(),
  /** Creates that found no ready member and took the cold path. */
  misses: z.number().int(),
  /** Members destroyed because they went bad before anyone claimed them. */
  replaced: z.number().int(),
  /** How long a hit's claim took at the edge, over the last claims (ms). */
  claimP50Ms: z.number().nullable(),
  claimP95Ms: z.number().nullable(),
});
export type PoolStats = z.infer<typeof PoolStatsSchema>;

export const PoolViewSchema = PoolSchema.extend({
  target: z.object({ running: z.number().int(), stopped: z.number().int(), reasons: z.array(z.string()) }),
  members: z.array(PoolMemberViewSchema),
  stats: PoolStatsSchema,
}).openapi('PoolView');
export type PoolView = z.infer<typeof PoolViewSchema>;
