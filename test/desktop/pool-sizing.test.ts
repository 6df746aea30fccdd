import { describe, expect, it } from 'vitest';
import { minuteOfWeek, poolTarget, windowOpen } from '../../src/desktop/pool-sizing';
import { type PoolSizing, PoolSizingSchema } from '../../src/schemas/pool-sizing';

const MIN = 60_000;
// Friday 4 December 2026, 12:00 UTC (13:00 in Berlin, 07:00 in New York).
const FRI_NOON_UTC = Date.UTC(2026, 11, 4, 12);

const office: PoolSizing = PoolSizingSchema.parse({
  timeZone: 'Europe/Berlin',
  running: 1,
  stopped: 2,
  windows: [
    { name: 'peak', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00', running: 6, stopped: 4 },
    { name: 'night batch', days: ['fri'], from: '22:00', to: '02:00', running: 3 },
  ],
  demand: { windowMinutes: 15, perMiss: 1, maxBoost: 2 },
  floor: 1,
  cap: 7,
});

describe('warm pool sizing', () => {
  it('reads the week in the pool’s time zone', () => {
    // Friday is day 4 from Monday; 13:00 in Berlin in December (UTC+1).
    expect(minuteOfWeek(FRI_NOON_UTC, 'Europe/Berlin')).toBe(4 * 1440 + 13 * 60);
    expect(minuteOfWeek(FRI_NOON_UTC, 'America/New_York')).toBe(4 * 1440 + 7 * 60);
    // Summer time: 12:00 UTC on Monday 6 July 2026 is 14:00 in Berlin.
    expect(minuteOfWeek(Date.UTC(2026, 6, 6, 12), 'Europe/Berlin')).toBe(14 * 60);
  });

  it('opens windows on their days, and one past midnight into the next day', () => {
    const [peak, night] = office.windows;
    if (!peak || !night) throw new Error('fixture');
    const at = (day: number, hh: number, mm = 0) => day * 1440 + hh * 60 + mm;
    expect(windowOpen(peak, at(0, 8))).toBe(true);
    expect(windowOpen(peak, at(0, 17, 59))).toBe(true);
    expect(windowOpen(peak, at(0, 18))).toBe(false);
    expect(windowOpen(peak, at(5, 12))).toBe(false); // Saturday
    expect(windowOpen(night, at(4, 23))).toBe(true);
    expect(windowOpen(night, at(5, 1, 59))).toBe(true); // Saturday night, from Friday's window
    expect(windowOpen(night, at(5, 2))).toBe(false);
    expect(windowOpen(night, at(3, 23))).toBe(false); // Thursday
    // A Sunday window past midnight runs into Monday.
    expect(windowOpen({ ...night, days: ['sun'] }, at(0, 1))).toBe(true);
  });

  it.each([
    ['in the peak window', FRI_NOON_UTC, [], 6, 4, ['peak (mon, tue, wed, thu, fri 08:00–18:00): 6 running, 4 stopped']],
    ['outside every window', Date.UTC(2026, 11, 6, 12), [], 1, 2, ['outside every window: 1 running, 2 stopped']],
    [
      'a window that keeps the base stopped tier',
      Date.UTC(2026, 11, 4, 22),
      [],
      3,
      2,
      ['night batch (fri 22:00–02:00): 3 running, 2 stopped'],
    ],
    [
      'after misses, capped by the demand rule and the pool’s cap',
      FRI_NOON_UTC,
      [FRI_NOON_UTC - 2 * MIN, FRI_NOON_UTC - 5 * MIN, FRI_NOON_UTC - 14 * MIN, FRI_NOON_UTC - 16 * MIN],
      7,
      4,
      ['peak (mon, tue, wed, thu, fri 08:00–18:00): 6 running, 4 stopped', '3 misses in the last 15 min: +2', 'cap: 7'],
    ],
    [
      'one recent miss on a Sunday',
      Date.UTC(2026, 11, 6, 12),
      [Date.UTC(2026, 11, 6, 12) - MIN],
      2,
      2,
      ['outside every window: 1 running, 2 stopped', '1 miss in the last 15 min: +1'],
    ],
  ])('%s', (_label, now, misses, running, stopped, reasons) => {
    expect(poolTarget(office, { misses }, now)).toEqual({ running, stopped, reasons });
  });

  it('keeps the floor when a window asks for fewer', () => {
    const quiet = PoolSizingSchema.parse({ ...office, running: 0, floor: 2 });
    expect(poolTarget(quiet, { misses: [] }, Date.UTC(2026, 11, 6, 12))).toEqual({
      running: 2,
      stopped: 2,
      reasons: ['outside every window: 0 running, 2 stopped', 'floor: 2'],
    });
  });

  it('refuses sizing an admin could not mean, with the field named', () => {
    const issue = (input: unknown) => PoolSizingSchema.safeParse(input).error?.issues[0];
    expect(issue({ running: 1, cap: 5, timeZone: 'Mars/Olympus' })?.message).toMatch(/IANA time zone/);
    expect(issue({ running: 1, cap: 5, floor: 6 })?.path).toEqual(['floor']);
    expect(issue({ running: 1, cap: 5, windows: [{ name: 'x', days: ['mon'], from: '25:00', to: '26:00', running: 1 }] })?.path).toEqual([
      'windows',
      0,
      'from',
    ]);
    expect(issue({ running: 1, cap: 5, windows: [{ name: 'x', days: ['mon'], from: '09:00', to: '09:00', running: 1 }] })?.path).toEqual([
      'windows',
      0,
      'to',
    ]);
  });
});
