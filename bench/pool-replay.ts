/**
 * Warm pool replay for `npm run bench` (issue 13, "What it must show"): one working day of
 * desktop creates at one site for one template, replayed against the pool code itself
 * (src/desktop/pool-sizing.ts for the target, src/desktop/pool-plan.ts for the claim and the
 * replenisher's plan), once with a sized pool and once with a fixed size of the same average
 * cost. It measures how many creates a pool answers at once.
 *
 * Model. Arrivals are a Poisson process per minute over a weekday curve in Europe/Berlin
 * (quiet night, a ramp to ~60/h at 08:30–09:30, a lunch dip, an afternoon, an evening tail):
 * 321–355 a day on the seeds below. A create claims the longest-ready running member (a hit,
 * 0.5 s), else a stopped one (a warm hit: started, i.e. the cold path without its clone and
 * configure, ~12.6 s), else it misses: the cold path, log-normal with the measured p50
 * 16.1 s and p95 19.7 s, and the miss is what the demand rule counts. A claimed member leaves
 * the pool; its user keeps the desktop for a log-normal session (median 2.5 h) that holds
 * site capacity, as a cold-path desktop does. Every 30 s the replenisher asks poolTarget for
 * the target and planReplenish for the plan, within the site's free capacity (150 desktops;
 * the day peaks at 113–130 with the pool, so it never deferred a create): a new member is
 * ready 17 s later (27 s for the stopped tier: built, then shut down), a start takes 13 s, a
 * stop 10 s, a destroy is at once. Members never fail here. Both policies see the same
 * arrivals with the same draws and start the day full. The whole day again with every delay
 * but a hit's four times as long (×4) stands for real Proxmox, where a full clone and boot
 * takes about a minute.
 *
 * Cost is the time-average number of powered-on idle members: member-hours with the VM on
 * (running tier in any phase, a stopped-tier member while it is built or stopped) over the
 * day; a stopped member at rest counts 0 (no CPU or RAM; its disk is not counted). The fixed
 * policy has the sized policy's stopped tier (2) and a constant running size, found by
 * replaying every integer size up to the first that costs at least as much; its figure "at
 * the same cost" is linear between that size and the one below (both sizes' own figures are
 * in the result too).
 *
 * Two sized configurations, each as an operator might enter it: "office hours" (1 running
 * outside Mon–Fri 07:30–18:00, 4 inside, 2 stopped, demand +1 per miss in 15 min up to +8,
 * floor 1, cap 12; cost 2.36 idle members at ×1) and "demand rule alone" (1 running, 2
 * stopped, +2 per miss in 15 min up to +10, floor 1, cap 12; cost 1.10–1.30).
 *
 * What it showed, seeds 1–10 and 42, hit rate (running tier) against the fixed size at the
 * same cost (seed 42 in brackets):
 *  - office hours ×1: 99.1–100 % vs 96.1–99.2 % (99.1 vs 98.0), +0.7 to +3.9 points (mean +2.1); p95
 *    0.5 s vs 0.5–11.6 s for the size below. ×4: 97.7–100 % vs 89.7–93.5 %, +5.3 to +8.8 (mean +7.1).
 *    This gain is the schedule window's, not the demand rule's: at ×1 the rule raised the
 *    target on one seed only (15 min on seed 42), because 4 running members cover the
 *    morning ramp; a fixed pool of the same cost spends over half its member-hours outside
 *    07:00–18:00, when 7–11 % of the creates come.
 *  - demand rule alone ×1: 83.2–88.7 % vs 81.2–86.3 % (83.2 vs 83.8), −0.6 to +5.3 points (mean +2.0);
 *    31–55 creates a day are warm hits, so p95 is 13.1–14.3 s (fixed size below 13.6–15.2 s).
 *    ×4: 79.1–82.0 % vs 73.5–79.8 %, −0.7 to +8.4 (mean +4.1). It loses or barely wins on some seeds
 *    because it reacts only after misses: the morning ramp's first creates miss (6 of seed
 *    42's 7 misses at ×1 are 08:00–11:00), and by the time the boost is built the burst may be
 *    over. It wins where its cheap night pays for a boost at the peak.
 * So at these arrival rates a pool of 2–4 running members answers nearly every create in
 * 0.5 s; knowing the peak (a window) beats reacting to it, and the demand rule is a safety
 * net on top, worth more the slower a build is.
 *
 * Deterministic for a seed (its own PRNG, no clock), event-driven, no I/O: a few hundred ms
 * for its 18 replayed days (seed 42), so it runs inside the bench and on its own:
 *   node --import tsx -e "import('./bench/pool-replay.ts').then(m => console.log(JSON.stringify(m.runPoolReplaySimulation(), null, 1)))"
 */
