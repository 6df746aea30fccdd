/**
 * DesktopSession: one Durable Object per desktop, the single source of truth for its
 * state. It loads, asks the pure transition table (./transitions) what an event leads
 * to, persists the transition with its time, actor and reason, then runs the effects
 * through an outbox in its own storage: commands to the jobs queue, cancels to the
 * site's hub, and the write-through to Postgres. An effect that fails stays in the
 * outbox and is retried from the alarm, so a Postgres or queue outage loses nothing.
 *
 * One alarm is multiplexed over the due times: the watchdog of the step in progress,
 * outbox retries and the database catch-up.
 */
import { DurableObject } from 'cloudflare:workers';
import { withDb } from '../../src/db/client';
import { writeThrough } from '../../src/db/queries';
import { type Bindings, type Config, config } from '../../src/env';
import { randomId, randomToken } from '../../src/lib/ids';
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
import type { Desktop, DesktopStatus, TransitionRecord } from '../../src/schemas/desktop';
import type { JobMessage } from '../../src/schemas/jobs';
import type { z } from 'zod';
import {
  ACTION_COMMAND,
  COMPLETION_EVENT,
  type DesktopEvent,
  STEP_EVENT,
  type UserAction,
  allowedActions,
  isInProgress,
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
  activeCommand: { id: string; kind: CommandKind } | null;
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
  | { kind: 'job'; message: JobMessage }
  | { kind: 'cancel'; siteId: string; commandId: string; reason: string }
  /** Frees the desktop's slot in its owner's quota. */
  | { kind: 'release'; userId: string; desktopId: string };

const DEFAULT_WATCHDOG_SECONDS = 600;
const RETRY_CAP_MS = 60_000;
const DB_COALESCE_MS = 250;

const STEP_NAMES: Partial<Record<DesktopStatus, string>> = {
  PENDING: 'waiting for the site bridge to pick up the command',
  PROVISIONING: 'cloning the template VM',
  STARTING: 'starting the VM',
  WAITING_FOR_IP: 'waiting for the VM to report an IP address',
  CONFIGURING: 'setting up the remote desktop connection',
  STOPPING: 'shutting the VM down',
};

const backoffMs = (failures: number) => Math.min(RETRY_CAP_MS, 500 * 2 ** Math.min(failures, 10));

export class DesktopSession extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  private readonly cfg: Config;
  private flushing = false;
  private flushAgain = false;
  /** The state row, parsed once: storage stays the truth, every write goes through writeMeta. */
  private cachedState: State | null | undefined;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.cfg = config(env);
    ctx.blockConcurrencyWhile(async () => this.migrate());
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
      this.writeMeta('schema', 1);
    }
  }

  // ---- reads ----

  async get(): Promise<Desktop | null> {
    return this.state()?.desktop ?? null;
  }

  /** The few fields a status poll needs (owner fields for the access check): the hottest read, kept small. */
  async status(): Promise<DesktopStatusView | null> {
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
    return this.sql
      .exec<{ seq: number; at: string; from_status: string | null; to_status: string; event: string; actor: string; reason: string }>(
        'SELECT * FROM transitions ORDER BY seq',
      )
      .toArray()
      .map((r) => ({
        seq: r.seq,
        at: r.at,
        from: r.from_status as DesktopStatus | null,
        to: r.to_status as DesktopStatus,
        event: r.event,
        actor: r.actor,
        reason: r.reason,
      }));
  }

  /** Whether `commandId` is still the command this desktop wants run (SiteHub asks before dispatching). */
  async isActiveCommand(commandId: string): Promise<boolean> {
    return this.state()?.activeCommand?.id === commandId;
  }

  /** Debug view for operators and tests: outbox depth and database sync position. */
  async syncStatus(): Promise<{ outbox: number; dbRevision: number; revision: number; lastError: string | null }> {
    const sync = this.sync();
    const outbox = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM outbox').one().n;
    return { outbox, dbRevision: sync.dbRevision, revision: this.state()?.revision ?? 0, lastError: sync.lastError };
  }

  // ---- user actions ----

  /** First transition of a new desktop (null → PENDING) and its create command. */
  async create(desktop: Desktop, actor: string): Promise<Result<Desktop>> {
    const existing = this.state();
    if (existing) {
      return existing.desktop.id === desktop.id ? ok(existing.desktop) : fail('CONFLICT', 'desktop id already in use');
    }
    const now = Date.now();
    const initial: State = {
      desktop: { ...desktop, status: 'PENDING' },
      revision: 0,
      seq: 0,
      statusSince: now,
      activeCommand: null,
    };
    return ok(this.apply(initial, null, 'create', actor, 'desktop creation requested', {}, 'create'));
  }

  async act(action: Exclude<UserAction, 'create'>, actor: string): Promise<Result<Desktop>> {
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    const status = s.desktop.status;
    // DELETE is idempotent: asking again while the teardown runs changes nothing.
    if (action === 'delete' && status === 'STOPPING' && s.activeCommand?.kind === 'delete') return ok(s.desktop);
    if (!nextStatus(status, action)) {
      const allowed = allowedActions(status).filter((a) => a !== 'create');
      const hint = allowed.length ? `; possible now: ${allowed.join(', ')}` : '';
      return fail('INVALID_STATE', `Cannot ${action} desktop ${s.desktop.id}: it is ${status}${hint}`);
    }
    const reason = action === 'delete' ? 'deletion requested: tearing down the VM and its connection' : `${action} requested`;
    return ok(this.apply(s, status, action, actor, reason, { errorMessage: null }, ACTION_COMMAND[action]));
  }

  /** A connect ticket (PRD 3.2): valid for a few minutes, for one opening, of this desktop only. */
  async issueTicket(): Promise<Result<{ ticket: string; expiresAt: string; desktop: Desktop }>> {
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    if (s.desktop.status !== 'RUNNING' || !s.desktop.connectionId) {
      return fail('INVALID_STATE', `Cannot connect to desktop ${s.desktop.id}: it is ${s.desktop.status}, not RUNNING`);
    }
    const now = Date.now();
    const expires = now + this.cfg.CONNECT_TICKET_TTL_SECONDS * 1000;
    const secret = randomToken();
    this.sql.exec('DELETE FROM tickets WHERE expires_at < ?', now - 3_600_000);
    this.sql.exec('INSERT INTO tickets (secret, expires_at) VALUES (?, ?)', secret, expires);
    const desktop = this.update(s, { lastAccessedAt: new Date(now).toISOString() });
    return ok({ ticket: `${s.desktop.id}.${secret}`, expiresAt: new Date(expires).toISOString(), desktop });
  }

  /** Consumes a ticket once; answers what the site needs to open a Guacamole session. */
  async redeemTicket(secret: string): Promise<Result<{ siteId: string; connectionId: string }>> {
    const s = this.state();
    const row = this.sql
      .exec<{ expires_at: number; used_at: number | null }>('SELECT * FROM tickets WHERE secret = ?', secret)
      .toArray()[0];
    const gone = 'This connect link has expired or was already used; ask for a new one with GET /api/v1/desktops/{id}/connect';
    if (!s || !row || row.used_at !== null || row.expires_at < Date.now()) return fail('NOT_FOUND', gone);
    if (s.desktop.status !== 'RUNNING' || !s.desktop.connectionId) {
      return fail('INVALID_STATE', `Cannot connect to desktop ${s.desktop.id}: it is ${s.desktop.status}, not RUNNING`);
    }
    this.sql.exec('UPDATE tickets SET used_at = ? WHERE secret = ?', Date.now(), secret);
    return ok({ siteId: s.desktop.siteId, connectionId: s.desktop.connectionId });
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

    if (frame.type === 'progress') {
      const patch = { ...factsPatch(frame.facts), statusMessage: frame.message };
      const event = kind === 'create' || kind === 'start' ? STEP_EVENT[frame.step] : undefined;
      if (event && nextStatus(status, event)) this.apply(s, status, event, actor, frame.message, patch);
      else this.update(s, patch);
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
      this.apply(s, status, 'vm_stopped_externally', actor, message, { ipAddress: null });
      return 'vm_stopped_externally';
    }
    return 'in_sync';
  }

  // ---- alarm: watchdog, outbox retries, database catch-up ----

  /** The cron sweep's nudge: runs the alarm's checks now, in case an alarm was lost. */
  async checkWatchdog(): Promise<void> {
    await this.alarm();
  }

  override async alarm(): Promise<void> {
    const s = this.state();
    if (s && isInProgress(s.desktop.status) && Date.now() >= this.watchdogDeadline(s)) {
      const seconds = this.watchdogSeconds(s.desktop.status);
      const step = STEP_NAMES[s.desktop.status] ?? s.desktop.status;
      const message = `Timed out after ${seconds} s in ${s.desktop.status} (${step})`;
      this.apply(s, s.desktop.status, 'watchdog_expired', 'system:watchdog', message, { errorMessage: message }, undefined, true);
    }
    await this.flush();
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
    const desktop: Desktop = { ...s.desktop, ...patch, status: to, updatedAt: at };
    if (!('statusMessage' in patch)) desktop.statusMessage = reason;
    const effects: OutboxEffect[] = [];
    let activeCommand = endCommand ? null : s.activeCommand;
    if (command) {
      if (s.activeCommand) {
        effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason: `superseded by ${command}` });
      }
      const next: Command = {
        id: randomId('c'),
        desktopId: desktop.id,
        kind: command,
        issuedAt: at,
        spec: {
          desktopId: desktop.id,
          userId: desktop.userId,
          name: desktop.name,
          plan: desktop.plan,
          cpuCores: desktop.cpuCores,
          memoryMb: desktop.memoryMb,
          protocol: desktop.protocol,
        },
      };
      effects.push({ kind: 'job', message: { siteId: desktop.siteId, command: next } });
      activeCommand = { id: next.id, kind: command };
    } else if (endCommand && s.activeCommand && to === 'FAILED' && event !== 'command_failed') {
      // The edge gave up (watchdog, undeliverable): tell the bridge to stop, and clean
      // up, whatever it may still be doing for this command.
      effects.push({ kind: 'cancel', siteId: desktop.siteId, commandId: s.activeCommand.id, reason });
    }
    if (to === 'DELETED') effects.push({ kind: 'release', userId: desktop.userId, desktopId: desktop.id });
    const next: State = {
      desktop,
      revision: s.revision + 1,
      seq: s.seq + 1,
      statusSince: to === from ? s.statusSince : now,
      activeCommand,
    };
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
        for (const e of effects) this.sql.exec('INSERT INTO outbox (effect, next_at) VALUES (?, ?)', JSON.stringify(e), now);
      });
    } catch (err) {
      // The transaction rolled back; the cache must not keep what it did not commit.
      this.cachedState = undefined;
      throw err;
    }
    this.kickFlush();
    return desktop;
  }

  /** Persists a change that is not a status transition (progress facts, lastAccessedAt). */
  private update(s: State, patch: Partial<Desktop>): Desktop {
    const desktop: Desktop = { ...s.desktop, ...patch, updatedAt: new Date().toISOString() };
    this.writeMeta('state', { ...s, desktop, revision: s.revision + 1 });
    this.kickFlush();
    return desktop;
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
    const due = this.sql
      .exec<{ id: number; effect: string; attempts: number }>(
        'SELECT id, effect, attempts FROM outbox WHERE next_at <= ? ORDER BY id',
        Date.now(),
      )
      .toArray();
    for (const row of due) {
      const effect = JSON.parse(row.effect) as OutboxEffect;
      try {
        if (effect.kind === 'job') await this.env.JOBS.send(effect.message, { contentType: 'json' });
        else if (effect.kind === 'cancel') await this.env.SITE_HUB.getByName(effect.siteId).cancel(effect.commandId, effect.reason);
        else await this.env.USER_ACCOUNT.getByName(effect.userId).release(effect.desktopId);
        this.sql.exec('DELETE FROM outbox WHERE id = ?', row.id);
      } catch (err) {
        this.sql.exec(
          'UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?',
          Date.now() + backoffMs(row.attempts),
          String(err),
          row.id,
        );
      }
    }
  }

  private async flushDatabase(): Promise<void> {
    const s = this.state();
    const sync = this.sync();
    if (!s || s.revision <= sync.dbRevision) return;
    if (sync.notBefore && sync.notBefore > Date.now()) return;
    const transitions = (await this.history()).filter((t) => t.seq > sync.dbSeq).map((t) => ({ ...t, desktopId: s.desktop.id }));
    try {
      await withDb(this.cfg, (db) => writeThrough(db, { desktop: s.desktop, version: s.revision }, transitions));
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
    } catch (err) {
      const failures = sync.failures + 1;
      this.writeMeta('sync', { ...sync, failures, notBefore: Date.now() + backoffMs(failures), lastError: String(err).slice(0, 300) });
      console.warn(JSON.stringify({ msg: 'postgres write-through failed; kept in outbox', desktopId: s.desktop.id, failures }));
    }
  }

  private async scheduleAlarm(): Promise<void> {
    const times: number[] = [];
    const s = this.state();
    if (s && isInProgress(s.desktop.status)) times.push(this.watchdogDeadline(s));
    const outbox = this.sql.exec<{ t: number | null }>('SELECT min(next_at) AS t FROM outbox').one().t;
    if (outbox !== null) times.push(outbox);
    const sync = this.sync();
    if (s && s.revision > sync.dbRevision) times.push(sync.notBefore ?? Date.now());
    if (times.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Math.min(...times), Date.now() + 10));
  }

  private watchdogSeconds(status: DesktopStatus): number {
    return this.cfg.WATCHDOG_SECONDS[status] ?? DEFAULT_WATCHDOG_SECONDS;
  }

  private watchdogDeadline(s: State): number {
    return s.statusSince + this.watchdogSeconds(s.desktop.status) * 1000;
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
    if (key === 'state') this.cachedState = value as State;
    this.sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
  }
}

const COMPLETED_MESSAGE: Record<CommandKind, string> = {
  create: 'Desktop ready',
  start: 'Desktop ready',
  stop: 'Desktop stopped',
  delete: 'Desktop deleted; VM and connection removed',
};

function factsPatch(facts: DesktopFacts | undefined): Partial<Desktop> {
  const patch: Partial<Desktop> = {};
  if (!facts) return patch;
  if (facts.vmId !== undefined) patch.vmId = facts.vmId;
  if (facts.node !== undefined) patch.node = facts.node;
  if (facts.ipAddress !== undefined) patch.ipAddress = facts.ipAddress;
  if (facts.connectionId !== undefined) patch.connectionId = facts.connectionId;
  return patch;
}
