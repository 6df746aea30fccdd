/**
 * The desktop's rules as one pure function: given what the desktop is, what happened and
 * when, `decide` answers what it becomes (`next`, and the `transition` when the status
 * moves), what must be done about it (`effects`, run through the object's outbox after
 * the change is stored), what its viewers are told (`liveMessages`), and the usage
 * intervals it opens or closes. Nothing here reads storage, the clock or the network, so
 * every rule is tested as a table (test/desktop/decide.test.ts); the Durable Object
 * (workers/desktop-session/desktop-session.ts) loads, decides, commits and runs the outbox.
 */
import { creatorService, serviceAccountName, tenantOf } from '../auth/tenancy';
import { DEFAULT_LAUNCH, type LaunchSpec } from '../lib/launch';
import { type IndexEntry, indexNamesOf } from '../lib/owner-index';
import type { Command, CommandKind, CompleteFrame, DesktopFacts, FailFrame, PodTurn } from '../schemas/bridge-protocol';
import type { ActivitySource, Desktop, DesktopStatus, TransitionRecord } from '../schemas/desktop';
import type { DesktopEvent as WebhookEvent, EventType } from '../schemas/events';
import type { LiveMessage } from '../schemas/live';
import { isPoolMember } from '../schemas/pool';
import { rehomeOnClaim } from './pool-rehome';
import type { BridgeReport, OutboxEffect, SessionState, UsageChange } from './session-state';
import { type TimerPolicy, type TimerState, type WarningKind, dueAction, idleStopAt, sessionEndsAt } from './timers';
import {
  ACTION_COMMAND,
  COMPLETION_EVENT,
  type DesktopEvent,
  SNAPSHOT_STATUSES,
  STEP_EVENT,
  type SideCommand,
  allowedActions,
  isSideCommand,
  nextStatus,
} from './transitions';

type SnapshotSpec = NonNullable<Command['spec']['snapshot']>;

/** A side command (a snapshot taken or deleted) older than this no longer blocks the next one: it is superseded. */
export const SIDE_COMMAND_STALE_MS = 15 * 60_000;

export interface DecideRules {
  timers: TimerPolicy;
  /** A fresh id with this prefix, for commands, webhook events and usage intervals. */
  newId: (prefix: string) => string;
}

/** Everything that can happen to a desktop. */
export type DesktopInput =
  /** `requestId`: the HTTP request's id, carried on the command it sets off (logs end to end). */
  /** `pool`: the desktop is built as a member of this warm pool, for whoever claims it later. */
  | { kind: 'create'; desktop: Desktop; actor: string; launch: LaunchSpec; requestId?: string; pool?: string }
  /** Someone takes a ready member of `poolId`: from now on the desktop is theirs, as if they had created it. */
  /** `turn`: for a Selkies member, the TURN credentials of the claimer's new pod (./pool-rehome.ts). */
  | { kind: 'claim'; poolId: string; owner: ClaimedBy; actor: string; requestId?: string; turn?: PodTurn }
  /**
   * `launch`: for a start (or a restore or rebuild of a STOPPED desktop), what was prepared for the new run (its id,
   * GPU booking, TURN credentials). `snapshot`: the snapshot a restore goes back to.
   */
  | {
      kind: 'act';
      action: 'start' | 'stop' | 'delete' | 'restore' | 'rebuild';
      actor: string;
      launch?: Partial<LaunchSpec>;
      requestId?: string;
      snapshot?: string;
    }
  /** Take or delete a snapshot: the status stays, the snapshot command is the active one until the bridge answers. */
  | { kind: 'snapshot'; op: 'take' | 'delete'; snapshot: SnapshotSpec; actor: string; requestId?: string }
  /** Someone uses it: a keepalive, or viewers the bridge sees (`siteId`: only its own site may say so). */
  | { kind: 'activity'; source: 'keepalive' | 'viewer'; reason: string | null; siteId?: string }
  /** A viewer is about to open it: a connect link for Guacamole, or the credentials of a Selkies session. */
  | { kind: 'connect'; via: 'guacamole' | 'selkies' }
  | { kind: 'bridge'; siteId: string; frame: BridgeReport }
  /** The jobs queue gave up delivering a command: the site's bridge stayed offline. */
  | { kind: 'undeliverable'; commandId: string; attempts: number }
  /** What reconciliation saw of its VM at `takenAt` (null: no VM). */
  | { kind: 'reconcile'; siteId: string; takenAt: string; vm: { status: string } | null }
  /** Its clocks: the one due first runs (the object asks again while another is due). */
  | { kind: 'clock'; bridgeOffline: boolean };

/** What a claim sets: the new owner, and the name and limits their request asked for. */
export type ClaimedBy = Pick<Desktop, 'userId' | 'createdBy' | 'name' | 'idleTimeoutMinutes' | 'maxSessionMinutes' | 'expiresAt'>;

