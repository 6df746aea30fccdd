/**
 * The desktop's clocks as a pure function of its state: the watchdog of the step in
 * progress, idle stop, the session limit and expiry, each stop with a warning first.
 * The Durable Object sets one alarm for the earliest time this module names and, when
 * it fires, asks `dueAction` what to do; nothing else decides when a desktop stops.
 */
import type { DesktopStatus, WarningKind } from '../schemas/desktop';
import { isInProgress } from './transitions';

export type { WarningKind } from '../schemas/desktop';

export interface TimerState {
  status: DesktopStatus;
  /** When the current status was entered (ms). */
  statusSince: number;
  /** When the desktop last became RUNNING (ms), while it is RUNNING. */
  runningSince: number | null;
  lastActivityAt: number | null;
  idleTimeoutMinutes: number;
  maxSessionMinutes: number | null;
  expiresAt: number | null;
  /**
   * After an expiry whose deletion did not happen (the site's bridge was offline, say), the
   * next try is not before this time: the desktop waits FAILED instead of going round
   * FAILED → STOPPING every few minutes. Its warning went out before the first try.
   */
  expiryRetryAt?: number | null;
  /** The deadline each warning was last sent for: a moved deadline warns again. */
  warned: Partial<Record<WarningKind, number>>;
  /** A warm pool's member nobody has claimed yet: nobody uses it, so it is never idle and has no session to end. */
  pooled?: boolean;
}

export interface TimerPolicy {
  watchdogSeconds(status: DesktopStatus): number;
  /** How long before a stop (or expiry) the warning goes out. */
  warningLeadMs: number;
}

export type DueAction =
  | { kind: 'expire' }
  | { kind: 'watchdog' }
  | { kind: 'session_limit' }
  | { kind: 'idle_stop' }
  | { kind: 'warning'; warning: WarningKind; at: number };

const MINUTE = 60_000;

/** The lead before a deadline: the configured one, or half the span when the span is shorter. */
const leadFor = (spanMs: number, policy: TimerPolicy) => (spanMs < policy.warningLeadMs ? spanMs / 2 : policy.warningLeadMs);

export function idleStopAt(t: TimerState): number | null {
  if (t.status !== 'RUNNING' || t.pooled) return null;
  return (t.lastActivityAt ?? t.runningSince ?? t.statusSince) + t.idleTimeoutMinutes * MINUTE;
}

export function sessionEndsAt(t: TimerState): number | null {
  if (t.status !== 'RUNNING' || t.pooled || t.maxSessionMinutes === null || t.runningSince === null) return null;
  return t.runningSince + t.maxSessionMinutes * MINUTE;
}

export function expiresAt(t: TimerState): number | null {
  return t.status === 'DELETED' ? null : t.expiresAt;
}

interface Deadline {
  action: Exclude<DueAction, { kind: 'warning' }>['kind'];
  at: number;
  warning?: { kind: WarningKind; at: number };
}

/** Every pending deadline, most important first (expiry beats a watchdog beats a session limit beats idle). */
function deadlines(t: TimerState, policy: TimerPolicy): Deadline[] {
  const out: Deadline[] = [];
  const expiry = expiresAt(t);
  if (expiry !== null && t.expiryRetryAt) out.push({ action: 'expire', at: Math.max(expiry, t.expiryRetryAt) });
  else if (expiry !== null) out.push({ action: 'expire', at: expiry, warning: { kind: 'expiry', at: expiry - policy.warningLeadMs } });
  if (isInProgress(t.status)) out.push({ action: 'watchdog', at: t.statusSince + policy.watchdogSeconds(t.status) * 1000 });
  const session = sessionEndsAt(t);
  if (session !== null && t.maxSessionMinutes !== null) {
    out.push({
      action: 'session_limit',
      at: session,
      warning: { kind: 'session_limit', at: session - leadFor(t.maxSessionMinutes * MINUTE, policy) },
    });
  }
  const idle = idleStopAt(t);
  if (idle !== null)
    out.push({ action: 'idle_stop', at: idle, warning: { kind: 'idle', at: idle - leadFor(t.idleTimeoutMinutes * MINUTE, policy) } });
  return out;
}

/** What must happen now, if anything. */
export function dueAction(t: TimerState, now: number, policy: TimerPolicy): DueAction | null {
  const all = deadlines(t, policy);
  for (const d of all) if (d.at <= now) return { kind: d.action };
  for (const d of all) {
    if (d.warning && d.warning.at <= now && t.warned[d.warning.kind] !== d.at)
      return { kind: 'warning', warning: d.warning.kind, at: d.at };
  }
  return null;
}

/** The next time something may become due (for the alarm), or null when nothing is pending. */
export function nextWakeUp(t: TimerState, policy: TimerPolicy): number | null {
  let next: number | null = null;
  const consider = (at: number) => {
    if (next === null || at < next) next = at;
  };
  for (const d of deadlines(t, policy)) {
    consider(d.at);
    if (d.warning && t.warned[d.warning.kind] !== d.at) consider(d.warning.at);
  }
  return next;
}

/**
 * The warnings already given for deadlines still ahead (activity since then would have
 * moved the deadline): the live stream repeats them after its snapshot, so a viewer who
 * arrives after a warning went out still sees it.
 */
export function warningsInForce(t: TimerState, now: number, policy: TimerPolicy): { kind: WarningKind; at: number }[] {
  const out: { kind: WarningKind; at: number }[] = [];
  for (const d of deadlines(t, policy))
    if (d.warning && d.at > now && t.warned[d.warning.kind] === d.at) out.push({ kind: d.warning.kind, at: d.at });
  return out;
}