import { mulberry32 } from '../simulators/shared/seeded-random';
import { memberToClaim, type PoolMember, planReplenish } from '../src/desktop/pool-plan';
import { poolTarget } from '../src/desktop/pool-sizing';
import { type PoolSizing, PoolSizingSchema } from '../src/schemas/pool-sizing';

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_ZONE = 'Europe/Berlin';
/** Tuesday 10 March 2026, 00:00 in Berlin (CET, UTC+1): the replayed working day. */
const DAY_START_MS = Date.UTC(2026, 2, 9, 23);
const TICK = 30;
const SITE_CAPACITY = 150;
/** Seconds: a new member's clone and boot, a stopped member's start, a running one's stop. */
const BUILD = 17;
const BUILD_STOPPED = BUILD + 10;
const START = 13;
const STOP = 10;
/** Seconds a create waits for a running member: the claim and its connect URL. */
const HIT = 0.5;
/** The cold path's clone and configure (the simulators' realistic delays), which a stopped member has done already. */
const CLONE_AND_CONFIGURE = 3.5;
/** The cold path as bench/time-to-desktop.ts measured it at the simulators' realistic delays. */
const COLD_P50 = 16.1;
const COLD_P95 = 19.7;

/** Creates per hour at a local time of day (hours), linear between the knots. */
const WEEKDAY_CURVE: readonly (readonly [number, number])[] = [
  [0, 1],
  [6, 1],
  [7, 6],
  [8, 30],
  [8.5, 60],
  [9.5, 55],
  [10, 35],
  [11.75, 30],
  [12.25, 12],
  [13.25, 12],
  [13.75, 38],
  [15, 30],
  [16.5, 25],
  [17.5, 10],
  [19, 5],
  [22, 2],
  [24, 1],
];

/**
 * The delays above (the simulators at their realistic settings), and four times as long: a
 * full clone and boot on real Proxmox takes about a minute, and a pool matters more there.
 */
const DELAY_SCALES = [1, 4];

