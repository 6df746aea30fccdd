/**
 * GPU slot bookings for one site: pure functions over a plain, JSON-serialisable state,
 * so the site's Durable Object can persist it as-is and the bench can drive it in Node.
 *
 * A GPU offers `slots` time-slicing replicas (NVIDIA k8s-device-plugin `sharing.timeSlicing` `replicas`); a session
 * books 1, 2, 4 or 8 of them, all on one GPU, because a pod's `nvidia.com/gpu` limit is served by replicas of a single
 * physical device.
 *
 * Packing policy: best fit. A request goes to the GPU whose free slots fit it most
 * tightly (ties: the fuller GPU, then the lower id, so the result is deterministic).
 * Small sessions therefore fill the holes already open on busy GPUs and leave empty
 * GPUs empty, which is what keeps an 8-slot (whole-GPU) request satisfiable; spreading
 * (least-loaded first) would put a 1-slot user on every GPU and make the first 8-slot
 * request fail on a site that is mostly idle.
 * There is no buddy-style alignment inside a GPU on purpose: time-slicing replicas are
 * interchangeable (the plugin hands out any free replica, nothing is contiguous), so a
 * GPU with f free slots serves any request ≤ f and alignment would only add refusals.
 * Fragmentation can therefore only exist *across* GPUs, and best fit is the lever for it.
 *
 * Why nothing cleverer (measured with bench/gpu-packing.ts, seeds 1–10 and 42, where best
 * fit is refused for fragmentation in 12–29 % of refusals): running sessions cannot move
 * (a time-sliced pod keeps its device until it ends), so the scattered holes are opened by
 * departures, not by placement. Tried against best fit, and none did better by more than
 * a few percent, some did worse: co-locating sessions that end together (even with the
 * true end times known), a drain mark after a fragmentation refusal that steers small
 * requests away from the GPU closest to empty (or, knowing the future, the one that
 * empties first) while another GPU fits them, size-class affinity, and weighting a
 * placement by the larger requests it rules out. Only refusing small requests that fit
 * moves the figure: standing reserves of empty or half-empty GPUs that small requests may
 * not take brought it to a mean of 4–10 % of refusals (no setting under 2 % on every
 * seed), at 4–9 refusals of light users who fitted per fragmentation refusal avoided and
 * 35–95 % more users never served; drain marks that refuse them did no better than 16 %.
 * That relabels refusals rather than avoiding them, so it is not done. The floor is in the
 * bench: 2-slot refusals while the whole site has 2 or 3 free slots, one per GPU, are on
 * their own more than 2 % of refusals in 9 of the 11 seeds.
 *
 * Invariant: a GPU's booked slots never exceed its slots through `allocate`. Only an
 * inventory change can break it (replicas lowered under running sessions, or a GPU gone);
 * `setInventory` keeps those bookings and reports them instead of dropping them, because
 * the pods are still running until someone stops them.
 */
import type { Occupancy } from '../schemas/gpu';

export const SLOT_SIZES = [1, 2, 4, 8] as const;
export type SlotCount = (typeof SLOT_SIZES)[number];

export interface Gpu {
  id: string;
  /** Kubernetes node the GPU sits on. */
  node: string;
  /** Time-slicing replicas this GPU advertises. */
  slots: number;
}

export interface Booking {
  gpuId: string;
  slots: SlotCount;
}

export interface GpuSlotState {
  gpus: Gpu[];
  /** sessionId → booking. A booking whose GPU is absent from `gpus` is orphaned. */
  bookings: Record<string, Booking>;
}

export type AllocateResult =
  | { ok: true; gpuId: string; state: GpuSlotState }
  | {
      ok: false;
      /**
       * no_capacity: fewer free slots on the site than asked (or no GPUs at all);
       * fragmented: enough free slots on the site, but not on any single GPU;
       * too_large: larger than any GPU of the site even when empty.
       */
      reason: 'no_capacity' | 'fragmented' | 'too_large';
      freeSlots: number;
      largestFree: number;
    };

export interface SessionBooking extends Booking {
  sessionId: string;
}

export interface InventoryChange {
  state: GpuSlotState;
  /** Bookings whose GPU is not in the new inventory (all of them, not only the newly orphaned). */
  orphaned: SessionBooking[];
  /** GPUs whose new slot count is below what is booked on them. */
  overcommitted: { gpuId: string; slots: number; used: number }[];
}

export function emptyState(gpus: Gpu[] = []): GpuSlotState {
  validateInventory(gpus);
  return { gpus: gpus.map((g) => ({ ...g })), bookings: {} };
}

export function isSlotCount(n: number): n is SlotCount {
  return (SLOT_SIZES as readonly number[]).includes(n);
}

/** Own properties only: a session id such as `__proto__` must not read Object.prototype. */
function bookingOf(state: GpuSlotState, sessionId: string): Booking | undefined {
  return Object.hasOwn(state.bookings, sessionId) ? state.bookings[sessionId] : undefined;
}