/**
 * Why nothing happened. NOT_FOUND, INVALID_STATE and CONFLICT answer a request;
 * IGNORED is a report that does not apply (another site's, a superseded command's).
 */
export type Refusal = { code: 'NOT_FOUND' | 'INVALID_STATE' | 'CONFLICT' | 'IGNORED'; message: string };

export interface Decision {
  /** The state to store; null when nothing changes. */
  next: SessionState | null;
  /** The status transition to record, when the status moved (or a step was recorded). */
  transition: TransitionRecord | null;
  effects: OutboxEffect[];
  liveMessages: LiveMessage[];
  usage: UsageChange[];
  refused: Refusal | null;
}

export const EXPIRY_RETRY_MS = 3_600_000;

/** What each step in progress is doing, for the watchdog's message. */
export const STEP_NAMES: Partial<Record<DesktopStatus, string>> = {
  PENDING: 'waiting for the site bridge to pick up the command',
  PROVISIONING: 'cloning the template VM',
  STARTING: 'starting the VM',
  WAITING_FOR_IP: 'waiting for the VM to report an IP address',
  CONFIGURING: 'setting up the remote desktop connection',
  STOPPING: 'shutting the VM down',
};

/** Webhook event types that a status reached also raises, besides desktop.status_changed. */
const STATUS_EVENT: Partial<Record<DesktopStatus, EventType>> = {
  RUNNING: 'desktop.running',
  STOPPED: 'desktop.stopped',
  FAILED: 'desktop.failed',
  DELETED: 'desktop.deleted',
};

const WARNING_EVENT: Record<WarningKind, EventType> = {
  idle: 'desktop.idle_warning',
  session_limit: 'desktop.session_limit_warning',
  expiry: 'desktop.expiry_warning',
};

const COMPLETED_MESSAGE: Record<Exclude<CommandKind, SideCommand>, string> = {
  create: 'Desktop ready',
  start: 'Desktop ready',
  stop: 'Desktop stopped',
  delete: 'Desktop deleted; VM and connection removed',
  restore: 'Desktop restored and ready',
  rebuild: 'Desktop rebuilt from its template and ready',
};

const iso = (ms: number) => new Date(ms).toISOString();
const minutes = (n: number) => `${n} minute${n === 1 ? '' : 's'}`;
const ended = (st: DesktopStatus | null) => st === 'STOPPED' || st === 'FAILED' || st === 'DELETED';

const nothing = (refused: Refusal | null = null): Decision => ({
  next: null,
  transition: null,
  effects: [],
  liveMessages: [],
  usage: [],
  refused,
});
const refuse = (code: Refusal['code'], message: string) => nothing({ code, message });
/** A WebRTC desktop is a pod with a home volume claim: there is no template VM to rebuild it from. */
export const rebuildRefusal = (d: Pick<Desktop, 'id'>) =>
  `Desktop ${d.id} is a WebRTC (Selkies) desktop: a Kubernetes pod whose home is a persistent volume claim, not a VM, so it cannot be rebuilt from a template`;
const notRunning = (d: Desktop, what: string) => refuse('INVALID_STATE', `Cannot ${what} desktop ${d.id}: it is ${d.status}, not RUNNING`);

export function decide(state: SessionState | null, input: DesktopInput, now: number, rules: DecideRules): Decision {
  if (input.kind === 'create') return create(state, input, now, rules);
  if (!state) return refuse('NOT_FOUND', 'desktop not found');
  switch (input.kind) {
    case 'act':
      return act(state, input, now, rules);
    case 'claim':
      return claim(state, input, now, rules);
    case 'snapshot':
      return snapshotCommand(state, input, now, rules);
    case 'activity':
      return activity(state, input, now);
    case 'connect':
      return connect(state, input.via, now);
    case 'bridge':
      return bridgeReport(state, input.siteId, input.frame, now, rules);
    case 'undeliverable':
      return undeliverable(state, input, now, rules);
    case 'reconcile':
      return reconcile(state, input, now, rules);
    case 'clock':
      return clock(state, input.bridgeOffline, now, rules);
  }
}

// ---- requests ----

function create(state: SessionState | null, input: Extract<DesktopInput, { kind: 'create' }>, now: number, rules: DecideRules): Decision {
  if (state) {
    // A create that reaches its object twice (a retried request) answers what the first made.
    return state.desktop.id === input.desktop.id ? nothing() : refuse('CONFLICT', 'desktop id already in use');
  }
  const initial: SessionState = {
    desktop: { ...input.desktop, status: 'PENDING' },
    revision: 0,
    seq: 0,
    statusSince: now,
    activeCommand: null,
    runningSince: null,
    warned: {},
    openUsageId: null,
    launch: input.launch,
    pool: input.pool ?? null,
  };
  const step = {
    event: 'create',
    actor: input.actor,
    reason: 'desktop creation requested',
    command: 'create',
    requestId: input.requestId,
  } as const;
  return transit(initial, step, now, rules, null);
}