/** The sized configurations compared with a fixed size (the header says why these). */
const SIZED_POLICIES: { name: string; sizing: PoolSizing }[] = [
  {
    name: 'office-hours window and demand rule',
    sizing: PoolSizingSchema.parse({
      timeZone: TIME_ZONE,
      running: 1,
      stopped: 2,
      windows: [{ name: 'office hours', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:30', to: '18:00', running: 4 }],
      demand: { windowMinutes: 15, perMiss: 1, maxBoost: 8 },
      floor: 1,
      cap: 12,
    }),
  },
  {
    name: 'demand rule alone',
    sizing: PoolSizingSchema.parse({
      timeZone: TIME_ZONE,
      running: 1,
      stopped: 2,
      demand: { windowMinutes: 15, perMiss: 2, maxBoost: 10 },
      floor: 1,
      cap: 12,
    }),
  },
];

export interface Arrival {
  at: number;
  /** This user's cold path (s); a warm hit is the same less the clone and configure. */
  coldSeconds: number;
  sessionSeconds: number;
}

export interface PoolPolicyFigures {
  arrivals: number;
  hits: number;
  warmHits: number;
  misses: number;
  hitRatePct: number;
  /** Hits and warm hits. */
  answeredFromPoolPct: number;
  /** The cost: powered-on idle members, time-averaged over the day. */
  idleRunningMembersAvg: number;
  stoppedMembersAvg: number;
  peakMembers: number;
  peakRunningTier: number;
  /** Pool members and users' desktops at the busiest moment. */
  peakSiteDesktops: number;
  creates: number;
  starts: number;
  stops: number;
  destroys: number;
  deferredCreates: number;
  /** Minutes of the day the demand rule had raised the running target after misses. */
  demandBoostedMinutes: number;
  /** Claims that got a member someone had claimed before (must be 0). */
  duplicateClaims: number;
  timeToDesktopP50Ms: number;
  timeToDesktopP95Ms: number;
  missesByHour: number[];
}

export interface PoolReplayComparison {
  name: string;
  /** Every delay but a hit's multiplied by this (1: the simulators' realistic delays). */
  delaysTimes: number;
  demandSizing: PoolSizing;
  demand: PoolPolicyFigures;
  /** The fixed running sizes just below and at-or-above the demand policy's cost. */
  fixedBelow: PoolPolicyFigures & { running: number };
  fixedAbove: PoolPolicyFigures & { running: number };
  /** Linear between the two sizes, weighted so that the cost equals the demand policy's. */
  fixedAtSameCost: { running: number; idleRunningMembersAvg: number; hitRatePct: number; answeredFromPoolPct: number };
  demandHitRateGainPct: number;
}

export interface PoolReplayResult {
  seed: number;
  day: { date: string; timeZone: string; arrivals: number; arrivalsByHour: number[] };
  site: { capacity: number };
  delaysSeconds: { hit: number; warmHitP50: number; coldP50: number; coldP95: number; build: number; start: number; stop: number };
  costRule: string;
  comparisons: PoolReplayComparison[];
  runMs: number;
}

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function poisson(rand: () => number, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  for (let p = rand(); p > limit; p *= rand()) k++;
  return k;
}

function ratePerHour(hour: number): number {
  for (let i = 1; i < WEEKDAY_CURVE.length; i++) {
    const [h1, r1] = WEEKDAY_CURVE[i] as readonly [number, number];
    const [h0, r0] = WEEKDAY_CURVE[i - 1] as readonly [number, number];
    if (hour <= h1) return r0 + ((r1 - r0) * (hour - h0)) / (h1 - h0);
  }
  return 0;
}

/** σ of a log-normal whose p95 is COLD_P95 when its median is COLD_P50. */
const COLD_SIGMA = Math.log(COLD_P95 / COLD_P50) / 1.645;

function dayOfArrivals(rand: () => number): Arrival[] {
  const arrivals: Arrival[] = [];
  for (let minute = 0; minute < DAY / MINUTE; minute++) {
    const n = poisson(rand, ratePerHour((minute + 0.5) / 60) / 60);
    const within = Array.from({ length: n }, () => rand() * MINUTE).sort((a, b) => a - b);
    for (const s of within) {
      arrivals.push({
        at: minute * MINUTE + s,
        coldSeconds: COLD_P50 * Math.exp(COLD_SIGMA * normal(rand)),
        sessionSeconds: Math.min(9 * HOUR, Math.max(10 * MINUTE, 2.5 * HOUR * Math.exp(0.6 * normal(rand)))),
      });
    }
  }
  return arrivals;
}

type SimEvent =
  | { at: number; kind: 'leave' }
  | { at: number; kind: 'ready'; member: PoolMember }
  | { at: number; kind: 'arrive'; arrival: Arrival }
  | { at: number; kind: 'tick' };

/** At one instant: capacity freed first, then members arriving in their tier, then creates, then the replenisher. */
const ORDER = { leave: 0, ready: 1, arrive: 2, tick: 3 } as const;
const before = (a: SimEvent, b: SimEvent) => a.at < b.at || (a.at === b.at && ORDER[a.kind] < ORDER[b.kind]);

/** A binary min-heap of events. */
class EventQueue {
  private readonly heap: SimEvent[] = [];
  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as SimEvent, h[p] as SimEvent)) break;
      [h[i], h[p]] = [h[p] as SimEvent, h[i] as SimEvent];
      i = p;
    }
  }
  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l] as SimEvent, h[m] as SimEvent)) m = l;
        if (r < h.length && before(h[r] as SimEvent, h[m] as SimEvent)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as SimEvent, h[i] as SimEvent];
        i = m;
      }
    }
    return top;
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const ms = (t: number) => DAY_START_MS + Math.round(t * 1000);

/** A VM that is on while nobody uses it: what the pool costs. */
const poweredOn = (m: PoolMember) => m.tier === 'running' || m.phase !== 'ready';

