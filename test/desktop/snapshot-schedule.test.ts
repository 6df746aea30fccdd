import { describe, expect, it } from 'vitest';
import {
  type ScheduleCheck,
  type ScheduledStep,
  RECHECK_MS,
  SCHEDULE_SLACK_MS,
  effectiveSchedule,
  scheduledNameTime,
  scheduledStep,
  seen,
} from '../../src/desktop/snapshot-schedule';
import { type DesktopScheduleSetting, type SnapshotSchedule, SnapshotScheduleSchema } from '../../src/schemas/snapshot';
import { HandSnapshotNameSchema } from '../../src/schemas/snapshot';

const H = 3_600_000;
const DAY = 24 * H;
const NOW = Date.UTC(2026, 11, 5, 12);
const daily: SnapshotSchedule = { everyHours: 24, retention: { keepLast: 2 } };
const hourly: SnapshotSchedule = { everyHours: 1, retention: { keepDays: 1 } };

describe('which schedule applies', () => {
  const rows: [string, DesktopScheduleSetting | null, SnapshotSchedule | null, SnapshotSchedule | null, 'desktop' | 'template' | null][] = [
    ['neither', null, null, null, null],
    ['the template’s', null, daily, daily, 'template'],
    ['the desktop’s own, with no template schedule', hourly, null, hourly, 'desktop'],
    ['the desktop’s own over the template’s', hourly, daily, hourly, 'desktop'],
    ['none when the desktop turned it off', { off: true }, daily, null, 'desktop'],
  ];
  it.each(rows)('%s', (_, own, template, schedule, source) => {
    expect(effectiveSchedule(own, template)).toEqual({ schedule, source });
  });
});

describe('what a check does', () => {
  const auto = (hoursAgo: number) => {
    const at = NOW - hoursAgo * H;
    const iso = new Date(at).toISOString();
    return { name: `auto-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`, takenAt: at };
  };
  const base: ScheduleCheck = { schedule: daily, lastRunAt: null, snapshots: [], stoppedAt: null, now: NOW };
  const take: ScheduledStep = { kind: 'take', name: 'auto-20261205-120000', nextCheckAt: NOW + RECHECK_MS };
  const rows: [string, Partial<ScheduleCheck>, ScheduledStep][] = [
    ['takes the first one at once', {}, take],
    ['takes one when the newest scheduled one is an interval old', { snapshots: [auto(24)] }, take],
    ['takes one a cron period early, so the times do not drift', { snapshots: [auto(24 - 4 / 60)] }, take],
    ['waits for the interval', { snapshots: [auto(3)] }, { kind: 'wait', why: 'not_due', nextCheckAt: NOW + 21 * H - SCHEDULE_SLACK_MS }],
    [
      'counts the last run, so a take that failed waits an interval',
      { lastRunAt: NOW - 2 * H },
      { kind: 'wait', why: 'not_due', nextCheckAt: NOW + 22 * H - SCHEDULE_SLACK_MS },
    ],
    ['ignores snapshots taken by hand for the interval', { snapshots: [{ name: 'mine', takenAt: NOW - H }] }, take],
    [
      'after a take, deletes the oldest scheduled one past keepLast',
      { lastRunAt: NOW - 60_000, snapshots: [auto(72), auto(48), auto(24), auto(0)] },
      { kind: 'prune', name: auto(72).name, nextCheckAt: NOW + RECHECK_MS },
    ],
    [
      'never deletes a hand-taken one, however old',
      { snapshots: [{ name: 'mine', takenAt: NOW - 900 * DAY }, auto(24), auto(1)] },
      { kind: 'wait', why: 'not_due', nextCheckAt: NOW + 23 * H - SCHEDULE_SLACK_MS },
    ],
    [
      'a STOPPED desktop with a scheduled snapshot since it stopped has not changed: no take, an interval later',
      { snapshots: [auto(30)], stoppedAt: NOW - 40 * H },
      { kind: 'wait', why: 'unchanged', nextCheckAt: NOW + 24 * H },
    ],
    ['a STOPPED desktop that ran since its last scheduled snapshot gets one', { snapshots: [auto(30)], stoppedAt: NOW - 10 * H }, take],
    [
      'with keepDays, looks again when the next one ages out, before the next take',
      { schedule: { everyHours: 168, retention: { keepDays: 1 } }, snapshots: [auto(20)] },
      { kind: 'wait', why: 'not_due', nextCheckAt: NOW + 4 * H },
    ],
    [
      'with keepDays alone, deletes what is older',
      { schedule: hourly, lastRunAt: NOW - 10 * 60_000, snapshots: [auto(25), auto(0)] },
      { kind: 'prune', name: auto(25).name, nextCheckAt: NOW + RECHECK_MS },
    ],
  ];
  it.each(rows)('%s', (_, change, step) => {
    expect(scheduledStep({ ...base, ...change })).toEqual(step);
  });
});

describe('schedules and names', () => {
  it('reads the time of a scheduled name, and Proxmox’s time first', () => {
    expect(scheduledNameTime('auto-20261205-120000')).toBe(NOW);
    expect(scheduledNameTime('before-upgrade')).toBeNull();
    expect(seen([{ name: 'auto-20261205-120000', takenAt: null }])).toEqual([{ name: 'auto-20261205-120000', takenAt: NOW }]);
    expect(seen([{ name: 'auto-20261205-120000', takenAt: '2026-12-05T12:00:07.000Z' }])[0]?.takenAt).toBe(NOW + 7000);
    expect(seen([{ name: 'old', takenAt: null }])).toEqual([{ name: 'old', takenAt: 0 }]);
  });

  it('refuses schedules outside the bounds, with the reason', () => {
    const problem = (s: unknown) => SnapshotScheduleSchema.safeParse(s).error?.issues[0]?.message ?? null;
    expect(problem({ everyHours: 24, retention: { keepLast: 7 } })).toBeNull();
    expect(problem({ everyHours: 24, retention: { keepDays: 100 } })).toBeNull();
    expect(problem({ everyHours: 1, retention: { keepDays: 5 } })).toBe(
      'keepDays would keep more than 100 scheduled snapshots at this interval: keep fewer days or take them less often',
    );
    expect(problem({ everyHours: 0, retention: { keepLast: 1 } })).not.toBeNull();
    expect(problem({ everyHours: 169, retention: { keepLast: 1 } })).not.toBeNull();
    expect(problem({ everyHours: 24, retention: {} })).toBe('Give keepLast, keepDays or both');
  });

  it('keeps the auto- prefix for scheduled snapshots', () => {
    expect(HandSnapshotNameSchema.safeParse('auto-mine').error?.issues[0]?.message).toBe(
      'Names starting with auto- are kept for scheduled snapshots',
    );
    expect(HandSnapshotNameSchema.safeParse('automatic').success).toBe(true);
  });
});