function act(s: SessionState, input: Extract<DesktopInput, { kind: 'act' }>, now: number, rules: DecideRules): Decision {
  const { action, actor } = input;
  const d = s.desktop;
  // DELETE is idempotent: asking again while the teardown runs changes nothing.
  if (action === 'delete' && d.status === 'STOPPING' && s.activeCommand?.kind === 'delete') return nothing();
  if (action === 'rebuild' && d.backend === 'selkies') return refuse('INVALID_STATE', rebuildRefusal(d));
  if (!nextStatus(d.status, action)) {
    // A restore needs a snapshot's name: it is no hint for a plain action.
    const allowed = allowedActions(d.status).filter((a) => a !== 'create' && a !== 'restore');
    const hint = allowed.length ? `; possible now: ${allowed.join(', ')}` : '';
    return refuse('INVALID_STATE', `Cannot ${action} desktop ${d.id}: it is ${d.status}${hint}`);
  }
  const side = sideCommandBusy(s, now);
  if (side && action !== 'delete') return side;
  if (action === 'restore' && !input.snapshot) return refuse('INVALID_STATE', 'A restore names the snapshot to go back to');
  let run = s;
  if (startsNewRun(d.status, action)) {
    // A start is a new run: it never goes out with the previous run's GPU booking or TURN credentials.
    const fresh = { runId: input.launch?.runId ?? null, gpu: input.launch?.gpu ?? null, turn: input.launch?.turn ?? null };
    if ((d.gpuSlots > 0 && !fresh.gpu) || (d.backend === 'selkies' && !fresh.turn)) {
      return refuse('INVALID_STATE', `Desktop ${d.id} changed while its start was being prepared; try again`);
    }
    run = { ...s, launch: { ...(s.launch ?? DEFAULT_LAUNCH), ...fresh } };
  }
  const reason =
    action === 'delete'
      ? 'deletion requested: tearing down the VM and its connection'
      : action === 'restore'
        ? `restore of snapshot ${input.snapshot} requested: rolling the VM back`
        : action === 'rebuild'
          ? 'rebuild requested: cloning a new VM from the template, keeping the data disk'
          : `${action} requested`;
  const patch: Partial<Desktop> = { errorMessage: null };
  if (action === 'stop') patch.stopReason = `stopped by ${actor}`;
  const snapshot = action === 'restore' && input.snapshot ? { name: input.snapshot, withRam: false } : undefined;
  const step = { event: action, actor, reason, patch, command: ACTION_COMMAND[action], requestId: input.requestId, snapshot };
  return transit(run, step, now, rules);
}

/**
 * Whether `action` on a desktop in `status` begins a new run (a create's or a start's kind: its own run id, fresh
 * TURN credentials, GPU slots booked for it): a start, a restore or rebuild of a STOPPED desktop, and a rebuild of a
 * FAILED one, which brings it back on a new VM.
 */
export function startsNewRun(status: DesktopStatus, action: Extract<DesktopInput, { kind: 'act' }>['action']): boolean {
  if (action === 'start') return true;
  return (status === 'STOPPED' && (action === 'restore' || action === 'rebuild')) || (status === 'FAILED' && action === 'rebuild');
}

/**
 * A ready member of a warm pool becomes the claimer's desktop: a transition to the status it is in (RUNNING, or
 * STOPPED for the stopped tier, which the caller then starts; a running Selkies member goes STARTING while its pod is
 * replaced by one with the claimer's home, ./pool-rehome.ts), recorded with who claimed it, which opens its usage,
 * starts its idle clock and session now, lists it in its new owner's indexes and tells their webhooks.
 */
function claim(s: SessionState, input: Extract<DesktopInput, { kind: 'claim' }>, now: number, rules: DecideRules): Decision {
  const d = s.desktop;
  if (s.pool !== input.poolId) return refuse('CONFLICT', `Desktop ${d.id} is not an unclaimed member of pool ${input.poolId}`);
  if ((d.status !== 'RUNNING' && d.status !== 'STOPPED') || s.activeCommand) {
    return refuse(
      'INVALID_STATE',
      `Pool member ${d.id} is not ready: it is ${d.status}${s.activeCommand ? ` (${s.activeCommand.kind} running)` : ''}`,
    );
  }
  const patch: Partial<Desktop> = { ...input.owner, claimedFromPool: input.poolId, errorMessage: null };
  const reason = `claimed from warm pool ${input.poolId} for ${input.owner.userId}`;
  const rehome = rehomeOnClaim(s, input.turn, input.owner.userId);
  if (rehome) return transit(rehome.state, { ...rehome.step, actor: input.actor, patch, requestId: input.requestId }, now, rules);
  return transit({ ...s, pool: null }, { event: 'claimed', actor: input.actor, reason, patch, requestId: input.requestId }, now, rules);
}