/** The day replayed against one sizing, every delay but a hit's multiplied by `slower`. */
export function replayDay(sizing: PoolSizing, arrivals: readonly Arrival[], slower = 1): PoolPolicyFigures {
  const members = new Map<string, PoolMember>();
  const queue = new EventQueue();
  let nextId = 0;
  const addMember = (tier: PoolMember['tier'], phase: PoolMember['phase'], at: number, readyIn: number) => {
    const member: PoolMember = { desktopId: `m${nextId++}`, tier, phase, since: ms(at) };
    members.set(member.desktopId, member);
    if (phase !== 'ready') queue.push({ at: at + readyIn, kind: 'ready', member });
  };

  // The pool as the night before left it: full, at rest.
  const opening = poolTarget(sizing, { misses: [] }, ms(0));
  for (let i = 0; i < opening.running; i++) addMember('running', 'ready', 0, 0);
  for (let i = 0; i < opening.stopped; i++) addMember('stopped', 'ready', 0, 0);

  for (const arrival of arrivals) queue.push({ at: arrival.at, kind: 'arrive', arrival });
  for (let t = 0; t < DAY; t += TICK) queue.push({ at: t, kind: 'tick' });

  const misses: number[] = [];
  const claimed = new Set<string>();
  const times: number[] = [];
  const missesByHour = new Array<number>(24).fill(0);
  const f = { hits: 0, warmHits: 0, misses: 0, creates: 0, starts: 0, stops: 0, destroys: 0, deferredCreates: 0, duplicateClaims: 0 };
  let users = 0;
  let peakMembers = members.size;
  let peakRunningTier = 0;
  let peakSiteDesktops = members.size;
  let onSeconds = 0;
  let stoppedSeconds = 0;
  let clock = 0;
  let boostedTicks = 0;

  const advanceTo = (t: number) => {
    const dt = Math.min(t, DAY) - Math.min(clock, DAY);
    if (dt > 0) {
      for (const m of members.values()) {
        if (poweredOn(m)) onSeconds += dt;
        else stoppedSeconds += dt;
      }
    }
    clock = t;
  };
  const observe = () => {
    let runningTier = 0;
    for (const m of members.values()) if (m.tier === 'running') runningTier++;
    peakMembers = Math.max(peakMembers, members.size);
    peakRunningTier = Math.max(peakRunningTier, runningTier);
    peakSiteDesktops = Math.max(peakSiteDesktops, members.size + users);
  };

  for (let e = queue.pop(); e; e = queue.pop()) {
    advanceTo(e.at);
    switch (e.kind) {
      case 'leave':
        users--;
        break;
      case 'ready':
        e.member.phase = 'ready';
        e.member.since = ms(e.at);
        break;
      case 'arrive': {
        const member = memberToClaim([...members.values()]);
        let waited: number;
        if (member) {
          if (claimed.has(member.desktopId)) f.duplicateClaims++;
          claimed.add(member.desktopId);
          members.delete(member.desktopId);
          if (member.tier === 'running') {
            f.hits++;
            waited = HIT;
          } else {
            f.warmHits++;
            waited = (e.arrival.coldSeconds - CLONE_AND_CONFIGURE) * slower;
          }
        } else {
          f.misses++;
          const hour = Math.floor(e.at / HOUR);
          missesByHour[hour] = (missesByHour[hour] ?? 0) + 1;
          misses.push(ms(e.at));
          waited = e.arrival.coldSeconds * slower;
        }
        times.push(waited * 1000);
        users++;
        queue.push({ at: e.at + e.arrival.sessionSeconds, kind: 'leave' });
        observe();
        break;
      }
      case 'tick': {
        const target = poolTarget(sizing, { misses }, ms(e.at));
        if (misses.length > 0 && target.running > poolTarget(sizing, { misses: [] }, ms(e.at)).running) boostedTicks++;
        const plan = planReplenish(target, [...members.values()], SITE_CAPACITY - members.size - users);
        for (const id of plan.destroy) members.delete(id);
        for (const id of plan.start) {
          const m = members.get(id);
          if (!m) throw new Error(`plan starts ${id}, which is not in the pool`);
          Object.assign(m, { tier: 'running', phase: 'moving', since: ms(e.at) });
          queue.push({ at: e.at + START * slower, kind: 'ready', member: m });
        }
        for (const id of plan.stop) {
          const m = members.get(id);
          if (!m) throw new Error(`plan stops ${id}, which is not in the pool`);
          Object.assign(m, { tier: 'stopped', phase: 'moving', since: ms(e.at) });
          queue.push({ at: e.at + STOP * slower, kind: 'ready', member: m });
        }
        for (let i = 0; i < plan.create.running; i++) addMember('running', 'building', e.at, BUILD * slower);
        for (let i = 0; i < plan.create.stopped; i++) addMember('stopped', 'building', e.at, BUILD_STOPPED * slower);
        f.creates += plan.create.running + plan.create.stopped;
        f.starts += plan.start.length;
        f.stops += plan.stop.length;
        f.destroys += plan.destroy.length;
        f.deferredCreates += plan.deferred;
        observe();
        break;
      }
    }
  }
  advanceTo(DAY);
  if (f.hits + f.warmHits + f.misses !== arrivals.length) throw new Error('an arrival was not accounted for exactly once');

  const n = arrivals.length || 1;
  return {
    arrivals: arrivals.length,
    hits: f.hits,
    warmHits: f.warmHits,
    misses: f.misses,
    hitRatePct: round1((100 * f.hits) / n),
    answeredFromPoolPct: round1((100 * (f.hits + f.warmHits)) / n),
    idleRunningMembersAvg: round3(onSeconds / DAY),
    stoppedMembersAvg: round3(stoppedSeconds / DAY),
    peakMembers,
    peakRunningTier,
    peakSiteDesktops,
    creates: f.creates,
    starts: f.starts,
    stops: f.stops,
    destroys: f.destroys,
    deferredCreates: f.deferredCreates,
    demandBoostedMinutes: (boostedTicks * TICK) / MINUTE,
    duplicateClaims: f.duplicateClaims,
    timeToDesktopP50Ms: Math.round(pct(times, 50)),
    timeToDesktopP95Ms: Math.round(pct(times, 95)),
    missesByHour,
  };
}

