/**
 * The create route's way to a warm pool (issue 13): which pool serves a template at a
 * site, read from the pool directory through a short per-isolate cache (a create must
 * not wait on one object that every create asks), and a claim that asks one shard at
 * random and, on a miss, the next one, so a pool split over shards answers like one.
 */
import type { Bindings } from '../env';
import type { Desktop } from '../schemas/desktop';
import { type Pool, poolShardName } from '../schemas/pool';
import { type Result, ok } from './result';

/** A pool made, changed or removed is seen by creates in other isolates within this long. */
export const POOL_LOOKUP_TTL_MS = 5_000;

const lookups = new Map<string, { pool: Pool | null; until: number }>();

export const poolDirectory = (env: Bindings) => env.POOL_DIRECTORY.getByName('all');

export async function poolFor(env: Bindings, templateId: string, siteId: string): Promise<Pool | null> {
  const key = `${templateId}@${siteId}`;
  const cached = lookups.get(key);
  if (cached && cached.until > Date.now()) return cached.pool;
  // The directory out of reach: the create goes cold rather than failing (and asks again next time).
  const pool = await poolDirectory(env)
    .forTemplate(templateId, siteId)
    .catch(() => undefined);
  if (pool === undefined) return null;
  lookups.set(key, { pool, until: Date.now() + POOL_LOOKUP_TTL_MS });
  return pool;
}

/** This isolate sees a pool change at once (the admin routes call it after a change). */
export function forgetPoolLookups(): void {
  lookups.clear();
}

type ShardClaim = Parameters<ReturnType<Bindings['WARM_POOL']['getByName']>['claim']>[0];

/**
 * A ready member for the claimer, or null on a miss (counted once, at the first shard asked). A shard that cannot
 * be asked now answers as a miss: the create goes cold rather than failing.
 */
export async function claimFromPool(env: Bindings, pool: Pool, claim: ShardClaim): Promise<Result<Desktop | null>> {
  const first = Math.floor(Math.random() * pool.shards);
  const ask = (i: number, countMiss: boolean) =>
    env.WARM_POOL.getByName(poolShardName(pool.id, (first + i) % pool.shards))
      .claim(claim, countMiss)
      .catch(() => ok(null));
  const r = await ask(0, true);
  if (!r.ok || r.value || pool.shards === 1) return r;
  return ask(1, false);
}