/** A snapshot command still running (and not yet stale): what refuses another change but a delete. */
function sideCommandBusy(s: SessionState, now: number): Decision | null {
  const c = s.activeCommand;
  if (!c || !isSideCommand(c.kind) || now - (c.since ?? 0) >= SIDE_COMMAND_STALE_MS) return null;
  const what = c.kind === 'snapshot' ? 'taken' : 'deleted';
  return refuse('CONFLICT', `The snapshot ${c.snapshot ?? ''} of desktop ${s.desktop.id} is being ${what}; try again when that is done`);
}

function snapshotCommand(s: SessionState, input: Extract<DesktopInput, { kind: 'snapshot' }>, now: number, rules: DecideRules): Decision {
  const d = s.desktop;
  const what = input.op === 'take' ? 'take a snapshot of' : 'delete a snapshot of';
  if (!SNAPSHOT_STATUSES.includes(d.status)) {
    return refuse('INVALID_STATE', `Cannot ${what} desktop ${d.id}: it is ${d.status}, not RUNNING or STOPPED`);
  }
  const busy = sideCommandBusy(s, now);
  if (busy) return busy;
  // Anything else in flight (a start, a stop) makes the desktop not settled: its status says so, refused above.
  const kind: SideCommand = input.op === 'take' ? 'snapshot' : 'delete_snapshot';
  const at = iso(now);
  const command = commandFor(d, kind, at, s.launch ?? DEFAULT_LAUNCH, rules, input.requestId, { snapshot: input.snapshot });
  const effects: OutboxEffect[] = [];
  if (s.activeCommand) {
    effects.push({ kind: 'cancel', siteId: d.siteId, commandId: s.activeCommand.id, reason: `superseded by ${kind}` });
  }
  effects.push({ kind: 'job', message: { siteId: d.siteId, command } });
  const message = input.op === 'take' ? `Taking the snapshot ${input.snapshot.name}` : `Deleting the snapshot ${input.snapshot.name}`;
  const decision = update(
    { ...s, activeCommand: { id: command.id, kind, snapshot: input.snapshot.name, since: now } },
    { statusMessage: message },
    now,
  );
  decision.effects.push(...effects);
  // Viewers see it as a step of the desktop that does not change its status.
  decision.liveMessages.push({ type: 'progress', step: kind, message, desktop: desktopOf(decision) });
  return decision;
}

/** A snapshot command's answer: the status stays; the owner's quota and the webhooks hear of it. */
function sideCommandEnded(s: SessionState, frame: CompleteFrame | FailFrame, now: number, rules: DecideRules): Decision {
  const c = s.activeCommand;
  if (!c) return nothing();
  const name = c.snapshot ?? '';
  const take = c.kind === 'snapshot';
  const operation: 'take' | 'delete' = take ? 'take' : 'delete';
  const failed = frame.type === 'fail';
  const statusMessage = failed
    ? `The snapshot ${name} could not be ${take ? 'taken' : 'deleted'}: ${frame.message}`
    : `Snapshot ${name} ${take ? 'taken' : 'deleted'}`;
  const decision = update({ ...s, activeCommand: null }, { statusMessage }, now);
  const desktop = desktopOf(decision);
  // A take that failed leaves no snapshot, a delete that succeeded neither: the quota slot is free again.
  if (failed === take) decision.effects.push({ kind: 'snapshot_release', userId: desktop.userId, desktopId: desktop.id, name });
  const type = failed ? 'desktop.snapshot_failed' : take ? 'desktop.snapshot_created' : 'desktop.snapshot_deleted';
  const snapshot = failed ? { name, operation, error: frame.message } : { name, operation };
  decision.effects.push({ kind: 'event', event: webhookEvent(type, desktop, { snapshot }, now, rules) });
  decision.liveMessages.push({ type: 'progress', step: c.kind, message: statusMessage, desktop });
  return decision;
}

function activity(s: SessionState, input: Extract<DesktopInput, { kind: 'activity' }>, now: number): Decision {
  const d = s.desktop;
  if (input.siteId !== undefined && input.siteId !== d.siteId) return refuse('IGNORED', `desktop belongs to site ${d.siteId}`);
  if (d.status !== 'RUNNING') {
    return refuse('INVALID_STATE', `Desktop ${d.id} is ${d.status}; only a RUNNING desktop has an idle clock to reset`);
  }
  return used(s, { source: input.source, reason: input.reason }, now);
}

function connect(s: SessionState, via: 'guacamole' | 'selkies', now: number): Decision {
  const d = s.desktop;
  const reachable = via === 'guacamole' ? d.connectionId : d.sessionUrl;
  if (d.status !== 'RUNNING' || !reachable) return notRunning(d, 'connect to');
  return used(s, { source: 'connect', reason: null, accessed: true }, now);
}

