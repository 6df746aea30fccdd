/**
 * A warm pool's target size at a moment, and why, pure (the rules' shape is
 * src/schemas/pool-sizing.ts). The replenisher fills towards it and an admin reads its
 * reasons, e.g. "peak (mon–fri 08:00–18:00): 6 running; 3 misses in the last 15 min: +2".
 */
import { type PoolSizing, type PoolWindow, WEEKDAYS, type Weekday } from '../schemas/pool-sizing';

export interface PoolTarget {
  running: number;
  stopped: number;
  /** One sentence per rule that decided, in the order they applied. */
  reasons: string[];
}

/** Recent activity at the pool: when a create found no ready member (ms since the epoch). */
export interface PoolActivity {
  misses: readonly number[];
}

const MINUTES_PER_WEEK = 7 * 24 * 60;

/** One formatter per zone: making one costs ~40× what using it does, and the replenisher asks on every tick. */
const weekClocks = new Map<string, Intl.DateTimeFormat>();

function weekClock(timeZone: string): Intl.DateTimeFormat {
  let clock = weekClocks.get(timeZone);
  if (!clock) {
    clock = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    weekClocks.set(timeZone, clock);
  }
  return clock;
}

/** Minutes since Monday 00:00 in `timeZone` at `now`. */
export function minuteOfWeek(now: number, timeZone: string): number {
  const parts = weekClock(timeZone).formatToParts(new Date(now));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = WEEKDAYS.indexOf(get('weekday').toLowerCase().slice(0, 3) as Weekday);
  return day * 24 * 60 + Number(get('hour')) * 60 + Number(get('minute'));
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Whether `window` is open at `minute` of the week; a window past midnight belongs to the day it starts on. */
export function windowOpen(window: PoolWindow, minute: number): boolean {
  const from = minutesOf(window.from);
  const to = minutesOf(window.to);
  const length = to > from ? to - from : to + 24 * 60 - from;
  return window.days.some((d) => {
    const start = WEEKDAYS.indexOf(d) * 24 * 60 + from;
    return (minute - start + MINUTES_PER_WEEK) % MINUTES_PER_WEEK < length;
  });
}

function describeWindow(w: PoolWindow): string {
  return `${w.name} (${w.days.join(', ')} ${w.from}–${w.to})`;
}

/**
 * The target at `now`. The first open window (in the order given) sets the sizes, else the
 * base counts; the demand rule adds running members for recent misses; the floor and the
 * cap bound the running tier last.
 */
export function poolTarget(sizing: PoolSizing, activity: PoolActivity, now: number): PoolTarget {
  const reasons: string[] = [];
  const minute = minuteOfWeek(now, sizing.timeZone);
  const window = sizing.windows.find((w) => windowOpen(w, minute));
  let running = window ? window.running : sizing.running;
  const stopped = window?.stopped ?? sizing.stopped;
  reasons.push(
    window
      ? `${describeWindow(window)}: ${running} running, ${stopped} stopped`
      : `outside every window: ${running} running, ${stopped} stopped`,
  );

  if (sizing.demand) {
    const since = now - sizing.demand.windowMinutes * 60_000;
    const misses = activity.misses.filter((t) => t > since && t <= now).length;
    const boost = Math.min(sizing.demand.maxBoost, misses * sizing.demand.perMiss);
    if (boost > 0) {
      running += boost;
      reasons.push(`${misses} miss${misses === 1 ? '' : 'es'} in the last ${sizing.demand.windowMinutes} min: +${boost}`);
    }
  }

  if (running < sizing.floor) {
    running = sizing.floor;
    reasons.push(`floor: ${running}`);
  } else if (running > sizing.cap) {
    running = sizing.cap;
    reasons.push(`cap: ${running}`);
  }
  return { running, stopped, reasons };
}
