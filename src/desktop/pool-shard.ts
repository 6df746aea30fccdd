/**
 * A warm pool split over shards, pure (issue 13). A pool's members are shared out over
 * several objects so that one pool is not one hot object when many users claim at once:
 * each shard keeps its part of the sizes and its own members, and a claim asks one shard
 * (then another, on a miss). What a shard sees of a member, from the member's own
 * desktop, moves the member between the phases src/desktop/pool-plan.ts plans with.
 */
import type { DesktopStatus } from '../schemas/desktop';
import type { PoolSizing } from '../schemas/pool-sizing';
import type { PoolMember } from './pool-plan';

/** `n` shared out over `shards`: the first `n % shards` shards take one more. */
export const shareOf = (n: number, shard: number, shards: number) => Math.floor(n / shards) + (shard < n % shards ? 1 : 0);

/** One shard's part of a pool's sizing: every count shared out, so the shards together keep the pool's sizes. */
export function shardSizing(sizing: PoolSizing, shard: number, shards: number): PoolSizing {
  const share = (n: number) => shareOf(n, shard, shards);
  return {
    ...sizing,
    running: share(sizing.running),
    stopped: share(sizing.stopped),
    floor: share(sizing.floor),
    cap: share(sizing.cap),
    windows: sizing.windows.map((w) => ({
      ...w,
      running: share(w.running),
      stopped: w.stopped === undefined ? undefined : share(w.stopped),
    })),
    demand: sizing.demand ? { ...sizing.demand, maxBoost: share(sizing.demand.maxBoost) } : undefined,
  };
}

/** What the shard reads of a member's desktop: null when it does not exist (yet). */
export type MemberReading = { status: DesktopStatus; unclaimed: boolean; busy: boolean } | null;

/** A create this young may still be on its way to the desktop's object: not finding it is no reason to drop it. */
export const MEMBER_CREATE_GRACE_MS = 60_000;

/**
 * The member after what was read of it, or `gone` when it is no longer the pool's to track (claimed by
 * someone, deleted, never created). A settled member is ready in the tier it is in, whatever tier it was
 * meant for (a running member stopped by reconciliation is a stopped one now); one with work in progress
 * keeps what it was doing; a FAILED one is failed, for the replenisher to destroy and replace.
 */
export function observeMember(m: PoolMember, reading: MemberReading, now: number): PoolMember | 'gone' {
  if (!reading) return now - m.since > MEMBER_CREATE_GRACE_MS ? 'gone' : m;
  if (!reading.unclaimed || reading.status === 'DELETED') return 'gone';
  if (reading.status === 'FAILED') return m.phase === 'failed' ? m : { ...m, phase: 'failed', since: now };
  const settled = !reading.busy && (reading.status === 'RUNNING' || reading.status === 'STOPPED');
  if (!settled) return m.phase === 'ready' ? { ...m, phase: 'moving', since: now } : m;
  const tier = reading.status === 'RUNNING' ? 'running' : 'stopped';
  return m.phase === 'ready' && m.tier === tier ? m : { ...m, tier, phase: 'ready', since: now };
}
