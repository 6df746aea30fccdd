/**
 * A pool over shards, and what a shard makes of what it reads of a member: pure rules
 * (src/desktop/pool-shard.ts), as tables.
 */
import { describe, expect, it } from 'vitest';
import type { PoolMember } from '../../src/desktop/pool-plan';
import { MEMBER_CREATE_GRACE_MS, type MemberReading, observeMember, shardSizing } from '../../src/desktop/pool-shard';
import { PoolSizingSchema } from '../../src/schemas/pool-sizing';

const NOW = Date.parse('2026-12-07T09:00:00Z');

describe('shardSizing', () => {
  const sizing = PoolSizingSchema.parse({
    running: 7,
    stopped: 3,
    floor: 2,
    cap: 10,
    windows: [{ name: 'peak', days: ['mon'], from: '08:00', to: '18:00', running: 5, stopped: 1 }],
    demand: { windowMinutes: 15, perMiss: 1, maxBoost: 4 },
  });

  it('shares every count out so the shards together keep the pool’s sizes', () => {
    for (const shards of [1, 2, 3, 4, 16]) {
      const parts = Array.from({ length: shards }, (_, i) => shardSizing(sizing, i, shards));
      const total = (f: (s: typeof sizing) => number) => parts.reduce((n, p) => n + f(p), 0);
      expect([total((s) => s.running), total((s) => s.stopped), total((s) => s.floor), total((s) => s.cap)]).toEqual([7, 3, 2, 10]);
      expect(total((s) => s.windows[0]?.running ?? 0)).toBe(5);
      expect(total((s) => s.demand?.maxBoost ?? 0)).toBe(4);
      // No shard's floor is above its cap, and no two shards differ by more than one member.
      for (const p of parts) expect(p.floor).toBeLessThanOrEqual(p.cap);
      expect(Math.max(...parts.map((p) => p.running)) - Math.min(...parts.map((p) => p.running))).toBeLessThanOrEqual(1);
    }
  });
});

describe('observeMember', () => {
  const member = (m: Partial<PoolMember> = {}): PoolMember => ({
    desktopId: 'dk1',
    tier: 'running',
    phase: 'building',
    since: NOW - 5_000,
    ...m,
  });
  const read = (status: NonNullable<MemberReading>['status'], r: Partial<NonNullable<MemberReading>> = {}): MemberReading => ({
    status,
    unclaimed: true,
    busy: false,
    ...r,
  });

  const rows: [string, PoolMember, MemberReading, PoolMember | 'gone'][] = [
    ['built: ready in its tier', member(), read('RUNNING'), member({ phase: 'ready', since: NOW })],
    ['still building', member(), read('CONFIGURING', { busy: true }), member()],
    ['not found yet, just asked for: kept', member(), null, member()],
    ['not found long after it was asked for: gone', member({ since: NOW - MEMBER_CREATE_GRACE_MS - 1 }), null, 'gone'],
    ['claimed by someone: gone', member({ phase: 'ready' }), read('RUNNING', { unclaimed: false }), 'gone'],
    ['deleted: gone', member({ phase: 'ready' }), read('DELETED'), 'gone'],
    ['failed: failed, for the replenisher to replace', member({ phase: 'ready' }), read('FAILED'), member({ phase: 'failed', since: NOW })],
    [
      'ready and still so: unchanged (keeps its place in the queue)',
      member({ phase: 'ready' }),
      read('RUNNING'),
      member({ phase: 'ready' }),
    ],
    [
      'a running member stopped outside the pool: a stopped one now',
      member({ phase: 'ready' }),
      read('STOPPED'),
      member({ tier: 'stopped', phase: 'ready', since: NOW }),
    ],
    [
      'a ready member with a command running: moving',
      member({ phase: 'ready' }),
      read('RUNNING', { busy: true }),
      member({ phase: 'moving', since: NOW }),
    ],
    [
      'a member moved to the stopped tier that got there',
      member({ tier: 'stopped', phase: 'moving' }),
      read('STOPPED'),
      member({ tier: 'stopped', phase: 'ready', since: NOW }),
    ],
  ];
  for (const [name, m, reading, want] of rows) {
    it(name, () => expect(observeMember(m, reading, NOW)).toEqual(want));
  }
});
