import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Gpu, type GpuSlotState, SLOT_SIZES, allocate, emptyState, occupancy, release, setInventory } from '../../src/gpu/allocator';

const gpus = (n: number, slots = 8, node = 'node-a'): Gpu[] =>
  Array.from({ length: n }, (_, i) => ({ id: `gpu-${String(i).padStart(2, '0')}`, node, slots }));

/** Books or fails the test: keeps the happy-path tests short. */
function book(state: GpuSlotState, sessionId: string, slots: number): { state: GpuSlotState; gpuId: string } {
  const r = allocate(state, { sessionId, slots });
  if (!r.ok) throw new Error(`${sessionId} (${slots}) refused: ${r.reason}`);
  return r;
}

const usedOn = (state: GpuSlotState, gpuId: string) => occupancy(state).gpus.find((g) => g.gpuId === gpuId)?.used;

describe('allocate', () => {
  it('books all slots of a request on one GPU', () => {
    const r = book(emptyState(gpus(2)), 's1', 4);
    expect(usedOn(r.state, r.gpuId)).toBe(4);
    expect(occupancy(r.state).totals).toEqual({ slots: 16, used: 4, free: 12, largestFree: 8 });
  });

  it('packs light users onto one GPU so a whole-GPU request still fits', () => {
    let state = emptyState(gpus(2));
    for (let i = 0; i < 7; i++) state = book(state, `light-${i}`, 1).state;
    expect(occupancy(state).gpus.map((g) => g.used)).toEqual([7, 0]);
    const heavy = book(state, 'heavy', 8);
    expect(heavy.gpuId).toBe('gpu-01');
  });

  it('puts a request on the GPU whose free slots fit it most tightly', () => {
    let state = emptyState(gpus(3));
    state = book(state, 'a', 4).state; // gpu-00: 4 free
    state = book(state, 'b', 8).state; // gpu-01: full
    state = book(state, 'c', 2).state; // tightest is gpu-00 (4 free), not the empty gpu-02
    expect(state.bookings.c?.gpuId).toBe('gpu-00');
    state = release(state, 'b').state; // gpu-01 empty again, gpu-00 has 2 free
    expect(book(state, 'd', 2).gpuId).toBe('gpu-00');
  });

  it('prefers a smaller GPU that fits exactly over a larger one', () => {
    const state = emptyState([
      { id: 'big', node: 'n1', slots: 8 },
      { id: 'small', node: 'n2', slots: 2 },
    ]);
    expect(book(state, 's', 2).gpuId).toBe('small');
  });

  it('refuses with no_capacity when the site has fewer free slots than asked', () => {
    let state = emptyState(gpus(2));
    state = book(state, 'a', 8).state;
    state = book(state, 'b', 4).state;
    state = book(state, 'c', 2).state;
    state = book(state, 'd', 1).state;
    expect(allocate(state, { sessionId: 'e', slots: 2 })).toEqual({ ok: false, reason: 'no_capacity', freeSlots: 1, largestFree: 1 });
  });

  it('refuses with fragmented when the free slots are spread over GPUs', () => {
    let state = emptyState(gpus(2));
    for (const [id, slots] of [
      ['a', 4],
      ['b', 4],
      ['c', 2],
      ['d', 2],
    ] as const)
      state = book(state, id, slots).state;
    // gpu-00: a+b = 8 (full), gpu-01: c+d = 4, 4 free
    state = release(state, 'a').state; // gpu-00: 4 free → 8 free in all, 4 on each GPU
    expect(allocate(state, { sessionId: 'big', slots: 8 })).toEqual({ ok: false, reason: 'fragmented', freeSlots: 8, largestFree: 4 });
  });

  it('calls it fragmented when departures leave lone free slots on different GPUs', () => {
    // The case no placement can prevent (src/gpu/allocator.ts): the holes are opened by who leaves, not by who was placed where.
    let state = emptyState(gpus(2));
    for (let i = 0; i < 16; i++) state = book(state, `light-${i}`, 1).state;
    const onGpu = (gpuId: string) => Object.entries(state.bookings).find(([, b]) => b.gpuId === gpuId)?.[0] ?? '';
    state = release(state, onGpu('gpu-00')).state;
    state = release(state, onGpu('gpu-01')).state;
    expect(allocate(state, { sessionId: 'pair', slots: 2 })).toEqual({ ok: false, reason: 'fragmented', freeSlots: 2, largestFree: 1 });
    // A light user is still served, in one of the lone holes.
    expect(book(state, 'light-again', 1).state.bookings['light-again']?.gpuId).toMatch(/^gpu-0[01]$/);
  });

  it('refuses with too_large when no GPU of the site has that many slots', () => {
    const state = emptyState(gpus(3, 4));
    expect(allocate(state, { sessionId: 's', slots: 8 })).toEqual({ ok: false, reason: 'too_large', freeSlots: 12, largestFree: 4 });
  });

  it('refuses with no_capacity on a site without GPUs', () => {
    expect(allocate(emptyState(), { sessionId: 's', slots: 1 })).toEqual({
      ok: false,
      reason: 'no_capacity',
      freeSlots: 0,
      largestFree: 0,
    });
  });

  it('accepts only 1, 2, 4 or 8 slots', () => {
    const state = emptyState(gpus(1));
    for (const slots of [0, 3, 5, 16, -1, 1.5, Number.NaN]) expect(() => allocate(state, { sessionId: 's', slots })).toThrow(RangeError);
  });

  it('answers a repeated booking of the same session with the same GPU and books nothing more', () => {
    const first = book(emptyState(gpus(2)), 's', 2);
    const again = book(first.state, 's', 2);
    expect(again.gpuId).toBe(first.gpuId);
    expect(occupancy(again.state).totals.used).toBe(2);
    expect(() => allocate(first.state, { sessionId: 's', slots: 4 })).toThrow(/already holds 2 slots/);
  });

  it('leaves the state it was given untouched', () => {
    const state = emptyState(gpus(1));
    const snapshot = structuredClone(state);
    book(state, 's', 4);
    expect(state).toEqual(snapshot);
  });

  it('treats session ids like __proto__ as ordinary keys', () => {
    let state = book(emptyState(gpus(1)), '__proto__', 2).state;
    state = book(state, 'constructor', 2).state;
    expect(occupancy(state).totals.used).toBe(4);
    const back = JSON.parse(JSON.stringify(state)) as GpuSlotState;
    expect(release(back, '__proto__').released).toEqual({ sessionId: '__proto__', gpuId: 'gpu-00', slots: 2 });
  });
});

