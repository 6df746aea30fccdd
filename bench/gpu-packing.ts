/**
 * GPU packing simulation for `npm run bench` (issue 4, "What it must show"): a day of
 * GPU desktop sessions of mixed sizes booked through src/gpu/allocator on one site of
 * 125 GPUs × 8 time-slicing slots, with a daily curve whose peak asks for more slots than
 * the site has. It measures how well the packing policy uses the slots and how often a
 * request is refused while the site as a whole still had room (fragmentation).
 *
 * What to expect: the peak asks for ~1.3× the site's slots. Nothing moves a running
 * session, so a hole left by a departing light user can only be refilled by another light
 * user, and a whole-GPU request needs a GPU whose every session has ended: near full, some
 * refusals are fragmentation whatever the placement. Best fit gave the fewest of the
 * policies tried on this workload (first fit, spread, size-segregated, aligned; then, on
 * seeds 1–10 and 42: lifetime-aware co-location even with the true end times, drain marks
 * after a fragmentation refusal, size-class affinity, weighting by the larger requests a
 * placement rules out; src/gpu/allocator.ts says why). With it the peak books 100 % of the
 * slots, the day averages 44–46 %, and fragmentation is 12–29 % of the 262–517 refusals
 * (seed 42: 29.2 % of 308), so the "under 2 %" target is not met. It is not
 * reachable by placement here: 2-slot refusals while the site has only 2 or 3 free slots,
 * each on a different GPU because the light users who left sat on different GPUs, are alone
 * more than 2 % of refusals on 9 of those 11 seeds. Policies that refuse small requests which fit
 * (reserved GPUs) do lower the figure, but only by refusing 4–9 light users who fitted per
 * fragmentation refusal avoided, so the allocator does not hold any back; one that did
 * would have to be reported here as its own kind of refusal, not as no_capacity.
 *
 * Measured as the allocator reports it: a refusal is fragmentation when the site had at
 * least the requested free slots in total but no single GPU had them (the simulation
 * checks the allocator never calls a shortage fragmentation), and every retry that is
 * refused again counts again.
 *
 * Deterministic for a seed (its own PRNG, no clock), event-driven, no I/O: well under a
 * second, so it runs inside the bench and on its own:
 *   node --import tsx -e "import('./bench/gpu-packing.ts').then(m => console.log(m.runGpuPackingSimulation()))"
 */
import { mulberry32 } from '../simulators/shared/seeded-random';
import { type GpuSlotState, type SlotCount, allocate, emptyState, occupancy, release } from '../src/gpu/allocator';

const GPUS = 125;
const SLOTS_PER_GPU = 8;
const SESSIONS = 1_000;
const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A refused user tries again a little later, twice at most, then gives up for the day. */
const RETRY_AFTER = 15 * MINUTE;
const MAX_RETRIES = 2;

/** Mostly light users (a slot of a shared GPU), some heavier CAD/ML users, a few whole-GPU users. */
const SIZE_MIX: [SlotCount, number][] = [
  [1, 0.5],
  [2, 0.25],
  [4, 0.15],
  [8, 0.1],
];

export interface GpuPackingResult {
  seed: number;
  site: { gpus: number; slotsPerGpu: number; slots: number };
  sessions: number;
  sizeMix: Record<string, number>;
  /** Slots the sessions would have used at the busiest moment had the site been unlimited. */
  peakDemandSlots: number;
  peakUtilisationPct: number;
  dayAverageUtilisationPct: number;
  /** Mean utilisation of each hour of the day, 0–23. */
  hourlyUtilisationPct: number[];
  requests: number;
  refusedRequests: number;
  refusedByReason: { no_capacity: number; fragmented: number; too_large: number };
  fragmentationRefusals: number;
  fragmentationPctOfRefusals: number;
  fragmentationPctOfRequests: number;
  /** Refusals by requested size, and how many of those were fragmentation. */
  refusedBySize: Record<string, { refused: number; fragmented: number }>;
  sessionsNeverServed: number;
  maxSlotsUsedOnAnyGpu: number;
  slotsPerGpu: number;
  targets: { peakUtilisationAtLeast85Pct: boolean; fragmentationUnder2PctOfRefusals: boolean; noGpuOverItsSlots: boolean };
  runMs: number;
}

