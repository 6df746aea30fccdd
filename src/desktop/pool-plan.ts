/**
 * A warm pool's members and what the replenisher does next, pure (issue 13). A member is a
 * desktop made for the pool and never used: it is built towards one of two tiers, running
 * (a claim answers at once) or stopped (a claim starts it: no CPU or RAM while it waits).
 * The replenisher compares the members with the target (./pool-sizing.ts) and plans
 * creates, starts, stops and destroys, within the site's free capacity; a member that went
 * bad is destroyed, never handed out. A claimed member leaves the pool for good: on delete
 * it is destroyed, so nobody gets a desktop someone else has used.
 */
import type { Template } from '../schemas/template';
import type { PoolTarget } from './pool-sizing';

export type PoolTier = 'running' | 'stopped';

/** Where a member is: being built or moved towards its tier, ready in it, or broken. */
export type MemberPhase = 'building' | 'ready' | 'moving' | 'failed';

export interface PoolMember {
  desktopId: string;
  /** The tier it is in, or is being built or moved towards. */
  tier: PoolTier;
  phase: MemberPhase;
  /** When it entered this phase (ms since the epoch): the oldest ready member is handed out first. */
  since: number;
  /** What it was built from (memberBuild of its template then); null for members recorded before builds were, taken as current. */
  build?: string | null;
}

/**
 * What a member is built from, as one string: the template's fields that decide the machine a claimer gets and its
 * policies. After a template is edited, a member whose build differs was made from the older version: it is never
 * handed out and is replaced. The name is left out: renaming a template does not rebuild its pool.
 */
export function memberBuild(t: Template): string {
  const { defaultPlan, protocol, backend, gpuSlots, vmTemplate, image, storageGb, idleTimeoutMinutes, maxSessionMinutes } = t;
  return JSON.stringify([defaultPlan, protocol, backend, gpuSlots, vmTemplate, image, storageGb, idleTimeoutMinutes, maxSessionMinutes]);
}

/** Whether `m` was built from an older version of the template than the one whose build is `build`. */
export const isOutdated = (m: PoolMember, build: string) => m.build != null && m.build !== build;

export interface ReplenishPlan {
  /** New members to build, by tier. */
  create: { running: number; stopped: number };
  /** Stopped members to start into the running tier (quicker than a clone). */
  start: string[];
  /** Running members to stop into the stopped tier. */
  stop: string[];
  destroy: string[];
  /** Creates the site's capacity did not allow this time. */
  deferred: number;
}

const byAge = (a: PoolMember, b: PoolMember) => a.since - b.since || a.desktopId.localeCompare(b.desktopId);

/** The member a claim takes: the longest-ready running one, else the longest-ready stopped one; null is a miss. */
export function memberToClaim(members: readonly PoolMember[]): PoolMember | null {
  const ready = members.filter((m) => m.phase === 'ready').sort(byAge);
  return ready.find((m) => m.tier === 'running') ?? ready.find((m) => m.tier === 'stopped') ?? null;
}

/**
 * What to do to bring `members` to `target`. Members counted in a tier are those ready in it
 * or on their way (built or moved towards it), so a plan repeated before they arrive asks
 * for nothing more. `freeSlots` is how many more desktops the site can take now.
 */
export function planReplenish(target: PoolTarget, members: readonly PoolMember[], freeSlots: number): ReplenishPlan {
  const plan: ReplenishPlan = { create: { running: 0, stopped: 0 }, start: [], stop: [], destroy: [], deferred: 0 };
  const alive = members.filter((m) => {
    if (m.phase !== 'failed') return true;
    plan.destroy.push(m.desktopId);
    return false;
  });
  const tier = (t: PoolTier) => alive.filter((m) => m.tier === t);
  // Only members at rest can be moved or removed; one on its way is left to arrive.
  const atRest = (t: PoolTier) =>
    tier(t)
      .filter((m) => m.phase === 'ready')
      .sort(byAge);

  let running = tier('running').length;
  let stopped = tier('stopped').length;
  const idleStopped = atRest('stopped');
  const idleRunning = atRest('running').reverse(); // surplus: the newest go first, the oldest are claimed first

  // Running tier short: start stopped members first, then build.
  while (running < target.running && idleStopped.length) {
    const m = idleStopped.shift() as PoolMember;
    plan.start.push(m.desktopId);
    running++;
    stopped--;
  }
  // Running tier over: stop the surplus into a short stopped tier, destroy the rest.
  while (running > target.running && idleRunning.length) {
    const m = idleRunning.shift() as PoolMember;
    if (stopped < target.stopped) {
      plan.stop.push(m.desktopId);
      stopped++;
    } else plan.destroy.push(m.desktopId);
    running--;
  }
  // Stopped tier over: destroy the newest.
  idleStopped.reverse();
  while (stopped > target.stopped && idleStopped.length) {
    plan.destroy.push((idleStopped.shift() as PoolMember).desktopId);
    stopped--;
  }

  // Build what is still missing, the running tier first, within the site's capacity.
  let room = Math.max(0, freeSlots);
  const build = (want: number) => {
    const n = Math.min(want, room);
    room -= n;
    plan.deferred += want - n;
    return n;
  };
  plan.create.running = build(Math.max(0, target.running - running));
  plan.create.stopped = build(Math.max(0, target.stopped - stopped));
  return plan;
}
