/**
 * DesktopSession: one Durable Object per desktop, the single source of truth for its
 * state, and a thin shell around the pure rules of src/desktop/decide.ts. Every change is
 * load → decide → commit: the new state, its transition, its usage intervals, its outbox
 * entries and its alarm are stored in one storage transaction, then the outbox runs
 * (commands to the jobs queue, cancels to the site's hub, quota and GPU releases, events
 * for webhooks, the owners' list indexes) and the write-through to Postgres
 * (./write-through.ts). An effect that fails stays in the outbox and is retried from the
 * alarm, so a Postgres or queue outage loses nothing.
 *
 * One alarm is multiplexed over the due times: the desktop's clocks (src/desktop/timers.ts),
 * outbox retries and the database catch-up. Viewers follow the desktop live over a
 * hibernatable WebSocket (`/live`).
 */
import { DurableObject } from 'cloudflare:workers';
import type { RefusedRow } from '../../src/db/queries';
import { type DecideRules, type Decision, type DesktopInput, decide, startsNewRun, timerState } from '../../src/desktop/decide';
import type { BridgeReport, DesktopStatusView, LiveMessage, ReconcileOutcome, SessionState } from '../../src/desktop/session-state';
import type { MemberReading } from '../../src/desktop/pool-shard';
import { dueAction, nextWakeUp } from '../../src/desktop/timers';
import { type Bindings, type Config, config } from '../../src/env';
import { fail, ok, type Result } from '../../src/lib/result';
import type { ActivitySource, Desktop, DesktopStatus, TransitionRecord } from '../../src/schemas/desktop';
import { poolActor } from '../../src/schemas/pool';
import { ObjectStorage } from '../shared/object-storage';
import {
  type ActRequest,
  type Prepared,
  type ClaimRequest,
  type CreateRequest,
  type SnapshotSpec,
  prepareMemberClaim,
  prepareCreate,
  prepareSnapshot,
  prepareStart,
} from './admission';
import { Outbox } from './outbox';
import * as writeThrough from './write-through';
import { AlarmClock } from './alarm-clock';
import { acceptViewer, sendToViewers } from './live';
import { SCHEMA, decideRules } from './schema';
import { newTicket, redeemTicket, storeTicket } from './tickets';
import { type Redemption, ShareLinkStore } from './share-links';
import type { CreatedShareLink, CreateShareLink, ShareLink } from '../../src/schemas/share-link';

export type { BridgeReport, DesktopStatusView, LiveMessage, ReconcileOutcome } from '../../src/desktop/session-state';

/** How long a transition's effects may take in memory before the alarm set with it runs them again. */
const EFFECTS_GRACE_MS = 10_000;