function normal(rand: () => number): number {
  // Box–Muller; 1 - rand() keeps the logarithm's argument above zero.
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

interface Session {
  id: string;
  slots: SlotCount;
  arrival: number;
  duration: number;
}

/**
 * The day's sessions: a morning wave (09:30 ± 1 h), an after-lunch wave (13:30 ± 1.25 h)
 * and a thin background over the whole day; durations log-normal around 5 h (15 min–10 h),
 * so the morning sessions are still running when the afternoon ones arrive.
 */
function workload(rand: () => number): Session[] {
  const sessions: Session[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const wave = rand();
    const arrival = wave < 0.5 ? 9 * HOUR + normal(rand) * HOUR : wave < 0.85 ? 13.5 * HOUR + normal(rand) * HOUR : rand() * DAY;
    const duration = Math.min(10 * HOUR, Math.max(15 * MINUTE, 5 * HOUR * Math.exp(0.5 * normal(rand))));
    let pick = rand();
    let slots: SlotCount = 1;
    for (const [size, share] of SIZE_MIX) {
      slots = size;
      pick -= share;
      if (pick < 0) break;
    }
    sessions.push({ id: `s${i}`, slots, arrival: Math.min(DAY - 1, Math.max(0, arrival)), duration });
  }
  return sessions;
}

type SimEvent = { at: number; kind: 'leave'; session: Session } | { at: number; kind: 'arrive'; session: Session; attempt: number };

/** Departures before arrivals at the same instant: a slot freed at 10:00 can be booked at 10:00. */
const before = (a: SimEvent, b: SimEvent) => a.at < b.at || (a.at === b.at && a.kind === 'leave' && b.kind === 'arrive');

/** A binary min-heap of events: a few thousand of them, pushed while the day is replayed. */
class EventQueue {
  private readonly heap: SimEvent[] = [];
  get size() {
    return this.heap.length;
  }
  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
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
      let i = 0;
      for (;;) {
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

/** Slots the sessions ask for at the busiest moment, ignoring capacity: proof that the peak is over-subscribed. */
function peakDemand(sessions: Session[]): number {
  const edges = sessions.flatMap((s) => [
    { at: s.arrival, delta: s.slots },
    { at: s.arrival + s.duration, delta: -s.slots },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let peak = 0;
  for (const e of edges) {
    now += e.delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export function runGpuPackingSimulation(seed = 42): GpuPackingResult {
  const started = performance.now();
  const rand = mulberry32(seed);
  const sessions = workload(rand);
  const capacity = GPUS * SLOTS_PER_GPU;
  let state: GpuSlotState = emptyState(
    Array.from({ length: GPUS }, (_, i) => ({
      id: `gpu-${String(i).padStart(3, '0')}`,
      node: `node-${Math.floor(i / 4)}`,
      slots: SLOTS_PER_GPU,
    })),
  );

  const queue = new EventQueue();
  for (const session of sessions) queue.push({ at: session.arrival, kind: 'arrive', session, attempt: 0 });

  let used = 0;
  let peakUsed = 0;
  let maxOnGpu = 0;
  let clock = 0;
  /** Slot-seconds booked in each hour of the day. */
  const slotSeconds = new Array<number>(24).fill(0);
  const advanceTo = (t: number) => {
    // Integrate `used` over [clock, t] ∩ [0, DAY], hour by hour.
    let from = Math.min(clock, DAY);
    const to = Math.min(t, DAY);
    while (from < to) {
      const hour = Math.floor(from / HOUR);
      const end = Math.min(to, (hour + 1) * HOUR);
      slotSeconds[hour] = (slotSeconds[hour] ?? 0) + used * (end - from);
      from = end;
    }
    clock = t;
  };

  let requests = 0;
  const refused = { no_capacity: 0, fragmented: 0, too_large: 0 };
  const bySize = Object.fromEntries(SIZE_MIX.map(([size]) => [`${size}`, { refused: 0, fragmented: 0 }]));
  const served = new Set<string>();
  for (let e = queue.pop(); e; e = queue.pop()) {
    advanceTo(e.at);
    if (e.kind === 'leave') {
      const r = release(state, e.session.id);
      state = r.state;
      used -= r.released?.slots ?? 0;
      continue;
    }
    requests++;
    const r = allocate(state, { sessionId: e.session.id, slots: e.session.slots });
    if (r.ok) {
      state = r.state;
      used += e.session.slots;
      served.add(e.session.id);
      peakUsed = Math.max(peakUsed, used);
      // Read back from the allocator rather than trusting our own count: this is the over-booking check.
      const gpu = occupancy(state).gpus.find((g) => g.gpuId === r.gpuId);
      maxOnGpu = Math.max(maxOnGpu, gpu?.used ?? Number.POSITIVE_INFINITY);
      queue.push({ at: e.at + e.session.duration, kind: 'leave', session: e.session });
    } else {
      refused[r.reason]++;
      const size = bySize[`${e.session.slots}`];
      if (size) {
        size.refused++;
        if (r.reason === 'fragmented') size.fragmented++;
      }
      if (r.reason === 'fragmented' && r.freeSlots < e.session.slots) throw new Error('allocator called a shortage fragmentation');
      if (e.attempt < MAX_RETRIES) queue.push({ at: e.at + RETRY_AFTER, kind: 'arrive', session: e.session, attempt: e.attempt + 1 });
    }
  }
  if (used !== 0 || occupancy(state).totals.used !== 0) throw new Error('slots still booked after every session left');

  const refusedRequests = refused.no_capacity + refused.fragmented + refused.too_large;
  const fragmentationPct = refusedRequests === 0 ? 0 : (100 * refused.fragmented) / refusedRequests;
  const peakPct = (100 * peakUsed) / capacity;
  return {
    seed,
    site: { gpus: GPUS, slotsPerGpu: SLOTS_PER_GPU, slots: capacity },
    sessions: SESSIONS,
    sizeMix: Object.fromEntries(SIZE_MIX.map(([size, share]) => [`${size}`, share])),
    peakDemandSlots: peakDemand(sessions),
    peakUtilisationPct: round1(peakPct),
    dayAverageUtilisationPct: round1((100 * slotSeconds.reduce((a, b) => a + b, 0)) / (capacity * DAY)),
    hourlyUtilisationPct: slotSeconds.map((s) => round1((100 * s) / (capacity * HOUR))),
    requests,
    refusedRequests,
    refusedByReason: refused,
    fragmentationRefusals: refused.fragmented,
    fragmentationPctOfRefusals: round1(fragmentationPct),
    fragmentationPctOfRequests: round1((100 * refused.fragmented) / requests),
    refusedBySize: bySize,
    sessionsNeverServed: SESSIONS - served.size,
    maxSlotsUsedOnAnyGpu: maxOnGpu,
    slotsPerGpu: SLOTS_PER_GPU,
    targets: {
      peakUtilisationAtLeast85Pct: peakPct >= 85,
      fragmentationUnder2PctOfRefusals: fragmentationPct < 2,
      noGpuOverItsSlots: maxOnGpu <= SLOTS_PER_GPU,
    },
    runMs: Math.round(performance.now() - started),
  };
}