describe('release', () => {
  it('gives the slots back', () => {
    const booked = book(emptyState(gpus(1)), 's', 8);
    const { state, released } = release(booked.state, 's');
    expect(released).toEqual({ sessionId: 's', gpuId: 'gpu-00', slots: 8 });
    expect(occupancy(state).totals.free).toBe(8);
  });

  it('is a no-op for a session that holds nothing, so terminate can be retried', () => {
    const state = emptyState(gpus(1));
    expect(release(state, 'nobody')).toEqual({ state, released: null });
  });
});

describe('occupancy', () => {
  it('lists each GPU with its sessions for the admin view', () => {
    let state = emptyState([...gpus(1, 8, 'n1'), { id: 'gpu-x', node: 'n2', slots: 4 }]);
    state = book(state, 's2', 2).state;
    state = book(state, 's1', 4).state;
    state = book(state, 's3', 2).state;
    expect(occupancy(state)).toEqual({
      gpus: [
        { gpuId: 'gpu-00', node: 'n1', slots: 8, used: 4, free: 4, sessions: [{ sessionId: 's1', slots: 4 }] },
        {
          gpuId: 'gpu-x',
          node: 'n2',
          slots: 4,
          used: 4,
          free: 0,
          sessions: [
            { sessionId: 's2', slots: 2 },
            { sessionId: 's3', slots: 2 },
          ],
        },
      ],
      totals: { slots: 12, used: 8, free: 4, largestFree: 4 },
      orphaned: [],
    });
  });
});

describe('setInventory', () => {
  it('reports the sessions of a GPU that vanished and keeps their bookings until released', () => {
    let state = emptyState(gpus(2));
    state = book(state, 'on-0', 8).state;
    state = book(state, 'on-1', 2).state;
    const change = setInventory(state, gpus(1));
    expect(change.orphaned).toEqual([{ sessionId: 'on-1', gpuId: 'gpu-01', slots: 2 }]);
    expect(occupancy(change.state).orphaned).toEqual(change.orphaned);
    // The vanished GPU's capacity is gone, not handed to someone else.
    expect(allocate(change.state, { sessionId: 'x', slots: 1 })).toMatchObject({ ok: false, reason: 'no_capacity', freeSlots: 0 });
    expect(release(change.state, 'on-1').released).toEqual({ sessionId: 'on-1', gpuId: 'gpu-01', slots: 2 });
  });

  it('counts the bookings again when the GPU comes back', () => {
    let state = book(emptyState(gpus(2)), 'a', 8).state;
    state = book(state, 'b', 8).state;
    state = setInventory(state, gpus(1)).state;
    const back = setInventory(state, gpus(2));
    expect(back.orphaned).toEqual([]);
    expect(occupancy(back.state).totals).toMatchObject({ used: 16, free: 0 });
  });

  it('reports a GPU whose replicas dropped below what is booked and books nothing more there', () => {
    let state = book(emptyState(gpus(1)), 'a', 4).state;
    state = book(state, 'b', 2).state;
    const change = setInventory(state, gpus(1, 4));
    expect(change.overcommitted).toEqual([{ gpuId: 'gpu-00', slots: 4, used: 6 }]);
    expect(occupancy(change.state).gpus[0]).toMatchObject({ used: 6, free: 0 });
    expect(allocate(change.state, { sessionId: 'c', slots: 1 })).toMatchObject({ ok: false, reason: 'no_capacity' });
  });

  it('rejects an inventory with duplicate ids or non-positive slots', () => {
    expect(() => setInventory(emptyState(), [...gpus(1), ...gpus(1)])).toThrow(/twice/);
    expect(() => setInventory(emptyState(), gpus(1, 0))).toThrow(RangeError);
  });
});