export class DesktopSession extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;
  private readonly shareLinks: ShareLinkStore;
  private readonly outbox: Outbox;
  private readonly cfg: Config;
  private readonly rules: DecideRules;
  private flushing = false;
  private flushAgain = false;
  /** The state row, parsed once: storage stays the truth, every write goes through commit. */
  private cachedState: SessionState | null | undefined;
  /** A create waiting on its quota and GPU: a second one for the same desktop waits for it. */
  private creating: Promise<unknown> = Promise.resolve();
  /**
   * Delivery of a status change to the owners' list indexes, while one is under way. Reads
   * that show the desktop (get, status, the live stream, the answers of create and act)
   * wait for it, so a list never lags what a status call has shown. It never rejects: an
   * index that cannot be reached delays nothing further, and the outbox retries it.
   */
  private indexing: Promise<void> | null = null;
  private readonly alarmClock: AlarmClock;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.shareLinks = new ShareLinkStore(this.store);
    this.outbox = new Outbox(this.store, env);
    this.alarmClock = new AlarmClock(ctx.storage);
    this.cfg = config(env);
    this.rules = decideRules(this.cfg);
    // Live viewers may ping; the runtime answers without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
    ctx.blockConcurrencyWhile(async () => {
      this.store.migrate(SCHEMA);
      // An index entry left undelivered by the last run of this object: reads wait for it too.
      if (this.outbox.hasIndexEntries()) this.syncIndexes();
    });
  }

  // ---- reads ----

  async get(): Promise<Desktop | null> {
    await this.indexing;
    return this.state()?.desktop ?? null;
  }

  /** The hottest read: only what a status poll and its access check need. */
  async status(): Promise<DesktopStatusView | null> {
    if (this.indexing) await this.indexing;
    const d = this.state()?.desktop;
    if (!d) return null;
    const { id, userId, siteId, createdBy, status, statusMessage, errorMessage, updatedAt } = d;
    return { id, userId, siteId, createdBy, status, statusMessage, errorMessage, updatedAt };
  }

  async history(): Promise<TransitionRecord[]> {
    return writeThrough.transitionsAfter(this.store, 0);
  }

  /** The status and the run (create or start) it belongs to: the site's hub asks whether a GPU booking has ended. */
  async currentRun(): Promise<{ status: DesktopStatus; runId: string | null } | null> {
    const s = this.state();
    return s ? { status: s.desktop.status, runId: s.launch?.runId ?? null } : null;
  }

  /** What its warm pool reads of an unclaimed member (src/desktop/pool-shard.ts). */
  async poolReading(): Promise<MemberReading> {
    const s = this.state();
    return s && { status: s.desktop.status, unclaimed: Boolean(s.pool), busy: s.activeCommand !== null };
  }

  /** Whether `commandId` is still the command this desktop wants run (SiteHub asks before dispatching). */
  async isActiveCommand(commandId: string): Promise<boolean> {
    return this.state()?.activeCommand?.id === commandId;
  }

  /** Debug view for operators and tests: outbox depth and database sync position. */
  async syncStatus(): Promise<{ outbox: number; dbRevision: number; revision: number; lastError: string | null; setAside: RefusedRow[] }> {
    const { dbRevision, lastError } = writeThrough.syncState(this.store);
    const setAside = writeThrough.setAsideRows(this.store);
    return { outbox: this.outbox.size(), dbRevision, revision: this.state()?.revision ?? 0, lastError, setAside };
  }

  /** Usage intervals of this desktop (ms), for tests and operators; billing reads Postgres. */
  async usage(): Promise<writeThrough.UsageInterval[]> {
    return writeThrough.usageIntervals(this.store);
  }

  // ---- the live stream ----

  /** GET …/live, already authorised by the Worker: upgrade to a hibernatable WebSocket and send the state at once. */
  override async fetch(request: Request): Promise<Response> {
    await this.indexing;
    const s = this.state();
    if (!s) return new Response('desktop not found', { status: 404 });
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    return acceptViewer(this.ctx, s, this.rules.timers);
  }

  override async webSocketMessage(): Promise<void> {
    // The stream only talks; anything a viewer sends (other than the auto-answered ping) is ignored.
  }

  /** Sends to live viewers once the owners' indexes have the state it shows, in the order it was called. */
  private broadcast(messages: LiveMessage[]): void {
    if (messages.length === 0) return;
    const send = () => sendToViewers(this.ctx, messages);
    if (this.indexing) void this.indexing.then(send);
    else send();
  }

  // ---- requests ----

  /**
   * First transition of a new desktop (null → PENDING) and its create command, once its
   * user's (and service's) quota has a slot and, for a GPU desktop, its GPU is booked.
   */
  async create(request: CreateRequest): Promise<Result<Desktop>> {
    const run = this.creating.then(() => this.admitAndCreate(request));
    this.creating = run.catch(() => {});
    return run;
  }

  private async admitAndCreate({ desktop, actor, launch, admission, requestId, pool }: CreateRequest): Promise<Result<Desktop>> {
    const existing = this.state();
    if (existing) return existing.desktop.id === desktop.id ? ok(existing.desktop) : fail('CONFLICT', 'desktop id already in use');
    const prepared = await prepareCreate(this.env, this.cfg, desktop, launch, admission);
    return this.changeHolding(prepared, (run) => ({ kind: 'create', desktop, actor, launch: run, requestId, pool }));
  }

  /**
   * A warm pool hands this desktop, ready, to a user (src/desktop/decide.ts `claim`): their quota slots are taken
   * first, and a member of the stopped tier is started for them. Two claims of one member: the second is refused.
   */
  async claim({ poolId, owner, actor, admission, requestId }: ClaimRequest): Promise<Result<Desktop>> {
    const input: DesktopInput = { kind: 'claim', poolId, owner, actor, requestId };
    const refused = decide(this.state(), input, Date.now(), this.rules).refused;
    if (refused) return fail(refused.code === 'IGNORED' ? 'INVALID_STATE' : refused.code, refused.message);
    const taken = await prepareMemberClaim(this.env, this.cfg, this.state()?.desktop, owner, admission);
    const r = await this.changeHolding(taken, ({ turn }) => ({ ...input, turn: turn ?? undefined }));
    return r.ok && r.value.status === 'STOPPED' ? this.act({ action: 'start', actor, requestId }) : r;
  }

  async act({ action, actor, requestId, snapshot }: ActRequest): Promise<Result<Desktop>> {
    const s = this.state();
    const newRun = s !== null && startsNewRun(s.desktop.status, action);
    if (!s || !newRun) return this.change({ kind: 'act', action, actor, requestId, snapshot });
    // A new run (src/desktop/decide.ts startsNewRun): what it needs is taken first, and given back if it is refused after all.
    const prepared = await prepareStart(this.env, this.cfg, s.desktop);
    return this.changeHolding(prepared, (run) => ({ kind: 'act', action, actor, launch: run, requestId, snapshot }));
  }

  /** The warm pool `poolId` starts, stops or destroys its member: only while nobody has claimed it. */
  async poolAction(poolId: string, action: 'start' | 'stop' | 'delete'): Promise<Result<Desktop>> {
    const s = this.state();
    if (s?.pool !== poolId) return fail(s ? 'CONFLICT' : 'NOT_FOUND', `This desktop is not an unclaimed member of pool ${poolId}`);
    return this.act({ action, actor: poolActor(poolId) });
  }

  /** Takes or deletes a snapshot (src/desktop/decide.ts): the status stays. A take first holds a slot in its owner's snapshot quota. */
  async snapshotCommand(op: 'take' | 'delete', snapshot: SnapshotSpec, actor: string, requestId?: string): Promise<Result<Desktop>> {
    const s = this.state();
    if (!s) return fail('NOT_FOUND', 'desktop not found');
    if (op === 'delete') return this.change({ kind: 'snapshot', op, snapshot, actor, requestId });
    const prepared = await prepareSnapshot(this.env, this.cfg, s.desktop, snapshot.name);
    return this.changeHolding(prepared, () => ({ kind: 'snapshot', op, snapshot, actor, requestId }));
  }

  /** A keepalive: restarts the idle clock, recorded with its reason. */
  async recordActivity(source: Extract<ActivitySource, 'keepalive'>, reason: string | null): Promise<Result<Desktop>> {
    return this.change({ kind: 'activity', source, reason });
  }

  /** The bridge of `siteId` sees viewers on this desktop: activity, if the desktop is its own and RUNNING. */
  async recordViewers(siteId: string, viewers: number): Promise<void> {
    await this.change({ kind: 'activity', source: 'viewer', reason: `${viewers} viewer${viewers === 1 ? '' : 's'} connected`, siteId });
  }

  /** A connect ticket (./tickets.ts); the connect counts as activity. */
  async issueTicket(): Promise<Result<{ ticket: string; expiresAt: string; desktop: Desktop }>> {
    const t = await newTicket(this.cfg.CONNECT_TICKET_TTL_SECONDS);
    const now = Date.now();
    const r = this.commit(decide(this.state(), { kind: 'connect', via: 'guacamole' }, now, this.rules), () =>
      storeTicket(this.store, t, now),
    );
    return r.ok ? ok({ ticket: `${r.value.id}.${t.secret}`, expiresAt: new Date(t.expiresAt).toISOString(), desktop: r.value }) : r;
  }

  /** A viewer is about to open this Selkies desktop: counts as activity; it must be RUNNING. */
  async connectSelkies(): Promise<Result<Desktop>> {
    return this.change({ kind: 'connect', via: 'selkies' });
  }

  async redeemTicket(secret: string): Promise<Result<{ siteId: string; connectionId: string }>> {
    return redeemTicket(this.store, this.state()?.desktop, secret);
  }

  // ---- share links (src/desktop/share-links.ts), kept by ./share-links.ts ----

  createShareLink(input: CreateShareLink, actor: string, origin: string): Promise<Result<CreatedShareLink>> {
    return this.shareLinks.create(this.state()?.desktop, input, actor, origin);
  }
  async listShareLinks(): Promise<ShareLink[]> {
    return this.shareLinks.list(this.state()?.desktop);
  }
  async revokeShareLink(linkId: string, actor: string): Promise<Result<ShareLink>> {
    return this.shareLinks.revokeFor(this.state()?.desktop, linkId, actor);
  }
  redeemShareLink(linkId: string, secret: string): Promise<Result<Redemption>> {
    return this.shareLinks.redeem(this.state()?.desktop, linkId, secret);
  }
  async giveBackShareUse(linkId: string): Promise<void> {
    this.shareLinks.giveBack(linkId);
  }

  // ---- reports from the bridge (through the site's hub), the queue and reconciliation ----

  async bridgeReport(siteId: string, frame: BridgeReport): Promise<{ applied: boolean; reason?: string }> {
    const d = decide(this.state(), { kind: 'bridge', siteId, frame }, Date.now(), this.rules);
    if (d.refused) return { applied: false, reason: d.refused.code === 'NOT_FOUND' ? 'unknown desktop' : d.refused.message };
    this.commit(d);
    return { applied: true };
  }

  /** The jobs queue gave up delivering a command (dead letter): the site's bridge stayed offline. */
  async commandUndeliverable(commandId: string, attempts: number): Promise<void> {
    this.commit(decide(this.state(), { kind: 'undeliverable', commandId, attempts }, Date.now(), this.rules));
  }

  /** What reconciliation saw of this desktop's VM at `takenAt` (null: no VM); see src/desktop/decide.ts. */
  async reconcileObservation(siteId: string, takenAt: string, vm: { status: string } | null): Promise<ReconcileOutcome> {
    const d = decide(this.state(), { kind: 'reconcile', siteId, takenAt, vm }, Date.now(), this.rules);
    if (d.refused) return d.refused.code === 'INVALID_STATE' ? 'unsettled' : 'unknown';
    this.commit(d);
    return d.transition?.event === 'vm_missing' || d.transition?.event === 'vm_stopped_externally' ? d.transition.event : 'in_sync';
  }

  // ---- alarm: the desktop's clocks, outbox retries, database catch-up ----

  /** The cron sweep's nudge: runs the alarm's checks now, in case an alarm was lost. */
  async checkWatchdog(): Promise<void> {
    await this.alarm();
  }

  override async alarm(): Promise<void> {
    this.alarmClock.forget();
    const bridgeOffline = await this.bridgeOfflineForWatchdog();
    // Several clocks can be due at once (a warning and its stop after a long outage).
    for (let i = 0; i < 5; i++) {
      const d = decide(this.state(), { kind: 'clock', bridgeOffline }, Date.now(), this.rules);
      if (!d.next) break;
      this.commit(d);
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
    if (!s || dueAction(timerState(s), Date.now(), this.rules.timers)?.kind !== 'watchdog') return false;
    try {
      return !(await this.env.SITE_HUB.getByName(s.desktop.siteId).status()).connected;
    } catch {
      return false;
    }
  }

  // ---- commit ----

  /** Commits what `input` makes of what was taken for it (./admission.ts); gives that back when the change is refused. */
  private async changeHolding<L>(prepared: Result<Prepared<L>>, input: (taken: L) => DesktopInput): Promise<Result<Desktop>> {
    if (!prepared.ok) return prepared;
    const r = await this.change(input(prepared.value.launch));
    if (!r.ok) await prepared.value.giveBack();
    return r;
  }

  /** Decides and commits; the answer waits until the owners' indexes show the change. */
  private async change(input: DesktopInput): Promise<Result<Desktop>> {
    const r = this.commit(decide(this.state(), input, Date.now(), this.rules));
    await this.indexing;
    return r;
  }

  /**
   * Stores a decision in one transaction (state, transition, usage, outbox, alarm; `also`
   * for what the caller stores with it), then tells viewers and runs the outbox.
   */
  private commit(d: Decision, also?: () => void): Result<Desktop> {
    const s = this.state();
    if (d.refused) return fail(d.refused.code === 'IGNORED' ? 'INVALID_STATE' : d.refused.code, d.refused.message);
    const next = d.next;
    if (!next) return s ? ok(s.desktop) : fail('NOT_FOUND', 'desktop not found');
    const now = Date.now();
    try {
      this.store.transaction(() => {
        this.store.put('state', next);
        const t = d.transition;
        if (t) {
          this.store.run(
            'INSERT INTO transitions (seq, at, from_status, to_status, event, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
            t.seq,
            t.at,
            t.from,
            t.to,
            t.event,
            t.actor,
            t.reason,
          );
        }
        for (const u of d.usage) {
          if (u.kind === 'open') this.store.run('INSERT INTO usage (id, plan, started_at) VALUES (?, ?, ?)', u.id, u.plan, u.at);
          else this.store.run('UPDATE usage SET stopped_at = ?, stop_reason = ?, rev = rev + 1 WHERE id = ?', u.at, u.reason, u.id);
        }
        this.outbox.add(d.effects, now);
        also?.();
        // The alarm belongs to the change, not to its effects: an object reset before (or
        // while) they run still wakes up to run them and keep its clocks.
        this.alarmClock.ringBy(
          Math.min(nextWakeUp(timerState(next), this.rules.timers) ?? Number.POSITIVE_INFINITY, now + EFFECTS_GRACE_MS),
          now,
        );
      });
    } catch (err) {
      // The transaction rolled back; the cache must not keep what it did not commit.
      this.cachedState = undefined;
      this.alarmClock.forget();
      throw err;
    }
    this.cachedState = next;
    if (d.effects.some((e) => e.kind === 'index')) this.syncIndexes();
    this.broadcast(d.liveMessages);
    this.kickFlush();
    return ok(next.desktop);
  }

  // ---- the outbox and the write-through ----

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
        await this.outbox.runDue();
        const s = this.state();
        const wake = s ? nextWakeUp(timerState(s), this.rules.timers) : null;
        const refusals = await writeThrough.writeToPostgres(this.store, this.cfg, s, wake);
        if (refusals.length > 0) {
          this.outbox.add(refusals);
          this.flushAgain = true;
        }
      } while (this.flushAgain);
    } finally {
      this.flushing = false;
      await this.scheduleAlarm();
    }
  }

  /**
   * Delivers the index entries in the outbox now, ahead of the other effects, and makes
   * reads wait until that is done (`indexing`). The outbox flush may send the same entry
   * again; an index keeps the highest revision, so a repeat changes nothing.
   */
  private syncIndexes(): void {
    const done = (this.indexing ?? Promise.resolve())
      .then(() => this.outbox.runIndexEntries())
      .then(() => {})
      .catch(() => {});
    this.indexing = done;
    void done.then(() => {
      if (this.indexing === done) this.indexing = null;
    });
  }

  private async scheduleAlarm(): Promise<void> {
    const s = this.state();
    const now = Date.now();
    const clocks = s ? nextWakeUp(timerState(s), this.rules.timers) : null;
    const times = [clocks, this.outbox.nextAt(), writeThrough.writeDueAt(this.store, s, now)].filter((t): t is number => t !== null);
    await this.alarmClock.ringAt(times.length === 0 ? null : Math.max(Math.min(...times), now + 10));
  }

  private state(): SessionState | null {
    if (this.cachedState === undefined) this.cachedState = this.store.get<SessionState>('state');
    return this.cachedState;
  }
}