/** Activity restarts the idle clock (cancelling a pending idle stop) and says why the desktop is still up. */
function used(
  s: SessionState,
  a: { source: Exclude<ActivitySource, 'started'>; reason: string | null; accessed?: boolean },
  now: number,
): Decision {
  const at = iso(now);
  const patch: Partial<Desktop> = { lastActivityAt: at, lastActivitySource: a.source, lastActivityReason: a.reason };
  if (a.accessed) patch.lastAccessedAt = at;
  const d = update(s, patch, now);
  d.liveMessages.push({ type: 'activity', source: a.source, reason: a.reason, desktop: desktopOf(d) });
  return d;
}

// ---- reports ----

function bridgeReport(s: SessionState, siteId: string, frame: BridgeReport, now: number, rules: DecideRules): Decision {
  const d = s.desktop;
  // A site may only report on its own desktops.
  if (d.siteId !== siteId) return refuse('IGNORED', `desktop belongs to site ${d.siteId}`);
  // Results of superseded commands (a create overtaken by a delete, a redelivered stale command) must not move it.
  if (!s.activeCommand || s.activeCommand.id !== frame.commandId) return refuse('IGNORED', 'not the active command');
  if (frame.type === 'accepted') return nothing();
  const kind = s.activeCommand.kind;
  const actor = `bridge:${siteId}`;

  if (s.activeCommand.teardown) {
    // Cleaning up after a failed create: the desktop stays FAILED; only its facts change.
    if (frame.type === 'progress') return update(s, { statusMessage: `cleaning up: ${frame.message}` }, now);
    const done = { ...s, activeCommand: null };
    if (frame.type === 'fail') return update(done, { statusMessage: `Clean-up after the failure did not finish: ${frame.message}` }, now);
    const gone = { vmId: null, node: null, ipAddress: null, connectionId: null, sessionUrl: null };
    return update(done, { ...gone, statusMessage: 'Cleaned up what the failed create had built' }, now);
  }

  if (isSideCommand(kind))
    return frame.type === 'progress' ? update(s, { statusMessage: frame.message }, now) : sideCommandEnded(s, frame, now, rules);

  if (frame.type === 'progress') {
    const patch = { ...factsPatch(frame.facts), statusMessage: frame.message };
    const event = kind === 'create' || kind === 'start' || kind === 'restore' || kind === 'rebuild' ? STEP_EVENT[frame.step] : undefined;
    const decision =
      event && nextStatus(d.status, event) ? transit(s, { event, actor, reason: frame.message, patch }, now, rules) : update(s, patch, now);
    decision.liveMessages.push({ type: 'progress', step: frame.step, message: frame.message, desktop: desktopOf(decision) });
    return decision;
  }

  if (frame.type === 'complete') {
    const event = COMPLETION_EVENT[kind];
    if (!nextStatus(d.status, event)) return refuse('IGNORED', `cannot complete ${kind} while ${d.status}`);
    const patch: Partial<Desktop> = { ...factsPatch(frame.facts), errorMessage: null, statusMessage: COMPLETED_MESSAGE[kind] };
    if (kind === 'stop') patch.ipAddress = null;
    if (kind === 'delete') Object.assign(patch, { deletedAt: iso(now), ipAddress: null, connectionId: null });
    const done = transit(s, { event, actor, reason: `${kind} completed`, patch, endCommand: true }, now, rules);
    if (kind === 'restore') {
      const snapshot = { name: s.activeCommand.snapshot ?? '', operation: 'restore' as const };
      done.effects.push({ kind: 'event', event: webhookEvent('desktop.snapshot_restored', desktopOf(done), { snapshot }, now, rules) });
    }
    if (kind === 'rebuild' && done.transition) {
      const transition = done.transition;
      done.effects.push({ kind: 'event', event: webhookEvent('desktop.rebuilt', desktopOf(done), { transition }, now, rules) });
    }
    return done;
  }

  if (!nextStatus(d.status, 'command_failed')) return refuse('IGNORED', `cannot fail while ${d.status}`);
  const patch = { errorMessage: frame.message, statusMessage: `${kind} failed` };
  return transit(s, { event: 'command_failed', actor, reason: frame.message, patch, endCommand: true }, now, rules);
}

