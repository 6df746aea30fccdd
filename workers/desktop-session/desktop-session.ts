/**
 * DesktopSession: one Durable Object per desktop, the single source of truth for its
 * state. It loads, asks the pure transition table (./transitions) what an event leads
 * to, persists the transition with its time, actor and reason, then runs the effects
 * through an outbox in its own storage: commands to the jobs queue, cancels to the
 * site's hub, quota releases, events for webhooks, and the write-through to Postgres.
 * An effect that fails stays in the outbox and is retried from the alarm, so a
 * Postgres or queue outage loses nothing.
 *
 * One alarm is multiplexed over the due times: the clocks of ./timers (watchdog of the
 * step in progress, idle stop, session limit, expiry, and their warnings), outbox
 * retries and the database catch-up. Dashboards follow the desktop live over a
 * hibernatable WebSocket (`/live`).
 */
import { DurableObject } from 'cloudflare:workers';
import type { z } from 'zod';
import { creatorService, serviceAccountName, tenantOf } from '../../src/auth/tenancy';
import { withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { type RefusedRow, writeThrough } from '../../src/db/queries';
import { type Bindings, type Config, config } from '../../src/env';
import { randomId, randomToken, sha256Hex } from '../../src/lib/ids';
import { DEFAULT_LAUNCH, type LaunchSpec } from '../../src/lib/launch';
import { type IndexEntry, indexNamesOf } from '../../src/lib/owner-index';
import { fail, ok, type Result } from '../../src/lib/result';
import type {
  AcceptedFrameSchema,
  Command,
  CommandKind,
  CompleteFrame,
  DesktopFacts,
  FailFrame,
  ProgressFrame,
} from '../../src/schemas/bridge-protocol';
import type { ActivitySource, Desktop, DesktopStatus, TransitionRecord } from '../../src/schemas/desktop';
import type { DesktopEvent as WebhookEvent, EventType } from '../../src/schemas/events';
import type { AuditRecord, EventsMessage, JobMessage } from '../../src/schemas/jobs';
import {
  type DueAction,
  type TimerPolicy,
  type TimerState,
  type WarningKind,
  dueAction,
  idleStopAt,
  nextWakeUp,
  sessionEndsAt,
  warningsInForce,
} from './timers';
import {
  ACTION_COMMAND,
  COMPLETION_EVENT,
  type DesktopEvent,
  STEP_EVENT,
  type UserAction,
  allowedActions,
  nextStatus,
} from './transitions';

type AcceptedFrame = z.infer<typeof AcceptedFrameSchema>;
export type ReconcileOutcome = 'unknown' | 'unsettled' | 'in_sync' | 'vm_missing' | 'vm_stopped_externally';
export type DesktopStatusView = Pick<
  Desktop,
  'id' | 'userId' | 'siteId' | 'createdBy' | 'status' | 'statusMessage' | 'errorMessage' | 'updatedAt'
>;
export type BridgeReport = AcceptedFrame | ProgressFrame | CompleteFrame | FailFrame;

interface State {
  desktop: Desktop;
  /** Bumped on every persisted change; the Postgres row only accepts higher versions. */
  revision: number;
  /** Sequence number of the last transition. */
  seq: number;
  /** When the current status was entered (ms), for the watchdog. */
  statusSince: number;
  /** `teardown`: a delete that removes what an abandoned create built, leaving the desktop FAILED. */
  activeCommand: { id: string; kind: CommandKind; teardown?: boolean } | null;
  /** When it last became RUNNING (ms), while RUNNING: the session limit counts from here. */
  runningSince: number | null;
  /** The deadline each warning was sent for (./timers). */
  warned: Partial<Record<WarningKind, number>>;
  /** The usage interval open while RUNNING. */
  openUsageId: string | null;
  /** How to build this desktop, from its template (commands carry it to the bridge). */
  launch: LaunchSpec;
  /** When expiry last tried to delete the desktop (ms): a failed try is repeated an hour later, not at once. */
  expiryTriedAt?: number | null;
}

interface SyncState {
  /** Revision and transition seq already written to Postgres. */
  dbRevision: number;
  dbSeq: number;
  failures: number;
  /** No write before this time: a retry's backoff, or the coalescing window after a write. */
  notBefore: number | null;
  lastError: string | null;
}

type OutboxEffect =
  /** The desktop's new status for its owners' list indexes; reads wait for it (see `indexing`). */
  | { kind: 'index'; names: string[]; entry: IndexEntry }
  | { kind: 'job'; message: JobMessage }
  | { kind: 'cancel'; siteId: string; commandId: string; reason: string }
  /** Frees the desktop's slot in its owner's quota. */
  | { kind: 'release'; userId: string; desktopId: string }
  /** A desktop event for webhook subscribers. */
  | { kind: 'event'; event: WebhookEvent }
  /** The session no longer runs: its GPU slots at the site are free again. */
  | { kind: 'gpu_release'; siteId: string; desktopId: string; runId?: string | null }
  /** An audit record of something the desktop did by itself (a row Postgres refused). */
  | { kind: 'audit'; record: AuditRecord };

/** What the live stream sends (WebSocket text frames, or SSE data lines). */
export type LiveMessage =
  | { type: 'snapshot'; desktop: Desktop }
  | { type: 'transition'; transition: TransitionRecord; desktop: Desktop }
  | { type: 'progress'; step: string; message: string; desktop: Desktop }
  | { type: 'warning'; warning: WarningKind; at: string; desktop: Desktop }
  | { type: 'activity'; source: ActivitySource; reason: string | null; desktop: Desktop };

type OutboxRow = { id: number; effect: string; attempts: number };

const DEFAULT_WATCHDOG_SECONDS = 600;
const EXPIRY_RETRY_MS = 3_600_000;
const RETRY_CAP_MS = 60_000;
const DB_COALESCE_MS = 250;
/** How long a transition's effects may take in memory before the alarm set with it runs them again. */
const EFFECTS_GRACE_MS = 10_000;
const LIVE_TAG = 'live';

const STEP_NAMES: Partial<Record<DesktopStatus, string>> = {
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

const backoffMs = (failures: number) => Math.min(RETRY_CAP_MS, 500 * 2 ** Math.min(failures, 10));
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const minutes = (n: number) => `${n} minute${n === 1 ? '' : 's'}`;

export class DesktopSession extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  private readonly cfg: Config;
  private readonly timerPolicy: TimerPolicy;
  private flushing = false;
  private flushAgain = false;
  /** The state row, parsed once: storage stays the truth, every write goes through writeMeta. */
  private cachedState: State | null | undefined;
  /**
   * Delivery of a status change to the owners' list indexes, while one is under way. Reads
   * that show the desktop (get, status, the live stream, the answers of create and act)
   * wait for it, so a list never lags what a status call has shown. It never rejects: an
   * index that cannot be reached delays nothing further, and the outbox retries it.
   */
  private indexing: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.cfg = config(env);
    this.timerPolicy = {
      watchdogSeconds: (status) => this.cfg.WATCHDOG_SECONDS[status] ?? DEFAULT_WATCHDOG_SECONDS,
      warningLeadMs: this.cfg.WARNING_LEAD_MINUTES * 60_000,
    };
    // Live viewers may ping; the runtime answers without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
    ctx.blockConcurrencyWhile(async () => {
      this.migrate();
      // An index entry left undelivered by the last run of this object: reads wait for it too.
      if (this.pendingIndexRows().length > 0) this.syncIndexes();
    });
  }

  /** Storage schema, versioned so later releases can add steps. */
  private migrate(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    const version = Number(this.readMeta<number>('schema') ?? 0);
    if (version < 1) {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS transitions (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL,
        event TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)`);
      this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, effect TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL, last_error TEXT)`);
      this.sql.exec(`CREATE TABLE IF NOT EXISTS tickets (secret TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, used_at INTEGER)`);
      // Running time, for pay-per-hour billing; `rev` > `synced_rev` means Postgres has not seen the change.
      this.sql.exec(`CREATE TABLE IF NOT EXISTS usage (
        id TEXT PRIMARY KEY, plan TEXT NOT NULL, started_at INTEGER NOT NULL, stopped_at INTEGER,
        stop_reason TEXT, rev INTEGER NOT NULL DEFAULT 1, synced_rev INTEGER NOT NULL DEFAULT 0)`);
      this.writeMeta('schema', 1);
    }
    if (version < 2) {
      // Rows Postgres refused for what they hold (./flushDatabase): kept here, with the error, for operators.
      this.sql.exec(`CREATE TABLE IF NOT EXISTS set_aside (
        kind TEXT NOT NULL, key TEXT NOT NULL, error TEXT NOT NULL, outcome TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (kind, key))`);
      this.writeMeta('schema', 2);
    }
  }

  // ---- reads ----

  async get(): Promise<Desktop | null> {
    await this.indexing;
    return this.state()?.desktop ?? null;
  }

  /** The few fields a status poll needs (owner fields for the access check): the hottest read, kept small. */
  async status(): Promise<DesktopStatusView | null> {
    if (this.indexing) await this.indexing;
    const d = this.state()?.desktop;
    if (!d) return null;
    return {
      id: d.id,
      userId: d.userId,
      siteId: d.siteId,
      createdBy: d.createdBy,
      status: d.status,
      statusMessage: d.statusMessage,
      errorMessage: d.errorMessage,
      updatedAt: d.updatedAt,
    };
  }

  async history(): Promise<TransitionRecord[]> {
    return this.transitionsAfter(0);
  }

  private transitionsAfter(seq: number): TransitionRecord[] {
    return this.sql
      .exec<{ seq: number; at: string; from_status: string | null; to_status: string; event: string; actor: string; reason: string }>(
        'SELECT * FROM transitions WHERE seq > ? ORDER BY seq',
        seq,
      )
      .toArray()
      .map(toTransitionRecord);
  }

  /** The status and the run (create or start) it belongs to: the site's hub asks whether a GPU booking has ended. */
  async currentRun(): Promise<{ status: DesktopStatus; runId: string | null } | null> {
    const s = this.state();
    return s ? { status: s.desktop.status, runId: s.launch?.runId ?? null } : null;
  }

  /** Whether `commandId` is still the command this desktop wants run (SiteHub asks before dispatching). */
  async isActiveCommand(commandId: string): Promise<boolean> {
    return this.state()?.activeCommand?.id === commandId;
  }

  /** Debug view for operators and tests: outbox depth and database sync position. */
  async syncStatus(): Promise<{
    outbox: number;
    dbRevision: number;
    revision: number;
    lastError: string | null;
    setAside: RefusedRow[];
  }> {
    const sync = this.sync();
    const outbox = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM outbox').one().n;
    const setAside = this.sql
      .exec<{ kind: string; key: string; error: string; outcome: string }>('SELECT kind, key, error, outcome FROM set_aside ORDER BY at')
      .toArray()
      .map((r) => ({ ...r, kind: r.kind as RefusedRow['kind'], outcome: r.outcome as RefusedRow['outcome'] }));
    return { outbox, dbRevision: sync.dbRevision, revision: this.state()?.revision ?? 0, lastError: sync.lastError, setAside };
  }

  // ---- the live stream ----

  /** GET …/live, already authorised by the Worker: upgrade to a hibernatable WebSocket and send the state at once. */
  override async fetch(request: Request): Promise<Response> {
    await this.indexing;
    const s = this.state();
    if (!s) return new Response('desktop not found', { status: 404 });
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [LIVE_TAG]);
    pair[1].send(JSON.stringify({ type: 'snapshot', desktop: s.desktop } satisfies LiveMessage));
    for (const w of warningsInForce(this.timerState(s), Date.now(), this.timerPolicy)) {
      const at = new Date(w.at).toISOString();
      pair[1].send(JSON.stringify({ type: 'warning', warning: w.kind, at, desktop: s.desktop } satisfies LiveMessage));
    }
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(): Promise<void> {
    // The stream only talks; anything a viewer sends (other than the auto-answered ping) is ignored.
  }

  /** Sends to live viewers once the owners' indexes have the state it shows, in the order it was called. */
  private broadcast(message: LiveMessage): void {
    const text = JSON.stringify(message);
    const send = () => {
      for (const ws of this.ctx.getWebSockets(LIVE_TAG)) {
        try {
          ws.send(text);
        } catch {
          // A closing socket; the runtime removes it.
        }
      }
    };
    if (this.indexing) void this.indexing.then(send);
    else send();
  }

  // ---- user actions ----

  /** First transition of a new desktop (null → PENDING) and its create command. */
  async create(desktop: Desktop, actor: string, launch: LaunchSpec = DEFAULT_LAUNCH): Promise<Result<Desktop>> {
    const existing = this.state();
    if (existing) {
      return existing.desktop.id === desktop.id ? ok(existing.desktop) : fail('CONFLICT', 'desktop id already in use');
    }
    const initial: State = {
      desktop: { ...desktop, status: 'PENDING' },
      revision: 0,
      seq: 0,
      statusSince: Date.now(),
      activeCommand: null,
      runningSince: null,
      warned: {},
      openUsageId: null,
      launch,
    };
    const created = this.apply(initial, null, 'create', actor, 'desktop creation requested', {}, 'create');
    await this.indexing;
    return ok(created);
  }

  /**
   * `launch`: for a start, what the route prepared for the new run (its id, booked GPU
   * slots, fresh TURN credentials). A start never goes out with the previous run's.
   */
  async act(action: Exclude<UserAction, 'create'>, actor: string, launch?: Partial<LaunchSpec>): Promise<Result<Desktop>> {
    const found = this.state();
    const fresh = { runId: launch?.runId ?? null, gpu: launch?.gpu ?? null, turn: launch?.turn ?? null };
    const s = found && action === 'start' ? { ...found, launch: { ...(found.launch ?? DEFAULT_LAUNCH), ...fresh } } : found;
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    const unprepared = (s.desktop.gpuSlots > 0 && !fresh.gpu) || (s.desktop.backend === 'selkies' && !fresh.turn);
    if (action === 'start' && unprepared && nextStatus(s.desktop.status, action)) {
      // The route read another status and prepared nothing for this run (no GPU slots, no TURN credentials).
      return fail('INVALID_STATE', `Desktop ${s.desktop.id} changed while its start was being prepared; try again`);
    }
    const status = s.desktop.status;
    // DELETE is idempotent: asking again while the teardown runs changes nothing.
    if (action === 'delete' && status === 'STOPPING' && s.activeCommand?.kind === 'delete') return ok(s.desktop);
    if (!nextStatus(status, action)) {
      const allowed = allowedActions(status).filter((a) => a !== 'create');
      const hint = allowed.length ? `; possible now: ${allowed.join(', ')}` : '';
      return fail('INVALID_STATE', `Cannot ${action} desktop ${s.desktop.id}: it is ${status}${hint}`);
    }
    const reason = action === 'delete' ? 'deletion requested: tearing down the VM and its connection' : `${action} requested`;
    const patch: Partial<Desktop> = { errorMessage: null };
    if (action === 'stop') patch.stopReason = `stopped by ${actor}`;
    const desktop = this.apply(s, status, action, actor, reason, patch, ACTION_COMMAND[action]);
    await this.indexing;
    return ok(desktop);
  }

  /**
   * Someone uses the desktop: /connect, a keepalive, or viewers the bridge sees. It
   * restarts the idle clock (cancelling a pending idle stop) and is recorded with its
   * source and reason, so the record says why the desktop is still up.
   */
  async recordActivity(source: Exclude<ActivitySource, 'started'>, reason: string | null): Promise<Result<Desktop>> {
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    if (s.desktop.status !== 'RUNNING') {
      return fail('INVALID_STATE', `Desktop ${s.desktop.id} is ${s.desktop.status}; only a RUNNING desktop has an idle clock to reset`);
    }
    const desktop = this.update(s, { lastActivityAt: new Date().toISOString(), lastActivitySource: source, lastActivityReason: reason });
    this.broadcast({ type: 'activity', source, reason, desktop });
    return ok(desktop);
  }

  /** The bridge of `siteId` sees viewers on this desktop: activity, if the desktop is its own and RUNNING. */
  async recordViewers(siteId: string, viewers: number): Promise<void> {
    const s = this.state();
    if (!s || s.desktop.siteId !== siteId || s.desktop.status !== 'RUNNING') return;
    await this.recordActivity('viewer', `${viewers} viewer${viewers === 1 ? '' : 's'} connected`);
  }

  /** A connect ticket (PRD 3.2): valid for a few minutes, for one opening, of this desktop only. Counts as activity. */
  async issueTicket(): Promise<Result<{ ticket: string; expiresAt: string; desktop: Desktop }>> {
    const secret = randomToken();
    // Only the ticket's hash is kept: what storage holds opens nothing. (Hashed before the
    // state is read, so nothing that happens during the await is overwritten.)
    const hashed = await sha256Hex(secret);
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    if (s.desktop.status !== 'RUNNING' || !s.desktop.connectionId) {
      return fail('INVALID_STATE', `Cannot connect to desktop ${s.desktop.id}: it is ${s.desktop.status}, not RUNNING`);
    }
    const now = Date.now();
    const expires = now + this.cfg.CONNECT_TICKET_TTL_SECONDS * 1000;
    this.sql.exec('DELETE FROM tickets WHERE expires_at < ?', now - 3_600_000);
    this.sql.exec('INSERT INTO tickets (secret, expires_at) VALUES (?, ?)', hashed, expires);
    const at = new Date(now).toISOString();
    const desktop = this.update(s, { lastAccessedAt: at, lastActivityAt: at, lastActivitySource: 'connect', lastActivityReason: null });
    this.broadcast({ type: 'activity', source: 'connect', reason: null, desktop });
    return ok({ ticket: `${s.desktop.id}.${secret}`, expiresAt: new Date(expires).toISOString(), desktop });
  }

  /** A viewer is about to open this Selkies desktop: counts as activity; it must be RUNNING. */
  async connectSelkies(): Promise<Result<Desktop>> {
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    if (s.desktop.status !== 'RUNNING' || !s.desktop.sessionUrl) {
      return fail('INVALID_STATE', `Cannot connect to desktop ${s.desktop.id}: it is ${s.desktop.status}, not RUNNING`);
    }
    const at = new Date().toISOString();
    const desktop = this.update(s, { lastAccessedAt: at, lastActivityAt: at, lastActivitySource: 'connect', lastActivityReason: null });
    this.broadcast({ type: 'activity', source: 'connect', reason: null, desktop });
    return ok(desktop);
  }

  /** Consumes a ticket once; answers what the site needs to open a Guacamole session. */
  async redeemTicket(secret: string): Promise<Result<{ siteId: string; connectionId: string }>> {
    const hashed = await sha256Hex(secret);
    const s = this.state();
    const row = this.sql
      .exec<{ expires_at: number; used_at: number | null }>('SELECT * FROM tickets WHERE secret = ?', hashed)
      .toArray()[0];
    const gone = 'This connect link has expired or was already used; ask for a new one with GET /api/v1/desktops/{id}/connect';
    if (!s || !row || row.used_at !== null || row.expires_at < Date.now()) return fail('NOT_FOUND', gone);
    if (s.desktop.status !== 'RUNNING' || !s.desktop.connectionId) {
      return fail('INVALID_STATE', `Cannot connect to desktop ${s.desktop.id}: it is ${s.desktop.status}, not RUNNING`);
    }
    this.sql.exec('UPDATE tickets SET used_at = ? WHERE secret = ?', Date.now(), hashed);
    return ok({ siteId: s.desktop.siteId, connectionId: s.desktop.connectionId });
  }

  /** Usage intervals of this desktop (ms), for tests and operators; billing reads Postgres. */
  async usage(): Promise<{ id: string; plan: string; startedAt: number; stoppedAt: number | null; stopReason: string | null }[]> {
    return this.sql
      .exec<{ id: string; plan: string; started_at: number; stopped_at: number | null; stop_reason: string | null }>(
        'SELECT * FROM usage ORDER BY started_at',
      )
      .toArray()
      .map((r) => ({ id: r.id, plan: r.plan, startedAt: r.started_at, stoppedAt: r.stopped_at, stopReason: r.stop_reason }));
  }

  // ---- reports from the bridge (through the site's hub) and the queue ----

  async bridgeReport(siteId: string, frame: BridgeReport): Promise<{ applied: boolean; reason?: string }> {
    const s = this.state();
    if (!s) return { applied: false, reason: 'unknown desktop' };
    // A site may only report on its own desktops.
    if (s.desktop.siteId !== siteId) return { applied: false, reason: `desktop belongs to site ${s.desktop.siteId}` };
    // Results of superseded commands (a create overtaken by a delete, a redelivered
    // stale command) must not move the desktop.
    if (!s.activeCommand || s.activeCommand.id !== frame.commandId) return { applied: false, reason: 'not the active command' };
    const kind = s.activeCommand.kind;
    const actor = `bridge:${siteId}`;
    const status = s.desktop.status;

    if (frame.type === 'accepted') return { applied: true };

    if (s.activeCommand.teardown) {
      // Cleaning up after a failed create: the desktop stays FAILED; only its facts change.
      if (frame.type === 'progress') this.update(s, { statusMessage: `cleaning up: ${frame.message}` });
      else if (frame.type === 'complete') {
        this.update(
          { ...s, activeCommand: null },
          {
            vmId: null,
            node: null,
            ipAddress: null,
            connectionId: null,
            sessionUrl: null,
            statusMessage: 'Cleaned up what the failed create had built',
          },
        );
      } else this.update({ ...s, activeCommand: null }, { statusMessage: `Clean-up after the failure did not finish: ${frame.message}` });
      return { applied: true };
    }

    if (frame.type === 'progress') {
      const patch = { ...factsPatch(frame.facts), statusMessage: frame.message };
      const event = kind === 'create' || kind === 'start' ? STEP_EVENT[frame.step] : undefined;
      const desktop =
        event && nextStatus(status, event) ? this.apply(s, status, event, actor, frame.message, patch) : this.update(s, patch);
      this.broadcast({ type: 'progress', step: frame.step, message: frame.message, desktop });
      return { applied: true };
    }

    if (frame.type === 'complete') {
      const event = COMPLETION_EVENT[kind];
      if (!nextStatus(status, event)) return { applied: false, reason: `cannot complete ${kind} while ${status}` };
      const now = new Date().toISOString();
      const patch: Partial<Desktop> = { ...factsPatch(frame.facts), errorMessage: null, statusMessage: COMPLETED_MESSAGE[kind] };
      if (kind === 'stop') patch.ipAddress = null;
      if (kind === 'delete') Object.assign(patch, { deletedAt: now, ipAddress: null, connectionId: null });
      this.apply(s, status, event, actor, `${kind} completed`, patch, undefined, true);
      return { applied: true };
    }

    if (!nextStatus(status, 'command_failed')) return { applied: false, reason: `cannot fail while ${status}` };
    this.apply(
      s,
      status,
      'command_failed',
      actor,
      frame.message,
      { errorMessage: frame.message, statusMessage: `${kind} failed` },
      undefined,
      true,
    );
    return { applied: true };
  }

  /** The jobs queue gave up delivering a command (dead letter): the site's bridge stayed offline. */
  async commandUndeliverable(commandId: string, attempts: number): Promise<void> {
    const s = this.state();
    if (!s || s.activeCommand?.id !== commandId || !nextStatus(s.desktop.status, 'command_undeliverable')) return;
    const message = `The on-prem bridge of site '${s.desktop.siteId}' is offline: the ${s.activeCommand.kind} command could not be delivered after ${attempts} attempts`;
    this.apply(s, s.desktop.status, 'command_undeliverable', 'system:queue', message, { errorMessage: message }, undefined, true);
  }

  /**
   * What reconciliation saw of this desktop's VM at `takenAt` (null: no VM). Only a
   * settled desktop (RUNNING or STOPPED, no command running, in that status since
   * before the inventory was taken) is judged, so work in flight is never mistaken
   * for drift.
   */
  async reconcileObservation(siteId: string, takenAt: string, vm: { status: string } | null): Promise<ReconcileOutcome> {
    const s = this.state();
    if (!s || s.desktop.siteId !== siteId) return 'unknown';
    const { status } = s.desktop;
    if (s.activeCommand || (status !== 'RUNNING' && status !== 'STOPPED') || s.statusSince >= Date.parse(takenAt)) return 'unsettled';
    const actor = `system:reconcile:${siteId}`;
    if (!vm) {
      const message = `The desktop's VM no longer exists on site '${siteId}' (found by reconciliation at ${takenAt}); delete the desktop and create a new one`;
      this.apply(s, status, 'vm_missing', actor, message, { errorMessage: message, ipAddress: null });
      return 'vm_missing';
    }
    if (status === 'RUNNING' && vm.status === 'stopped') {
      const message = `The VM was powered off outside the control plane (found by reconciliation at ${takenAt})`;
      this.apply(s, status, 'vm_stopped_externally', actor, message, { ipAddress: null, stopReason: message });
      return 'vm_stopped_externally';
    }
    return 'in_sync';
  }

  // ---- alarm: the desktop's clocks, outbox retries, database catch-up ----

  /** The cron sweep's nudge: runs the alarm's checks now, in case an alarm was lost. */
  async checkWatchdog(): Promise<void> {
    await this.alarm();
  }

  override async alarm(): Promise<void> {
    const offline = await this.bridgeOfflineForWatchdog();
    // Several clocks can be due at once (a warning and its stop after a long outage).
    for (let i = 0; i < 5; i++) {
      const s = this.state();
      const due = s ? dueAction(this.timerState(s), Date.now(), this.timerPolicy) : null;
      if (!s || !due) break;
      this.runDue(s, due, offline);
    }
    await this.flush();
  }

  /**
   * When a watchdog is about to fire: is the site's bridge offline? Then the step did not
   * hang, nobody was there to run it, and the desktop's error says so. Asked only then, so
   * other clocks cost no SiteHub call; if the hub cannot answer, the message stays plain.
   */
  private async bridgeOfflineForWatchdog(): Promise<boolean> {
    const s = this.state();
    if (!s || dueAction(this.timerState(s), Date.now(), this.timerPolicy)?.kind !== 'watchdog') return false;
    try {
      return !(await this.env.SITE_HUB.getByName(s.desktop.siteId).status()).connected;
    } catch {
      return false;
    }
  }

  private runDue(s: State, due: DueAction, bridgeOffline: boolean): void {
    const d = s.desktop;
    const status = d.status;
    switch (due.kind) {
      case 'watchdog': {
        const seconds = this.timerPolicy.watchdogSeconds(status);
        const offline = bridgeOffline ? ` while the bridge of site '${d.siteId}' was offline` : '';
        const message = `Timed out after ${seconds} s in ${status} (${STEP_NAMES[status] ?? status})${offline}`;
        this.apply(s, status, 'watchdog_expired', 'system:watchdog', message, { errorMessage: message }, undefined, true);
        return;
      }
      case 'expire': {
        const message = `Expired at ${d.expiresAt}: deleting the desktop`;
        const tried = { ...s, expiryTriedAt: Date.now() };
        this.apply(tried, status, 'expired', 'system:expiry', message, { errorMessage: null, stopReason: message }, 'delete');
        return;
      }
      case 'session_limit': {
        const message = `Session limit of ${minutes(d.maxSessionMinutes ?? 0)} reached: stopping the desktop`;
        this.apply(s, status, 'session_limit_reached', 'system:session-limit', message, { stopReason: message }, 'stop');
        return;
      }
      case 'idle_stop': {
        const last = d.lastActivityAt ? `last activity: ${d.lastActivitySource} at ${d.lastActivityAt}` : 'no activity since it started';
        const message = `No activity for ${minutes(d.idleTimeoutMinutes)} (${last}): stopping the desktop`;
        this.apply(s, status, 'idle_timeout', 'system:idle', message, { stopReason: message }, 'stop');
        return;
      }
      case 'warning': {
        const at = new Date(due.at).toISOString();
        const desktop = this.update({ ...s, warned: { ...s.warned, [due.warning]: due.at } }, {});
        this.enqueue([{ kind: 'event', event: this.event(WARNING_EVENT[due.warning], desktop, { warning: { kind: due.warning, at } }) }]);
        this.broadcast({ type: 'warning', warning: due.warning, at, desktop });
        return;
      }
    }
  }

  // ---- internals ----

  /**
   * Persists one transition and its effects atomically, then starts flushing them.
   * `command` dispatches a new command (superseding and cancelling the active one);
   * `endCommand` marks the active command finished.
   */
  private apply(
    s: State,
    from: DesktopStatus | null,
    event: DesktopEvent,
    actor: string,
    reason: string,
    patch: Partial<Desktop>,
    command?: CommandKind,
    endCommand = false,
  ): Desktop {
    const to = nextStatus(from, event);
    if (!to) throw new Error(`transition table has no row ${from} --${event}-->`);
    const now = Date.now();
    const at = new Date(now).toISOString();
    let desktop: Desktop = { ...s.desktop, ...patch, status: to, updatedAt: at };
    if (!('statusMessage' in patch)) desktop.statusMessage = reason;
    const effects: OutboxEffect[] = [];
    let activeCommand = endCommand ? null : s.activeCommand;
    if (command) {
      if (s.activeCommand) {
        effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason: `superseded by ${command}` });
      }
      const next = commandFor(desktop, command, at, s.launch ?? DEFAULT_LAUNCH);
      effects.push({ kind: 'job', message: { siteId: desktop.siteId, command: next } });
      activeCommand = { id: next.id, kind: command };
    } else if (endCommand && s.activeCommand && to === 'FAILED' && event !== 'command_failed') {
      // The edge gave up (watchdog, undeliverable): tell the bridge to stop, and clean
      // up, whatever it may still be doing for this command.
      effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason });
      if (s.activeCommand.kind === 'create') {
        // A cancel reaches only the bridge that holds the create; if that bridge died, a
        // restarted one knows nothing of it. The idempotent delete task removes whatever
        // the abandoned create built, whichever bridge runs it, whenever it is back.
        const teardown = commandFor(desktop, 'delete', at, s.launch ?? DEFAULT_LAUNCH);
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
    const ended = (st: DesktopStatus | null) => st === 'STOPPED' || st === 'FAILED' || st === 'DELETED';
    if (desktop.gpuSlots > 0 && ended(to) && !ended(from))
      effects.push({ kind: 'gpu_release', siteId: desktop.siteId, desktopId: desktop.id, runId: s.launch?.runId ?? null });

    // Entering RUNNING starts the session and the idle clock; leaving it ends them.
    const enteringRunning = to === 'RUNNING' && from !== 'RUNNING';
    const leavingRunning = from === 'RUNNING' && to !== 'RUNNING';
    if (enteringRunning)
      Object.assign(desktop, { lastActivityAt: at, lastActivitySource: 'started', lastActivityReason: null, stopReason: null });
    const next: State = {
      ...s,
      desktop,
      revision: s.revision + 1,
      seq: s.seq + 1,
      statusSince: to === from ? s.statusSince : now,
      activeCommand,
      runningSince: enteringRunning ? now : to === 'RUNNING' ? s.runningSince : null,
      // A new or ended run resets the idle and session warnings; an expiry warning stands.
      warned: enteringRunning || leavingRunning ? { expiry: s.warned.expiry } : s.warned,
      openUsageId: enteringRunning ? randomId('u') : leavingRunning ? null : s.openUsageId,
    };
    next.desktop = desktop = this.withClocks(next);
    const transition: TransitionRecord = { seq: next.seq, at, from, to, event, actor, reason };
    if (to !== from) {
      const entry: IndexEntry = {
        id: desktop.id,
        userId: desktop.userId,
        plan: desktop.plan,
        status: to,
        createdAt: desktop.createdAt,
        revision: next.revision,
      };
      effects.unshift({ kind: 'index', names: indexNamesOf(desktop), entry });
      effects.push({ kind: 'event', event: this.event('desktop.status_changed', desktop, { transition }) });
      const specific = STATUS_EVENT[to];
      if (specific) effects.push({ kind: 'event', event: this.event(specific, desktop, { transition }) });
    }
    try {
      this.ctx.storage.transactionSync(() => {
        this.writeMeta('state', next);
        this.sql.exec(
          'INSERT INTO transitions (seq, at, from_status, to_status, event, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
          next.seq,
          at,
          from,
          to,
          event,
          actor,
          reason,
        );
        if (enteringRunning && next.openUsageId) {
          this.sql.exec('INSERT INTO usage (id, plan, started_at) VALUES (?, ?, ?)', next.openUsageId, desktop.plan, now);
        }
        if (leavingRunning && s.openUsageId) {
          this.sql.exec('UPDATE usage SET stopped_at = ?, stop_reason = ?, rev = rev + 1 WHERE id = ?', now, reason, s.openUsageId);
        }
        for (const e of effects) this.sql.exec('INSERT INTO outbox (effect, next_at) VALUES (?, ?)', JSON.stringify(e), now);
        // The alarm belongs to the transition, not to its effects: an object reset before
        // (or while) they run still wakes up to run them and keep its clocks.
        void this.ctx.storage.setAlarm(Math.min(nextWakeUp(this.timerState(next), this.timerPolicy) ?? Infinity, now + EFFECTS_GRACE_MS));
      });
    } catch (err) {
      // The transaction rolled back; the cache must not keep what it did not commit.
      this.cachedState = undefined;
      throw err;
    }
    if (to !== from) this.syncIndexes();
    this.broadcast({ type: 'transition', transition, desktop });
    this.kickFlush();
    return desktop;
  }

  /** Persists a change that is not a status transition (progress facts, activity, warnings sent). */
  private update(s: State, patch: Partial<Desktop>): Desktop {
    const next: State = { ...s, desktop: { ...s.desktop, ...patch, updatedAt: new Date().toISOString() }, revision: s.revision + 1 };
    next.desktop = this.withClocks(next);
    this.writeMeta('state', next);
    this.kickFlush();
    return next.desktop;
  }

  /** The record's idleStopAt / sessionEndsAt, derived from the clocks so they never disagree. */
  private withClocks(s: State): Desktop {
    const t = this.timerState(s);
    return { ...s.desktop, idleStopAt: iso(idleStopAt(t)), sessionEndsAt: iso(sessionEndsAt(t)) };
  }

  private timerState(s: State): TimerState {
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
    };
  }

  private event(type: EventType, desktop: Desktop, extra: Omit<WebhookEvent['data'], 'desktop'>): WebhookEvent {
    return { id: randomId('ev'), type, createdAt: new Date().toISOString(), data: { desktop, ...extra } };
  }

  /** Queues effects outside a transition (e.g. a warning's event). */
  private enqueue(effects: OutboxEffect[]): void {
    const now = Date.now();
    for (const e of effects) this.sql.exec('INSERT INTO outbox (effect, next_at) VALUES (?, ?)', JSON.stringify(e), now);
    this.kickFlush();
  }

  private kickFlush(): void {
    // Effects run after the caller has its answer; the alarm retries what fails.
    this.ctx.waitUntil(this.flush());
  }

  private async flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        await this.flushOutbox();
        await this.flushDatabase();
      } while (this.flushAgain);
    } finally {
      this.flushing = false;
      await this.scheduleAlarm();
    }
  }

  private async flushOutbox(): Promise<void> {
    const due = this.sql.exec<OutboxRow>('SELECT id, effect, attempts FROM outbox WHERE next_at <= ? ORDER BY id', Date.now()).toArray();
    for (const row of due) await this.runOutboxRow(row);
  }

  /** Runs one outbox entry: gone once it succeeds, retried later with backoff if it fails. */
  private async runOutboxRow(row: OutboxRow): Promise<boolean> {
    try {
      await this.runEffect(JSON.parse(row.effect) as OutboxEffect);
      this.sql.exec('DELETE FROM outbox WHERE id = ?', row.id);
      return true;
    } catch (err) {
      this.sql.exec(
        'UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?',
        Date.now() + backoffMs(row.attempts),
        String(err),
        row.id,
      );
      return false;
    }
  }

  private pendingIndexRows(): OutboxRow[] {
    return this.sql
      .exec<OutboxRow>(`SELECT id, effect, attempts FROM outbox WHERE json_extract(effect, '$.kind') = 'index' ORDER BY id`)
      .toArray();
  }

  /**
   * Delivers the index entries in the outbox now, ahead of the other effects, and makes
   * reads wait until that is done (`indexing`). The outbox flush may send the same entry
   * again; an index keeps the highest revision, so a repeat changes nothing.
   */
  private syncIndexes(): void {
    const run = async () => {
      for (const row of this.pendingIndexRows()) if (!(await this.runOutboxRow(row))) return;
    };
    const done = (this.indexing ?? Promise.resolve()).then(run).catch(() => {});
    this.indexing = done;
    void done.then(() => {
      if (this.indexing === done) this.indexing = null;
    });
  }

  private async runEffect(effect: OutboxEffect): Promise<void> {
    switch (effect.kind) {
      case 'index':
        await Promise.all(effect.names.map((name) => this.env.DESKTOP_INDEX.getByName(name).put(effect.entry)));
        return;
      case 'job':
        await this.env.JOBS.send(effect.message, { contentType: 'json' });
        return;
      case 'cancel':
        return this.env.SITE_HUB.getByName(effect.siteId).cancel(effect.commandId, effect.reason);
      case 'release':
        return this.env.USER_ACCOUNT.getByName(effect.userId).release(effect.desktopId);
      case 'gpu_release':
        await this.env.SITE_HUB.getByName(effect.siteId).releaseGpu(effect.desktopId, effect.runId ?? null);
        return;
      case 'event':
        await this.env.EVENTS.send({ kind: 'event', event: effect.event } satisfies EventsMessage, { contentType: 'json' });
        return;
      case 'audit':
        await this.env.EVENTS.send({ kind: 'audit', record: effect.record } satisfies EventsMessage, { contentType: 'json' });
        return;
    }
  }

  private async flushDatabase(): Promise<void> {
    const s = this.state();
    const sync = this.sync();
    const usage = this.sql
      .exec<{ id: string; plan: string; started_at: number; stopped_at: number | null; stop_reason: string | null; rev: number }>(
        'SELECT id, plan, started_at, stopped_at, stop_reason, rev FROM usage WHERE rev > synced_rev',
      )
      .toArray();
    if (!s || (s.revision <= sync.dbRevision && usage.length === 0)) return;
    if (sync.notBefore && sync.notBefore > Date.now()) return;
    const transitions = this.transitionsAfter(sync.dbSeq).map((t) => ({ ...t, desktopId: s.desktop.id }));
    const wake = nextWakeUp(this.timerState(s), this.timerPolicy);
    try {
      const refused = await withDb(this.cfg, (db) =>
        writeThrough(
          db,
          { desktop: s.desktop, version: s.revision, nextDueAt: iso(wake) },
          transitions,
          usage.map((u) => ({
            id: u.id,
            desktopId: s.desktop.id,
            userId: s.desktop.userId,
            plan: u.plan,
            startedAt: new Date(u.started_at).toISOString(),
            stoppedAt: iso(u.stopped_at),
            stopReason: u.stop_reason,
          })),
        ),
      );
      // Only what was read above is known to be written; later changes flush next round.
      const now = this.sync();
      this.writeMeta('sync', {
        ...now,
        dbRevision: Math.max(now.dbRevision, s.revision),
        dbSeq: Math.max(now.dbSeq, s.seq),
        failures: 0,
        // A create reports several steps within a few hundred ms; they go out as one write.
        notBefore: Date.now() + DB_COALESCE_MS,
        lastError: null,
      });
      for (const u of usage) this.sql.exec('UPDATE usage SET synced_rev = ? WHERE id = ? AND synced_rev < ?', u.rev, u.id, u.rev);
      if (refused.length > 0) this.setAside(s.desktop.id, refused);
    } catch (err) {
      const failures = sync.failures + 1;
      this.writeMeta('sync', { ...sync, failures, notBefore: Date.now() + backoffMs(failures), lastError: describeDbError(err) });
      console.warn(JSON.stringify({ msg: 'postgres write-through failed; kept in outbox', desktopId: s.desktop.id, failures }));
    }
  }

  /**
   * Rows Postgres refused (./writeThrough) do not hold the others back: each is recorded here
   * with its error and reported to admins in the audit log, once per row; the original stays
   * in this object's storage.
   */
  private setAside(desktopId: string, refused: RefusedRow[]): void {
    const now = Date.now();
    const effects: OutboxEffect[] = [];
    for (const r of refused) {
      const fresh =
        this.sql.exec(
          'INSERT INTO set_aside (kind, key, error, outcome, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          r.kind,
          r.key,
          r.error,
          r.outcome,
          now,
        ).rowsWritten > 0;
      if (!fresh) continue;
      const what = r.outcome === 'cleaned' ? 'written without its control characters' : 'set aside';
      effects.push({
        kind: 'audit',
        record: {
          id: randomId('au'),
          at: new Date(now).toISOString(),
          actor: 'system:write-through',
          role: 'system',
          action: 'desktop.row_refused',
          target: desktopId,
          sourceIp: null,
          requestId: null,
          outcome: r.outcome,
          details: { row: `${r.kind} ${r.key}`, error: r.error, reason: `Postgres refused the ${r.kind} row; it was ${what}` },
        },
      });
      console.warn(
        JSON.stringify({ msg: 'postgres refused a row', desktopId, kind: r.kind, key: r.key, outcome: r.outcome, error: r.error }),
      );
    }
    if (effects.length > 0) this.enqueue(effects);
  }

  private async scheduleAlarm(): Promise<void> {
    const times: number[] = [];
    const s = this.state();
    const wake = s ? nextWakeUp(this.timerState(s), this.timerPolicy) : null;
    if (wake !== null) times.push(wake);
    const outbox = this.sql.exec<{ t: number | null }>('SELECT min(next_at) AS t FROM outbox').one().t;
    if (outbox !== null) times.push(outbox);
    const sync = this.sync();
    const usagePending = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM usage WHERE rev > synced_rev').one().n > 0;
    if (s && (s.revision > sync.dbRevision || usagePending)) times.push(sync.notBefore ?? Date.now());
    if (times.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Math.min(...times), Date.now() + 10));
  }

  private state(): State | null {
    if (this.cachedState === undefined) this.cachedState = this.readMeta<State>('state');
    return this.cachedState;
  }

  private sync(): SyncState {
    return this.readMeta<SyncState>('sync') ?? { dbRevision: 0, dbSeq: 0, failures: 0, notBefore: null, lastError: null };
  }

  private readMeta<T>(key: string): T | null {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM meta WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : null;
  }

  private writeMeta(key: string, value: unknown): void {
    this.sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
    if (key === 'state') this.cachedState = value as State;
  }
}

const COMPLETED_MESSAGE: Record<CommandKind, string> = {
  create: 'Desktop ready',
  start: 'Desktop ready',
  stop: 'Desktop stopped',
  delete: 'Desktop deleted; VM and connection removed',
};

function commandFor(desktop: Desktop, kind: CommandKind, issuedAt: string, launch: LaunchSpec): Command {
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
  return { id: randomId('c'), desktopId: desktop.id, kind, issuedAt, spec };
}

function toTransitionRecord(r: {
  seq: number;
  at: string;
  from_status: string | null;
  to_status: string;
  event: string;
  actor: string;
  reason: string;
}): TransitionRecord {
  return {
    seq: r.seq,
    at: r.at,
    from: r.from_status as DesktopStatus | null,
    to: r.to_status as DesktopStatus,
    event: r.event,
    actor: r.actor,
    reason: r.reason,
  };
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
