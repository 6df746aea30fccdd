/** The desktop's clocks as a pure function: when warnings and stops are due. */
import { describe, expect, it } from 'vitest';
import { type TimerPolicy, type TimerState, dueAction, idleStopAt, nextWakeUp, warningsInForce } from '../../src/desktop/timers';

const MIN = 60_000;
const policy: TimerPolicy = { watchdogSeconds: () => 600, warningLeadMs: 5 * MIN };
const T0 = Date.parse('2026-11-21T10:00:00Z');

const running = (over: Partial<TimerState> = {}): TimerState => ({
  status: 'RUNNING',
  statusSince: T0,
  runningSince: T0,
  lastActivityAt: T0,
  idleTimeoutMinutes: 30,
  maxSessionMinutes: null,
  expiresAt: null,
  warned: {},
  ...over,
});

describe('idle clock', () => {
  it('warns the lead time before the stop, then stops', () => {
    const t = running();
    expect(idleStopAt(t)).toBe(T0 + 30 * MIN);
    expect(nextWakeUp(t, policy)).toBe(T0 + 25 * MIN);
    expect(dueAction(t, T0 + 25 * MIN - 1, policy)).toBeNull();
    expect(dueAction(t, T0 + 25 * MIN, policy)).toEqual({ kind: 'warning', warning: 'idle', at: T0 + 30 * MIN });
    const warned = { ...t, warned: { idle: T0 + 30 * MIN } };
    expect(dueAction(warned, T0 + 26 * MIN, policy)).toBeNull();
    expect(nextWakeUp(warned, policy)).toBe(T0 + 30 * MIN);
    expect(dueAction(warned, T0 + 30 * MIN, policy)).toEqual({ kind: 'idle_stop' });
  });

  it('warns at half the timeout when the timeout is shorter than the lead', () => {
    const t = running({ idleTimeoutMinutes: 4 });
    expect(nextWakeUp(t, policy)).toBe(T0 + 2 * MIN);
  });

  it('moves the deadline with activity, and warns again for the new one', () => {
    const activity = T0 + 27 * MIN;
    const t = running({ lastActivityAt: activity, warned: { idle: T0 + 30 * MIN } });
    expect(dueAction(t, T0 + 30 * MIN, policy)).toBeNull();
    expect(nextWakeUp(t, policy)).toBe(activity + 25 * MIN);
    expect(dueAction(t, activity + 25 * MIN, policy)).toEqual({ kind: 'warning', warning: 'idle', at: activity + 30 * MIN });
  });

  it('keeps a given warning in force until its deadline passes or moves', () => {
    const t = running({ warned: { idle: T0 + 30 * MIN } });
    expect(warningsInForce(running(), T0 + 26 * MIN, policy)).toEqual([]);
    expect(warningsInForce(t, T0 + 26 * MIN, policy)).toEqual([{ kind: 'idle', at: T0 + 30 * MIN }]);
    expect(warningsInForce(t, T0 + 30 * MIN, policy)).toEqual([]);
    expect(warningsInForce({ ...t, lastActivityAt: T0 + 27 * MIN }, T0 + 28 * MIN, policy)).toEqual([]);
    expect(warningsInForce({ ...t, status: 'STOPPED', runningSince: null }, T0 + 26 * MIN, policy)).toEqual([]);
  });

  it('has no idle clock unless RUNNING', () => {
    expect(nextWakeUp(running({ status: 'STOPPED', runningSince: null }), policy)).toBeNull();
  });
});

describe('session limit and expiry', () => {
  it('stops a session at its limit, with a warning first', () => {
    const t = running({ maxSessionMinutes: 60, idleTimeoutMinutes: 600 });
    expect(nextWakeUp(t, policy)).toBe(T0 + 55 * MIN);
    expect(dueAction(t, T0 + 55 * MIN, policy)).toEqual({ kind: 'warning', warning: 'session_limit', at: T0 + 60 * MIN });
    expect(dueAction({ ...t, warned: { session_limit: T0 + 60 * MIN } }, T0 + 60 * MIN, policy)).toEqual({ kind: 'session_limit' });
  });

  it('expires whatever the status, and expiry wins over every other clock', () => {
    const stopped = running({ status: 'STOPPED', runningSince: null, expiresAt: T0 + 120 * MIN });
    expect(dueAction(stopped, T0 + 115 * MIN, policy)).toEqual({ kind: 'warning', warning: 'expiry', at: T0 + 120 * MIN });
    const both = running({ expiresAt: T0 + 30 * MIN, warned: { expiry: T0 + 30 * MIN, idle: T0 + 30 * MIN } });
    expect(dueAction(both, T0 + 30 * MIN, policy)).toEqual({ kind: 'expire' });
    expect(dueAction({ ...stopped, status: 'DELETED' }, T0 + 200 * MIN, policy)).toBeNull();
  });

  it('times out a step in progress', () => {
    const t: TimerState = { ...running(), status: 'STARTING', runningSince: null };
    expect(nextWakeUp(t, policy)).toBe(T0 + 600_000);
    expect(dueAction(t, T0 + 600_000, policy)).toEqual({ kind: 'watchdog' });
  });
});