/** A constant running tier of `running`, with the demand policy's stopped tier. */
export function fixedSizing(running: number, stopped: number): PoolSizing {
  return PoolSizingSchema.parse({ timeZone: TIME_ZONE, running, stopped, floor: 0, cap: running });
}

function compare(name: string, sizing: PoolSizing, arrivals: readonly Arrival[], slower: number): PoolReplayComparison {
  const demand = replayDay(sizing, arrivals, slower);
  const fixed = (running: number) => ({ running, ...replayDay(fixedSizing(running, sizing.stopped), arrivals, slower) });
  let below = fixed(0);
  let above = below;
  while (above.idleRunningMembersAvg < demand.idleRunningMembersAvg) {
    below = above;
    above = fixed(above.running + 1);
  }
  const span = above.idleRunningMembersAvg - below.idleRunningMembersAvg;
  const w = span > 0 ? (demand.idleRunningMembersAvg - below.idleRunningMembersAvg) / span : 0;
  const mix = (a: number, b: number) => round1(a + w * (b - a));
  const hitRatePct = mix(below.hitRatePct, above.hitRatePct);
  return {
    name,
    delaysTimes: slower,
    demandSizing: sizing,
    demand,
    fixedBelow: below,
    fixedAbove: above,
    fixedAtSameCost: {
      running: round3(below.running + w * (above.running - below.running)),
      idleRunningMembersAvg: round3(below.idleRunningMembersAvg + w * span),
      hitRatePct,
      answeredFromPoolPct: mix(below.answeredFromPoolPct, above.answeredFromPoolPct),
    },
    demandHitRateGainPct: round1(demand.hitRatePct - hitRatePct),
  };
}

export function runPoolReplaySimulation(seed = 42): PoolReplayResult {
  const started = performance.now();
  const arrivals = dayOfArrivals(mulberry32(seed));
  const arrivalsByHour = new Array<number>(24).fill(0);
  for (const a of arrivals) {
    const hour = Math.floor(a.at / HOUR);
    arrivalsByHour[hour] = (arrivalsByHour[hour] ?? 0) + 1;
  }
  return {
    seed,
    day: { date: '2026-03-10 (Tuesday)', timeZone: TIME_ZONE, arrivals: arrivals.length, arrivalsByHour },
    site: { capacity: SITE_CAPACITY },
    delaysSeconds: {
      hit: HIT,
      warmHitP50: round1(COLD_P50 - CLONE_AND_CONFIGURE),
      coldP50: COLD_P50,
      coldP95: COLD_P95,
      build: BUILD,
      start: START,
      stop: STOP,
    },
    costRule: 'time-average of powered-on idle members (running tier, or being built or stopped); a stopped member at rest counts 0',
    comparisons: DELAY_SCALES.flatMap((slower) => SIZED_POLICIES.map((p) => compare(p.name, p.sizing, arrivals, slower))),
    runMs: Math.round(performance.now() - started),
  };
}
