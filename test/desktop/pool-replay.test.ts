/**
 * The warm pool replay the bench prints (bench/pool-replay.ts): its bookkeeping, so the hit
 * rates it reports for the demand rule and the fixed size of the same cost can be trusted.
 */
import { describe, expect, it } from 'vitest';
import { type Arrival, fixedSizing, replayDay, runPoolReplaySimulation } from '../../bench/pool-replay';
import { PoolSizingSchema } from '../../src/schemas/pool-sizing';

const at = (hhmmss: string) => {
  const [h, m, s] = hhmmss.split(':').map(Number);
  return (h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0);
};
const arrival = (hhmmss: string): Arrival => ({ at: at(hhmmss), coldSeconds: 16, sessionSeconds: 3600 });
const { runMs: _ms, ...seed42 } = runPoolReplaySimulation(42);

describe('the warm pool replay', () => {
  it('gives the same day and figures for a seed, and another day for another seed', () => {
    const { runMs: _again, ...again } = runPoolReplaySimulation(42);
    expect(again).toEqual(seed42);
    expect(runPoolReplaySimulation(7).day.arrivalsByHour).not.toEqual(seed42.day.arrivalsByHour);
  });

  it('counts every arrival once, as a hit, a warm hit or a miss, and never hands a member out twice', () => {
    expect(seed42.day.arrivals).toBeGreaterThan(200);
    for (const c of seed42.comparisons) {
      for (const p of [c.demand, c.fixedBelow, c.fixedAbove]) {
        expect(p.arrivals).toBe(seed42.day.arrivals);
        expect(p.hits + p.warmHits + p.misses).toBe(p.arrivals);
        expect(p.missesByHour.reduce((a, b) => a + b, 0)).toBe(p.misses);
        expect(p.duplicateClaims).toBe(0);
      }
    }
  });

  it('compares the demand rule with the fixed sizes just below and above its cost', () => {
    for (const c of seed42.comparisons) {
      expect(c.fixedAbove.running - c.fixedBelow.running).toBe(1);
      expect(c.fixedBelow.idleRunningMembersAvg).toBeLessThan(c.demand.idleRunningMembersAvg);
      expect(c.fixedAbove.idleRunningMembersAvg).toBeGreaterThanOrEqual(c.demand.idleRunningMembersAvg);
      expect(Math.abs(c.fixedAtSameCost.idleRunningMembersAvg - c.demand.idleRunningMembersAvg)).toBeLessThanOrEqual(0.001);
      expect(c.fixedAtSameCost.hitRatePct).toBeGreaterThanOrEqual(c.fixedBelow.hitRatePct);
      expect(c.fixedAtSameCost.hitRatePct).toBeLessThanOrEqual(c.fixedAbove.hitRatePct);
    }
  });

  it('never lets the replenisher build past the cap or the site’s capacity', () => {
    for (const c of seed42.comparisons) {
      expect(c.demand.peakRunningTier).toBeLessThanOrEqual(c.demandSizing.cap);
      expect(c.fixedAbove.peakRunningTier).toBeLessThanOrEqual(c.fixedAbove.running);
      for (const p of [c.demand, c.fixedBelow, c.fixedAbove]) expect(p.peakSiteDesktops).toBeLessThanOrEqual(seed42.site.capacity);
    }
    // Twenty misses in a minute ask the demand rule for far more than the cap of 3.
    const rush = PoolSizingSchema.parse({ running: 0, demand: { windowMinutes: 15, perMiss: 5, maxBoost: 50 }, cap: 3 });
    const day = replayDay(
      rush,
      Array.from({ length: 20 }, (_, i) => arrival(`08:00:${String(i * 3).padStart(2, '0')}`)),
    );
    expect(day.peakRunningTier).toBe(3);
  });

  it('answers a claim from a ready member once, and misses until the replenisher has built the next', () => {
    // A pool of one: 08:00:00 takes it, 08:00:01 finds the replacement still building (17 s), 08:00:20 gets it.
    const day = replayDay(fixedSizing(1, 0), [arrival('08:00:00'), arrival('08:00:01'), arrival('08:00:20')]);
    expect({ hits: day.hits, warmHits: day.warmHits, misses: day.misses, creates: day.creates }).toEqual({
      hits: 2,
      warmHits: 0,
      misses: 1,
      creates: 2,
    });
    expect(day.timeToDesktopP50Ms).toBe(500);
    expect(day.timeToDesktopP95Ms).toBe(16_000);
  });

  it('starts a stopped member for a claim when no running one is ready, quicker than the cold path', () => {
    const day = replayDay(fixedSizing(0, 1), [arrival('03:00:00'), arrival('03:00:05')]);
    expect({ hits: day.hits, warmHits: day.warmHits, misses: day.misses }).toEqual({ hits: 0, warmHits: 1, misses: 1 });
    expect(day.timeToDesktopP50Ms).toBe(12_500);
  });
});