function usedByGpu(state: GpuSlotState): Map<string, number> {
  const used = new Map<string, number>();
  for (const b of Object.values(state.bookings)) used.set(b.gpuId, (used.get(b.gpuId) ?? 0) + b.slots);
  return used;
}

export function allocate(state: GpuSlotState, request: { sessionId: string; slots: number }): AllocateResult {
  const { sessionId, slots } = request;
  if (!isSlotCount(slots)) throw new RangeError(`slots must be one of ${SLOT_SIZES.join(', ')}, got ${slots}`);
  const existing = bookingOf(state, sessionId);
  if (existing) {
    // A retried booking (queue redelivery, DO restart) gets the same GPU back instead of a second booking.
    if (existing.slots === slots) return { ok: true, gpuId: existing.gpuId, state };
    throw new Error(`session ${sessionId} already holds ${existing.slots} slots on ${existing.gpuId}`);
  }
  const used = usedByGpu(state);
  let best: { gpu: Gpu; free: number; used: number } | undefined;
  let freeSlots = 0;
  let largestFree = 0;
  let largestGpu = 0;
  for (const gpu of state.gpus) {
    const u = used.get(gpu.id) ?? 0;
    const free = Math.max(0, gpu.slots - u);
    freeSlots += free;
    largestFree = Math.max(largestFree, free);
    largestGpu = Math.max(largestGpu, gpu.slots);
    if (free < slots) continue;
    if (!best || free < best.free || (free === best.free && (u > best.used || (u === best.used && gpu.id < best.gpu.id)))) {
      best = { gpu, free, used: u };
    }
  }
  if (best) {
    return {
      ok: true,
      gpuId: best.gpu.id,
      state: { gpus: state.gpus, bookings: { ...state.bookings, [sessionId]: { gpuId: best.gpu.id, slots } } },
    };
  }
  const reason = state.gpus.length > 0 && slots > largestGpu ? 'too_large' : freeSlots >= slots ? 'fragmented' : 'no_capacity';
  return { ok: false, reason, freeSlots, largestFree };
}

/** Frees a session's slots. Releasing an unknown session is a no-op, so terminate can be retried. */
export function release(state: GpuSlotState, sessionId: string): { state: GpuSlotState; released: SessionBooking | null } {
  const booking = bookingOf(state, sessionId);
  if (!booking) return { state, released: null };
  const { [sessionId]: _gone, ...bookings } = state.bookings;
  return { state: { gpus: state.gpus, bookings }, released: { sessionId, ...booking } };
}

export function occupancy(state: GpuSlotState): Occupancy {
  const byGpu = new Map<string, { sessionId: string; slots: SlotCount }[]>();
  const orphaned: SessionBooking[] = [];
  const present = new Set(state.gpus.map((g) => g.id));
  for (const [sessionId, b] of Object.entries(state.bookings)) {
    if (!present.has(b.gpuId)) {
      orphaned.push({ sessionId, ...b });
      continue;
    }
    const list = byGpu.get(b.gpuId) ?? [];
    list.push({ sessionId, slots: b.slots });
    byGpu.set(b.gpuId, list);
  }
  const gpus = state.gpus.map((g) => {
    const sessions = (byGpu.get(g.id) ?? []).sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
    const used = sessions.reduce((n, s) => n + s.slots, 0);
    return { gpuId: g.id, node: g.node, slots: g.slots, used, free: Math.max(0, g.slots - used), sessions };
  });
  const totals = gpus.reduce(
    (t, g) => ({ slots: t.slots + g.slots, used: t.used + g.used, free: t.free + g.free, largestFree: Math.max(t.largestFree, g.free) }),
    { slots: 0, used: 0, free: 0, largestFree: 0 },
  );
  return { gpus, totals, orphaned: orphaned.sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1)) };
}

/**
 * Replaces the site's GPU list with what the bridge reports. Bookings are never dropped
 * here: a GPU that vanishes (node drained, bridge blip) may come back with its pods still
 * running, and a session that really lost its GPU must be stopped and released by the
 * caller, which learns about it from `orphaned`.
 */
export function setInventory(state: GpuSlotState, gpus: Gpu[]): InventoryChange {
  validateInventory(gpus);
  const next: GpuSlotState = { gpus: gpus.map((g) => ({ ...g })), bookings: state.bookings };
  const occ = occupancy(next);
  const overcommitted = occ.gpus.filter((g) => g.used > g.slots).map((g) => ({ gpuId: g.gpuId, slots: g.slots, used: g.used }));
  return { state: next, orphaned: occ.orphaned, overcommitted };
}

function validateInventory(gpus: Gpu[]): void {
  const seen = new Set<string>();
  for (const g of gpus) {
    if (!g.id) throw new RangeError('a GPU needs an id');
    if (seen.has(g.id)) throw new RangeError(`GPU ${g.id} listed twice`);
    seen.add(g.id);
    if (!Number.isInteger(g.slots) || g.slots < 1) throw new RangeError(`GPU ${g.id}: slots must be a positive integer, got ${g.slots}`);
  }
}