function undeliverable(
  s: SessionState,
  input: Extract<DesktopInput, { kind: 'undeliverable' }>,
  now: number,
  rules: DecideRules,
): Decision {
  const command = s.activeCommand;
  if (command?.id === input.commandId && isSideCommand(command.kind)) {
    const message = `The on-prem bridge of site '${s.desktop.siteId}' is offline: the ${command.kind.replace('_', ' ')} command could not be delivered after ${input.attempts} attempts`;
    return sideCommandEnded(s, { type: 'fail', commandId: command.id, desktopId: s.desktop.id, message }, now, rules);
  }
  if (command?.id !== input.commandId || !nextStatus(s.desktop.status, 'command_undeliverable')) {
    return refuse('IGNORED', 'not the active command');
  }
  const message = `The on-prem bridge of site '${s.desktop.siteId}' is offline: the ${command.kind} command could not be delivered after ${input.attempts} attempts`;
  return transit(
    s,
    { event: 'command_undeliverable', actor: 'system:queue', reason: message, patch: { errorMessage: message }, endCommand: true },
    now,
    rules,
  );
}

/**
 * Only a settled desktop (RUNNING or STOPPED, no command running, in that status since
 * before the inventory was taken) is judged, so work in flight is never mistaken for
 * drift. IGNORED: not this site's; INVALID_STATE: not settled.
 */
function reconcile(s: SessionState, input: Extract<DesktopInput, { kind: 'reconcile' }>, now: number, rules: DecideRules): Decision {
  const { siteId, takenAt, vm } = input;
  const { status } = s.desktop;
  if (s.desktop.siteId !== siteId) return refuse('IGNORED', `desktop belongs to site ${s.desktop.siteId}`);
  if (s.activeCommand || (status !== 'RUNNING' && status !== 'STOPPED') || s.statusSince >= Date.parse(takenAt)) {
    return refuse('INVALID_STATE', 'not settled');
  }
  const actor = `system:reconcile:${siteId}`;
  if (!vm) {
    const message = `The desktop's VM no longer exists on site '${siteId}' (found by reconciliation at ${takenAt}); delete the desktop and create a new one`;
    return transit(s, { event: 'vm_missing', actor, reason: message, patch: { errorMessage: message, ipAddress: null } }, now, rules);
  }
  if (status === 'RUNNING' && vm.status === 'stopped') {
    const message = `The VM was powered off outside the control plane (found by reconciliation at ${takenAt})`;
    const patch = { ipAddress: null, stopReason: message };
    return transit(s, { event: 'vm_stopped_externally', actor, reason: message, patch }, now, rules);
  }
  return nothing();
}

// ---- clocks ----

function clock(s: SessionState, bridgeOffline: boolean, now: number, rules: DecideRules): Decision {
  const due = dueAction(timerState(s), now, rules.timers);
  if (!due) return nothing();
  const d = s.desktop;
  const status = d.status;
  switch (due.kind) {
    case 'watchdog': {
      const seconds = rules.timers.watchdogSeconds(status);
      const offline = bridgeOffline ? ` while the bridge of site '${d.siteId}' was offline` : '';
      const message = `Timed out after ${seconds} s in ${status} (${STEP_NAMES[status] ?? status})${offline}`;
      const patch = { errorMessage: message };
      return transit(s, { event: 'watchdog_expired', actor: 'system:watchdog', reason: message, patch, endCommand: true }, now, rules);
    }
    case 'expire': {
      const message = `Expired at ${d.expiresAt}: deleting the desktop`;
      const tried = { ...s, expiryTriedAt: now };
      const patch = { errorMessage: null, stopReason: message };
      return transit(tried, { event: 'expired', actor: 'system:expiry', reason: message, patch, command: 'delete' }, now, rules);
    }
    case 'session_limit': {
      const message = `Session limit of ${minutes(d.maxSessionMinutes ?? 0)} reached: stopping the desktop`;
      const step = { event: 'session_limit_reached', actor: 'system:session-limit', reason: message } as const;
      return transit(s, { ...step, patch: { stopReason: message }, command: 'stop' }, now, rules);
    }
    case 'idle_stop': {
      const last = d.lastActivityAt ? `last activity: ${d.lastActivitySource} at ${d.lastActivityAt}` : 'no activity since it started';
      const message = `No activity for ${minutes(d.idleTimeoutMinutes)} (${last}): stopping the desktop`;
      const step = { event: 'idle_timeout', actor: 'system:idle', reason: message } as const;
      return transit(s, { ...step, patch: { stopReason: message }, command: 'stop' }, now, rules);
    }
    case 'warning': {
      const at = iso(due.at);
      const decision = update({ ...s, warned: { ...s.warned, [due.warning]: due.at } }, {}, now);
      const desktop = desktopOf(decision);
      decision.effects.push({
        kind: 'event',
        event: webhookEvent(WARNING_EVENT[due.warning], desktop, { warning: { kind: due.warning, at } }, now, rules),
      });
      decision.liveMessages.push({ type: 'warning', warning: due.warning, at, desktop });
      return decision;
    }
  }
}