describe('properties (fast-check)', () => {
  type Op = { kind: 'alloc'; session: number; slots: number } | { kind: 'release'; session: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('alloc' as const), session: fc.nat(40), slots: fc.constantFrom(...SLOT_SIZES) }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), session: fc.nat(40) }) },
  );
  const site = fc
    .array(fc.constantFrom(1, 2, 3, 4, 6, 8), { minLength: 0, maxLength: 6 })
    .map((sizes) => sizes.map((slots, i) => ({ id: `g${i}`, node: `n${i % 2}`, slots })));

  it('never over-books, refuses for the right reason, and release restores exactly what was booked', () => {
    fc.assert(
      fc.property(site, fc.array(op, { maxLength: 120 }), (inventory, ops) => {
        let state = emptyState(inventory);
        for (const o of ops) {
          const sessionId = `s${o.session}`;
          const before = occupancy(state);
          if (o.kind === 'release') {
            const r = release(state, sessionId);
            state = r.state;
            const after = occupancy(state);
            expect(after.totals.free).toBe(before.totals.free + (r.released?.slots ?? 0));
            if (r.released) {
              const gpuBefore = before.gpus.find((g) => g.gpuId === r.released?.gpuId);
              const gpuAfter = after.gpus.find((g) => g.gpuId === r.released?.gpuId);
              expect(gpuAfter?.used).toBe((gpuBefore?.used ?? 0) - r.released.slots);
            }
          } else {
            const held = state.bookings[sessionId];
            if (held && held.slots !== o.slots) continue; // a conflicting re-booking throws; covered above
            const r = allocate(state, { sessionId, slots: o.slots });
            const fits = before.gpus.filter((g) => g.free >= o.slots);
            if (r.ok) {
              if (!held) {
                // Best fit: no GPU that could take it had fewer free slots.
                const chosen = before.gpus.find((g) => g.gpuId === r.gpuId);
                expect(chosen?.free).toBe(Math.min(...fits.map((g) => g.free)));
              }
              state = r.state;
            } else {
              expect(fits).toEqual([]);
              expect(r.freeSlots).toBe(before.totals.free);
              expect(r.largestFree).toBe(before.totals.largestFree);
              const biggest = Math.max(0, ...inventory.map((g) => g.slots));
              const want =
                inventory.length > 0 && o.slots > biggest ? 'too_large' : before.totals.free >= o.slots ? 'fragmented' : 'no_capacity';
              expect(r.reason).toBe(want);
            }
          }
          for (const g of occupancy(state).gpus) expect(g.used).toBeLessThanOrEqual(g.slots);
        }
        // Releasing everything gives the whole site back.
        for (const id of Object.keys(state.bookings)) state = release(state, id).state;
        expect(occupancy(state).totals.free).toBe(inventory.reduce((n, g) => n + g.slots, 0));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every booking across inventory changes and reports exactly those on absent GPUs', () => {
    fc.assert(
      fc.property(
        site,
        fc.array(fc.constantFrom(...SLOT_SIZES), { maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        (inventory, requests, keep) => {
          let state = emptyState(inventory);
          requests.forEach((slots, i) => {
            const r = allocate(state, { sessionId: `s${i}`, slots });
            if (r.ok) state = r.state;
          });
          const remaining = inventory.filter((_, i) => keep[i]);
          const change = setInventory(state, remaining);
          expect(Object.keys(change.state.bookings).sort()).toEqual(Object.keys(state.bookings).sort());
          const gone = new Set(inventory.filter((_, i) => !keep[i]).map((g) => g.id));
          expect(change.orphaned.map((b) => b.sessionId).sort()).toEqual(
            Object.entries(state.bookings)
              .filter(([, b]) => gone.has(b.gpuId))
              .map(([id]) => id)
              .sort(),
          );
          expect(change.overcommitted).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