/** The clocks' view of a desktop (./timers.ts). */
export function timerState(s: SessionState): TimerState {
  const d = s.desktop;
  const deleting = d.status === 'STOPPING' && s.activeCommand?.kind === 'delete';
  return {
    status: d.status,
    statusSince: s.statusSince,
    runningSince: s.runningSince,
    lastActivityAt: d.lastActivityAt ? Date.parse(d.lastActivityAt) : null,
    idleTimeoutMinutes: d.idleTimeoutMinutes,
    maxSessionMinutes: d.maxSessionMinutes,
    // Once the deletion runs, expiry has nothing left to do.
    expiresAt: d.expiresAt && !deleting ? Date.parse(d.expiresAt) : null,
    expiryRetryAt: s.expiryTriedAt ? s.expiryTriedAt + EXPIRY_RETRY_MS : null,
    warned: s.warned,
    pooled: Boolean(s.pool),
  };
}

// ---- the two kinds of change ----

interface Step {
  event: DesktopEvent;
  actor: string;
  reason: string;
  patch?: Partial<Desktop>;
  /** Dispatches a new command, superseding (and cancelling) the active one. */
  command?: CommandKind;
  /** The active command is finished. */
  endCommand?: boolean;
  /** The HTTP request behind `command`, carried on it. */
  requestId?: string;
  /** The snapshot `command` works on (a restore). */
  snapshot?: SnapshotSpec;
  /** Selkies: the node `command`'s pod should run on (./pool-rehome.ts). */
  node?: string;
}

/** A status transition: recorded with its time, actor and reason, and with everything it sets off. */
function transit(s: SessionState, step: Step, now: number, rules: DecideRules, from: DesktopStatus | null = s.desktop.status): Decision {
  const { event, actor, reason, patch = {}, command, endCommand = false, requestId, snapshot, node } = step;
  const to = nextStatus(from, event);
  if (!to) throw new Error(`transition table has no row ${from} --${event}-->`);
  const at = iso(now);
  const desktop: Desktop = { ...s.desktop, ...patch, status: to, updatedAt: at };
  if (!('statusMessage' in patch)) desktop.statusMessage = reason;
  const launch = s.launch ?? DEFAULT_LAUNCH;
  const effects: OutboxEffect[] = [];
  let activeCommand = endCommand ? null : s.activeCommand;
  if (command) {
    if (s.activeCommand) {
      effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason: `superseded by ${command}` });
    }
    const next = commandFor(desktop, command, at, launch, rules, requestId, {
      ...(snapshot ? { snapshot } : {}),
      ...(node ? { node } : {}),
    });
    effects.push({ kind: 'job', message: { siteId: desktop.siteId, command: next } });
    activeCommand = { id: next.id, kind: command, ...(snapshot ? { snapshot: snapshot.name } : {}) };
  } else if (endCommand && s.activeCommand && to === 'FAILED' && event !== 'command_failed') {
    // The edge gave up (watchdog, undeliverable): tell the bridge to stop, and clean up,
    // whatever it may still be doing for this command.
    effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason });
    if (s.activeCommand.kind === 'create') {
      // A cancel reaches only the bridge that holds the create; if that bridge died, a
      // restarted one knows nothing of it. The idempotent delete task removes whatever
      // the abandoned create built, whichever bridge runs it, whenever it is back.
      const teardown = commandFor(desktop, 'delete', at, launch, rules);
      effects.push({ kind: 'job', message: { siteId: desktop.siteId, command: teardown } });
      activeCommand = { id: teardown.id, kind: 'delete', teardown: true };
    }
  }
  if (to === 'DELETED') {
    effects.push({ kind: 'release', userId: desktop.userId, desktopId: desktop.id });
    // A service's desktops count against its own quota too (src/auth/tenancy.ts).
    const service = creatorService(desktop.createdBy);
    if (service !== null) effects.push({ kind: 'release', userId: serviceAccountName(service), desktopId: desktop.id });
  }
  if (desktop.gpuSlots > 0 && ended(to) && !ended(from)) {
    effects.push({ kind: 'gpu_release', siteId: desktop.siteId, desktopId: desktop.id, runId: launch.runId ?? null });
  }

  // Entering RUNNING starts the session and the idle clock; leaving it ends them. A claim of a running pool member
  // starts them for its new owner. An unclaimed member is nobody's session: no usage is billed for it.
  const claimed = event === 'claimed';
  const entering = to === 'RUNNING' && (from !== 'RUNNING' || claimed);
  const leaving = from === 'RUNNING' && to !== 'RUNNING';
  if (entering) Object.assign(desktop, { lastActivityAt: at, lastActivitySource: 'started', lastActivityReason: null, stopReason: null });
  const usage: UsageChange[] = [];
  const openUsageId = entering ? (s.pool ? null : rules.newId('u')) : leaving ? null : s.openUsageId;
  if (entering && openUsageId) usage.push({ kind: 'open', id: openUsageId, plan: desktop.plan, at: now });
  if (leaving && s.openUsageId) usage.push({ kind: 'close', id: s.openUsageId, at: now, reason });
  const next: SessionState = {
    ...s,
    desktop,
    revision: s.revision + 1,
    seq: s.seq + 1,
    statusSince: to === from ? s.statusSince : now,
    activeCommand,
    runningSince: entering ? now : to === 'RUNNING' ? s.runningSince : null,
    // A new or ended run resets the idle and session warnings; an expiry warning stands.
    warned: entering || leaving ? { expiry: s.warned.expiry } : s.warned,
    openUsageId,
  };
  next.desktop = withClocks(next);
  const transition: TransitionRecord = { seq: next.seq, at, from, to, event, actor, reason };
  if (to !== from || claimed) {
    effects.unshift({ kind: 'index', names: indexNamesOf(next.desktop), entry: indexEntry(next) });
    effects.push({ kind: 'event', event: webhookEvent('desktop.status_changed', next.desktop, { transition }, now, rules) });
    const specific = STATUS_EVENT[to];
    if (specific) effects.push({ kind: 'event', event: webhookEvent(specific, next.desktop, { transition }, now, rules) });
  }
  return { next, transition, effects, liveMessages: [{ type: 'transition', transition, desktop: next.desktop }], usage, refused: null };
}

/** A change that is not a status transition: progress facts, activity, a warning sent. */
function update(s: SessionState, patch: Partial<Desktop>, now: number): Decision {
  const next: SessionState = { ...s, desktop: { ...s.desktop, ...patch, updatedAt: iso(now) }, revision: s.revision + 1 };
  next.desktop = withClocks(next);
  return { next, transition: null, effects: [], liveMessages: [], usage: [], refused: null };
}

/** The record's idleStopAt / sessionEndsAt, derived from the clocks so they never disagree. */
function withClocks(s: SessionState): Desktop {
  const t = timerState(s);
  const at = (ms: number | null) => (ms === null ? null : iso(ms));
  return { ...s.desktop, idleStopAt: at(idleStopAt(t)), sessionEndsAt: at(sessionEndsAt(t)) };
}

const desktopOf = (d: Decision): Desktop => (d.next as SessionState).desktop;

const indexEntry = (s: SessionState): IndexEntry => ({
  id: s.desktop.id,
  userId: s.desktop.userId,
  plan: s.desktop.plan,
  status: s.desktop.status,
  createdAt: s.desktop.createdAt,
  revision: s.revision,
});

function webhookEvent(
  type: EventType,
  desktop: Desktop,
  extra: Omit<WebhookEvent['data'], 'desktop'>,
  now: number,
  rules: DecideRules,
): WebhookEvent {
  return { id: rules.newId('ev'), type, createdAt: iso(now), data: { desktop, ...extra } };
}

/** The command the bridge runs, carrying everything it needs to build this desktop's run. */
export function commandFor(
  desktop: Desktop,
  kind: CommandKind,
  issuedAt: string,
  launch: LaunchSpec,
  rules: DecideRules,
  requestId?: string,
  extra: Pick<Command['spec'], 'snapshot' | 'node'> = {},
): Command {
  const spec: Command['spec'] = {
    desktopId: desktop.id,
    userId: desktop.userId,
    name: desktop.name,
    plan: desktop.plan,
    cpuCores: desktop.cpuCores,
    memoryMb: desktop.memoryMb,
    protocol: desktop.protocol,
    backend: desktop.backend,
    gpuSlots: desktop.gpuSlots,
    tenant: tenantOf(desktop.createdBy),
  };
  if (launch.vmTemplate) spec.template = launch.vmTemplate;
  if (launch.image) spec.image = launch.image;
  if (launch.storageGb) spec.storageGb = launch.storageGb;
  if (launch.gpu) spec.gpu = launch.gpu;
  if (launch.turn) spec.turn = launch.turn;
  if (kind === 'create' && launch.forkOf) spec.forkOf = launch.forkOf;
  if (extra.snapshot) spec.snapshot = extra.snapshot;
  if (extra.node) spec.node = extra.node;
  if (desktop.backend === 'selkies' && isPoolMember(desktop)) spec.scratchHome = true;
  const command: Command = { id: rules.newId('c'), desktopId: desktop.id, kind, issuedAt, spec };
  if (requestId) command.requestId = requestId;
  return command;
}

function factsPatch(facts: DesktopFacts | undefined): Partial<Desktop> {
  const patch: Partial<Desktop> = {};
  if (!facts) return patch;
  if (facts.vmId !== undefined) patch.vmId = facts.vmId;
  if (facts.node !== undefined) patch.node = facts.node;
  if (facts.ipAddress !== undefined) patch.ipAddress = facts.ipAddress;
  if (facts.connectionId !== undefined) patch.connectionId = facts.connectionId;
  if (facts.sessionUrl !== undefined) patch.sessionUrl = facts.sessionUrl;
  return patch;
}
