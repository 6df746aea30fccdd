/**
 * SiteHub: one Durable Object per on-prem site. It holds the bridge's outbound
 * WebSocket (hibernatable: an idle site costs nothing), pushes commands down it,
 * tracks which are in flight with a lease, and routes progress and results back to
 * the right DesktopSession.
 *
 * Leases: a command sent to the bridge is in flight until it completes or fails; the
 * bridge's `accepted`, `progress` and `heartbeat` frames renew its lease. A lease that
 * lapses while the bridge is connected is handed out again (the bridge deduplicates by
 * command id). When the link drops, every in-flight command goes back to the jobs
 * queue, whose retries and dead-letter queue then decide its fate uniformly.
 */
import { DurableObject } from 'cloudflare:workers';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';
import { withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { markSiteLink, siteKeyHash } from '../../src/db/queries';
import { timingSafeEqualHex } from '../../src/lib/ids';
import { type Bindings, type Config, config } from '../../src/env';
import { bookingOwner, gpuBookingId } from '../../src/lib/launch';
import { randomId } from '../../src/lib/ids';
import { type GpuSlotState, allocate, emptyState, isSlotCount, occupancy, release, setInventory } from '../../src/gpu/allocator';
import { fail, ok, type Result } from '../../src/lib/result';
import {
  BridgeToEdgeSchema,
  type BridgeToEdge,
  type Command,
  type DesktopMetrics,
  type DesktopSnapshotList,
  type EdgeToBridge,
  type Inventory,
  PROTOCOL_VERSION,
  type ShareMode,
  type SiteRequest,
} from '../../src/schemas/bridge-protocol';
import type { JobMessage } from '../../src/schemas/jobs';
import type { Occupancy } from '../../src/schemas/gpu';
import { type ReconcileReport, ReconcileReportSchema } from '../../src/schemas/reconcile';
import type { BridgeReport } from '../desktop-session/desktop-session';

interface Attachment {
  connectedAt: number;
  lastSeen: number;
  bridgeVersion: string | null;
  /** Set when a newer connection of the same site took over. */
  replaced: boolean;
}

export interface SiteStatus {
  siteId: string;
  connected: boolean;
  connectedAt: string | null;
  lastSeenAt: string | null;
  bridgeVersion: string | null;
  inFlight: number;
}

export type DispatchOutcome = 'delivered' | 'offline' | 'dropped';

/** Close codes the hub gives a bridge it no longer accepts (the bridge reconnects with its key, and is refused). */
const SITE_KEY_ROTATED = 4003;
const SITE_REMOVED = 4004;

const REQUEST_TIMEOUT_MS = 15_000;

/** Bookings that hold the slots of an orphan pod: not a desktop's own, so no desktop's end frees them. */
const ORPHAN_PREFIX = 'orphan-';
const orphanBooking = (desktopId: string) => `${ORPHAN_PREFIX}${desktopId}`;

/** Meta keys whose values releases before the versioned schema wrote as bare strings, not JSON. */
const BARE_META_KEYS = ['keyHash', 'siteId', 'removed', 'deploymentId'];

const SCHEMA: SchemaStep[] = [
  // 1: the tables as the releases before versions made them (hubs deployed then have them already).
  (sql, store) => {
    // `orphan` = 1 for reconciliation's clean-ups, which no desktop owns (so no desktop is asked about them).
    sql.exec(`CREATE TABLE IF NOT EXISTS commands (
      id TEXT PRIMARY KEY, desktop_id TEXT NOT NULL, body TEXT NOT NULL,
      lease_until INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1, orphan INTEGER NOT NULL DEFAULT 0)`);
    if (!store.hasColumn('commands', 'orphan')) sql.exec('ALTER TABLE commands ADD COLUMN orphan INTEGER NOT NULL DEFAULT 0');
    // Commands that found the site offline. The queue keeps retrying them with backoff;
    // this copy lets a reconnecting bridge get them at once instead of at the next retry.
    sql.exec('CREATE TABLE IF NOT EXISTS parked (id TEXT PRIMARY KEY, body TEXT NOT NULL, parked_at INTEGER NOT NULL)');
    // Desktops whose leftovers reconciliation found, with when it first saw them.
    sql.exec('CREATE TABLE IF NOT EXISTS orphans (desktop_id TEXT PRIMARY KEY, first_seen INTEGER NOT NULL)');
    for (const key of BARE_META_KEYS) {
      const row = store.first<{ value: string }>('SELECT value FROM meta WHERE key = ?', key);
      if (row) store.put(key, row.value);
    }
  },
];

export class SiteHub extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;
  private readonly cfg: Config;
  /** Frames of one desktop are applied in the order the bridge sent them. */
  private readonly desktopChains = new Map<string, Promise<unknown>>();
  private readonly pendingRequests = new Map<string, (frame: Extract<BridgeToEdge, { type: 'response' }>) => void>();
  /**
   * When this instance last renewed each command's lease: a create's frames come a few ms
   * apart, and a lease renewed a moment ago need not be written again (../../src/env.ts
   * LEASE_SECONDS; a quarter of it may pass first, three quarters are always left).
   */
  private readonly renewedAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.cfg = config(env);
    this.store.migrate(SCHEMA);
  }

  // ---- the site key ----

  /**
   * Whether `keyHash` (SHA-256 of the key a bridge presents) is this site's. The hub keeps
   * the hash itself, so bridges log in while Postgres is down; Postgres holds the copy
   * that lists sites. A hub that has none yet (a site registered before hubs kept it, or
   * written to Postgres directly) takes Postgres' once; `unavailable` when it would need
   * Postgres and cannot reach it.
   */
  async authenticate(keyHash: string): Promise<'ok' | 'refused' | 'unavailable'> {
    let stored = this.store.get<string>('keyHash');
    if (stored === null && this.store.get<string>('removed') === null) {
      try {
        stored = await withDb(this.cfg, (db) => siteKeyHash(db, this.siteId()));
      } catch {
        return 'unavailable';
      }
      if (stored !== null) this.store.put('keyHash', stored);
    }
    return stored !== null && timingSafeEqualHex(keyHash, stored) ? 'ok' : 'refused';
  }

  /** A site registered, or its key rotated: a bridge still connected with the old key is hung up on. */
  async setSiteKey(keyHash: string): Promise<void> {
    const previous = this.store.get<string>('keyHash');
    this.store.delete('removed');
    this.store.put('keyHash', keyHash);
    if (previous !== null && previous !== keyHash) this.hangUp(SITE_KEY_ROTATED, 'site key rotated');
  }

  /** The site is removed: no key opens it any more, and its bridge is hung up on. Answers whether it had a key. */
  async removeSite(): Promise<boolean> {
    const had = this.store.get<string>('keyHash') !== null;
    this.store.delete('keyHash');
    this.store.put('removed', new Date().toISOString());
    this.hangUp(SITE_REMOVED, 'site removed');
    return had;
  }

  private hangUp(code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      this.setAttachment(ws, { replaced: true });
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
    if (!this.liveSocket()) this.ctx.waitUntil(this.requeueInFlight(`hung up: ${reason}`));
  }

  // ---- the bridge's WebSocket ----

  /** Called by the Worker route after it has verified the site key. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a bridge WebSocket', { status: 400 });
    const siteId = this.siteId();
    for (const old of this.ctx.getWebSockets()) {
      this.setAttachment(old, { replaced: true });
      old.close(4001, 'replaced by a newer connection of this site');
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    server.serializeAttachment({ connectedAt: now, lastSeen: now, bridgeVersion: null, replaced: false } satisfies Attachment);
    this.send(server, {
      type: 'hello',
      siteId,
      protocolVersion: PROTOCOL_VERSION,
      leaseMs: this.cfg.LEASE_SECONDS * 1000,
      heartbeatMs: this.cfg.HEARTBEAT_SECONDS * 1000,
      deploymentId: this.deploymentId(),
    });
    this.ctx.waitUntil(this.recordLink(siteId, true));
    await this.ctx.storage.setAlarm(now + this.cfg.HEARTBEAT_SECONDS * 1000);
    console.log(JSON.stringify({ msg: 'bridge connected', siteId }));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    let frame: BridgeToEdge;
    try {
      frame = BridgeToEdgeSchema.parse(JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data)));
    } catch {
      console.warn(JSON.stringify({ msg: 'invalid bridge frame dropped', siteId: this.siteId() }));
      return;
    }
    this.setAttachment(ws, { lastSeen: Date.now() });
    const now = Date.now();
    switch (frame.type) {
      case 'ready': {
        this.setAttachment(ws, { bridgeVersion: frame.bridgeVersion });
        // Commands this hub had in flight that the bridge no longer runs (it restarted
        // while the link was replaced) are handed out again.
        const running = new Set(frame.running);
        for (const row of this.inFlight()) if (!running.has(row.id)) await this.resend(ws, row);
        await this.dispatchParked();
        return;
      }
      case 'heartbeat':
        this.renewLeases(frame.running, now);
        return;
      case 'activity':
        await this.reportViewers(frame.desktops);
        return;
      case 'capacity':
        this.setGpuInventory(frame.gpus);
        return;
      case 'response':
        this.pendingRequests.get(frame.requestId)?.(frame);
        return;
      case 'accepted':
      case 'progress':
        this.renewLeases([frame.commandId], now);
        await this.route(frame);
        return;
      case 'complete':
      case 'fail':
        // The outcome, with the request id the bridge echoed: one id from the HTTP request to here.
        console.log(
          JSON.stringify({
            msg: frame.type === 'complete' ? 'command complete' : 'command failed',
            siteId: this.siteId(),
            commandId: frame.commandId,
            desktopId: frame.desktopId,
            requestId: frame.requestId,
            ...(frame.type === 'fail' ? { message: frame.message } : {}),
          }),
        );
        await this.route(frame);
        this.store.run('DELETE FROM commands WHERE id = ?', frame.commandId);
        this.renewedAt.delete(frame.commandId);
        return;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    await this.linkLost(ws, `closed (${code})`);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.linkLost(ws, 'errored');
  }

  /** Lease and liveness checks while a bridge is connected. */
  override async alarm(): Promise<void> {
    const ws = this.liveSocket();
    if (!ws) return;
    const att = ws.deserializeAttachment() as Attachment;
    const now = Date.now();
    if (now - att.lastSeen > 3 * this.cfg.HEARTBEAT_SECONDS * 1000) {
      // A half-open link: no frame for three heartbeats. Treat the bridge as gone.
      ws.close(4002, 'no heartbeat');
      await this.linkLost(ws, 'heartbeat timeout');
      return;
    }
    for (const row of this.inFlight()) if (row.lease_until < now) await this.resend(ws, row);
    await this.ctx.storage.setAlarm(now + this.cfg.HEARTBEAT_SECONDS * 1000);
  }

  // ---- RPC from the queue consumer, DesktopSession and routes ----

  /** Hands a command to the bridge now, or says the site is offline so the queue retries. */
  async dispatch(job: JobMessage): Promise<DispatchOutcome> {
    const { command } = job;
    const active = await this.env.DESKTOP_SESSION.getByName(command.desktopId).isActiveCommand(command.id);
    if (!active) return 'dropped';
    const ws = this.liveSocket();
    const body = JSON.stringify(command);
    if (!ws) {
      this.store.run('INSERT INTO parked (id, body, parked_at) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING', command.id, body, Date.now());
      return 'offline';
    }
    this.store.run('DELETE FROM parked WHERE id = ?', command.id);
    this.deliver(ws, command);
    console.log(
      JSON.stringify({
        msg: 'command dispatched',
        siteId: job.siteId,
        commandId: command.id,
        desktopId: command.desktopId,
        kind: command.kind,
        requestId: command.requestId,
      }),
    );
    return 'delivered';
  }

  async cancel(commandId: string, reason: string): Promise<void> {
    const ws = this.liveSocket();
    if (ws) this.send(ws, { type: 'cancel', commandId, reason });
  }

  /** Asks the bridge for a Guacamole session limited to one connection (it holds the credentials). */
  async openSession(desktopId: string, connectionId: string): Promise<Result<{ url: string }>> {
    const answer = await this.ask({ op: 'open_session', desktopId, connectionId });
    if (!answer.ok) return answer;
    if (!answer.value.url) return fail('SITE_UNAVAILABLE', 'The on-prem bridge could not open the session');
    return ok({ url: answer.value.url });
  }

  /** A share key on the owner's live Guacamole session (a guest redeemed a share link). */
  async shareSession(desktopId: string, connectionId: string, mode: ShareMode, linkId?: string): Promise<Result<{ url: string }>> {
    const answer = await this.ask({ op: 'share_session', desktopId, connectionId, mode, ...(linkId === undefined ? {} : { linkId }) });
    if (!answer.ok) return answer;
    if (!answer.value.url) return fail('SITE_UNAVAILABLE', 'The on-prem bridge could not share the session');
    return ok({ url: answer.value.url });
  }

  /** A share link was revoked: the bridge ends its guests' Guacamole connections; answers how many. */
  async endSharedSessions(desktopId: string, connectionId: string, linkId: string): Promise<Result<{ ended: number }>> {
    const answer = await this.ask({ op: 'end_shared_sessions', desktopId, connectionId, linkId });
    if (!answer.ok) return answer;
    return ok({ ended: answer.value.ended ?? 0 });
  }

  /** A Selkies session's URL and Basic credentials, from the bridge that derives them. */
  async sessionCredentials(desktopId: string): Promise<Result<{ url: string; username: string; password: string }>> {
    const answer = await this.ask({ op: 'session_credentials', desktopId });
    if (!answer.ok) return answer;
    const { url, username, password } = answer.value;
    if (!url || !username || !password) return fail('SITE_UNAVAILABLE', 'The on-prem bridge sent no session credentials');
    return ok({ url, username, password });
  }

  /** A desktop's recent CPU, memory, network and disk use, read by the bridge from Proxmox. */
  async desktopMetrics(desktopId: string, vmId: number, node: string): Promise<Result<DesktopMetrics>> {
    const answer = await this.ask({ op: 'desktop_metrics', desktopId, vmId, node });
    if (!answer.ok) return answer;
    if (!answer.value.metrics) return fail('SITE_UNAVAILABLE', 'The on-prem bridge sent no metrics');
    return ok(answer.value.metrics);
  }

  /** A desktop's snapshots, and whether its storage can take them, read by the bridge from Proxmox. */
  async desktopSnapshots(desktopId: string): Promise<Result<DesktopSnapshotList>> {
    const answer = await this.ask({ op: 'desktop_snapshots', desktopId });
    if (!answer.ok) return answer;
    if (!answer.value.snapshots) return fail('SITE_UNAVAILABLE', 'The on-prem bridge sent no snapshots');
    return ok(answer.value.snapshots);
  }

  /** What the site really has: the VMs and connections this control plane made. */
  async inventory(): Promise<Result<Inventory>> {
    const answer = await this.ask({ op: 'inventory' });
    if (!answer.ok) return answer;
    if (!answer.value.inventory) return fail('SITE_UNAVAILABLE', 'The on-prem bridge sent no inventory');
    return ok(answer.value.inventory);
  }

  /**
   * Records orphans (VMs or connections of desktops that no longer exist) and answers
   * those seen for longer than `graceMs`, which the caller then removes. An orphan
   * that disappears by itself is forgotten.
   */
  async noteOrphans(desktopIds: string[], now: number, graceMs: number): Promise<string[]> {
    const seen = new Set(desktopIds);
    for (const row of this.store.rows<{ desktop_id: string }>('SELECT desktop_id FROM orphans')) {
      if (!seen.has(row.desktop_id)) this.store.run('DELETE FROM orphans WHERE desktop_id = ?', row.desktop_id);
    }
    for (const id of desktopIds)
      this.store.run('INSERT INTO orphans (desktop_id, first_seen) VALUES (?, ?) ON CONFLICT DO NOTHING', id, now);
    return this.store
      .rows<{ desktop_id: string }>('SELECT desktop_id FROM orphans WHERE first_seen <= ?', now - graceMs)
      .map((r) => r.desktop_id);
  }

  /**
   * Removes what is left of a desktop that no longer exists (its VM, connection and
   * Guacamole user) with the bridge's ordinary, idempotent delete task. No desktop
   * wants this command, so it skips the DesktopSession check of `dispatch`.
   */
  async removeOrphan(desktopId: string, backend: 'proxmox' | 'selkies' = 'proxmox'): Promise<DispatchOutcome> {
    const ws = this.liveSocket();
    if (!ws) return 'offline';
    const command: Command = {
      id: randomId('c'),
      desktopId,
      kind: 'delete',
      issuedAt: new Date().toISOString(),
      spec: {
        desktopId,
        userId: 'reconcile',
        name: 'orphan',
        plan: 'BASIC',
        cpuCores: 1,
        memoryMb: 512,
        protocol: backend === 'selkies' ? 'webrtc' : 'vnc',
        backend,
      },
    };
    this.deliver(ws, command, true);
    return 'delivered';
  }

  // ---- GPU slots (time-slicing replicas) of this site ----

  /**
   * Books `slots` of one GPU for one run of a desktop (its create, or a start) before the
   * session is launched (the pod is then pinned to that GPU's node). Refuses, with the
   * reason a person can act on, when no single GPU has room; booking the same run again
   * returns the first booking.
   */
  async bookGpu(desktopId: string, runId: string, slots: number): Promise<Result<{ gpuId: string; node: string }>> {
    const bookingId = gpuBookingId(desktopId, runId);
    const state = this.gpuState();
    const siteId = this.siteId();
    if (state.gpus.length === 0) {
      return fail(
        'GPU_CAPACITY',
        `Site '${siteId}' has reported no GPUs (is its bridge connected and does its Kubernetes advertise nvidia.com/gpu?)`,
      );
    }
    if (!isSlotCount(slots)) return fail('GPU_CAPACITY', `A session takes 1, 2, 4 or 8 GPU slots, not ${slots}`);
    let r = allocate(state, { sessionId: bookingId, slots });
    if (!r.ok && r.reason !== 'too_large' && (await this.releaseEndedBookings()) > 0) {
      r = allocate(this.gpuState(), { sessionId: bookingId, slots });
    }
    if (!r.ok) {
      const total = occupancy(this.gpuState()).totals;
      const why =
        r.reason === 'too_large'
          ? `no GPU at site '${siteId}' has ${slots} slots`
          : r.reason === 'fragmented'
            ? `site '${siteId}' has ${r.freeSlots} free GPU slots, but at most ${r.largestFree} on any one GPU and this session needs ${slots} on one`
            : `all GPUs at site '${siteId}' are busy (${total.used} of ${total.slots} slots in use)`;
      return fail('GPU_CAPACITY', `No GPU capacity: ${why}; try again when a session ends`);
    }
    this.saveGpuState(r.state);
    const gpu = r.state.gpus.find((g) => g.id === r.gpuId);
    return ok({ gpuId: r.gpuId, node: gpu?.node ?? 'unknown' });
  }

  /**
   * Before refusing for capacity: a run that ended frees its GPU slots through its desktop's
   * outbox a moment later, so a user who ends a session and launches again at once could be
   * refused by slots already free. Released here: every booking of a DELETED desktop, and a
   * booking of the desktop's current run once that run has ended (STOPPED or FAILED). A
   * booking of another run may belong to a start on its way and stays. Answers how many it
   * released.
   */
  private async releaseEndedBookings(): Promise<number> {
    const ids = Object.keys(this.gpuState().bookings);
    const runs = await Promise.all(
      ids.map((id) =>
        this.env.DESKTOP_SESSION.getByName(bookingOwner(id).desktopId)
          .currentRun()
          .catch(() => undefined),
      ),
    );
    const ended = ids.filter((id, i) => {
      const run = runs[i];
      if (!run) return false;
      const sameRun = run.runId === bookingOwner(id).runId;
      return run.status === 'DELETED' || (sameRun && (run.status === 'STOPPED' || run.status === 'FAILED'));
    });
    let state = this.gpuState();
    for (const id of ended) state = release(state, id).state;
    if (ended.length > 0) this.saveGpuState(state);
    return ended.length;
  }

  /** One run of a desktop ended (stopped, failed, deleted), or its start was refused: that run's slots are free again. Idempotent. */
  async releaseGpu(desktopId: string, runId: string | null): Promise<void> {
    const { state, released } = release(this.gpuState(), gpuBookingId(desktopId, runId));
    if (released) this.saveGpuState(state);
  }

  async gpuOccupancy(): Promise<Occupancy> {
    return occupancy(this.gpuState());
  }

  private setGpuInventory(gpus: { id: string; node: string; slots: number }[]): void {
    const change = setInventory(
      this.gpuState(),
      gpus.map((g) => ({ id: g.id, node: g.node, slots: g.slots })),
    );
    this.saveGpuState(change.state);
    if (change.orphaned.length || change.overcommitted.length) {
      console.warn(
        JSON.stringify({
          msg: 'GPU inventory changed under running sessions',
          siteId: this.siteId(),
          orphaned: change.orphaned,
          overcommitted: change.overcommitted,
        }),
      );
    }
  }

  private gpuState(): GpuSlotState {
    return this.store.get<GpuSlotState>('gpu') ?? emptyState();
  }

  private saveGpuState(state: GpuSlotState): void {
    this.store.put('gpu', state);
  }

  /**
   * This deployment's id at the site, made once and kept here: the bridge marks what it makes with it, and
   * reconciliation removes only what carries it. A hub that lost its storage (a new Durable Object namespace) makes a
   * new id, so nothing made before can ever look like its own orphan.
   */
  deploymentId(): string {
    const kept = this.store.get<string>('deploymentId');
    if (kept) return kept;
    const id = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, '0')).join('');
    this.store.put('deploymentId', id);
    return id;
  }

  /**
   * A Selkies pod of a desktop this hub no longer books for still holds its GPU slots until the pod is gone, so they
   * must not be handed out meanwhile: book them again under that desktop (released by releaseGpu once it is gone).
   */
  async holdGpu(desktopId: string, slots: number): Promise<void> {
    const state = this.gpuState();
    const key = orphanBooking(desktopId);
    if (state.bookings[desktopId] || state.bookings[key] || !isSlotCount(slots)) return;
    const r = allocate(state, { sessionId: key, slots });
    if (r.ok) this.saveGpuState(r.state);
  }

  /** Frees the slots held for orphan pods that are gone (`present`: desktops whose pods still run). */
  async releaseOrphanGpus(present: string[]): Promise<void> {
    const keep = new Set(present.map(orphanBooking));
    let state = this.gpuState();
    const stale = Object.keys(state.bookings).filter((k) => k.startsWith(ORPHAN_PREFIX) && !keep.has(k));
    for (const key of stale) state = release(state, key).state;
    if (stale.length) this.saveGpuState(state);
  }

  async saveReconcileReport(report: ReconcileReport): Promise<void> {
    this.store.put('reconcile', report);
  }

  /** The last report; null without one, or for one of a shape this release does not read. */
  async lastReconcileReport(): Promise<ReconcileReport | null> {
    return ReconcileReportSchema.safeParse(this.store.get('reconcile')).data ?? null;
  }

  async status(): Promise<SiteStatus> {
    const ws = this.liveSocket();
    const att = ws ? (ws.deserializeAttachment() as Attachment) : null;
    const fresh = att !== null && Date.now() - att.lastSeen <= 3 * this.cfg.HEARTBEAT_SECONDS * 1000;
    return {
      siteId: this.siteId(),
      connected: fresh,
      connectedAt: att ? new Date(att.connectedAt).toISOString() : null,
      lastSeenAt: att ? new Date(att.lastSeen).toISOString() : null,
      bridgeVersion: att?.bridgeVersion ?? null,
      inFlight: this.store.scalar<number>('SELECT count(*) FROM commands') ?? 0,
    };
  }

  // ---- internals ----

  /** One request/response exchange with the bridge (it alone holds the site's credentials). */
  private async ask(request: SiteRequest): Promise<Result<Extract<BridgeToEdge, { type: 'response' }>>> {
    const ws = this.liveSocket();
    if (!ws) return fail('SITE_UNAVAILABLE', `The on-prem bridge of site '${this.siteId()}' is offline; try again shortly`);
    const requestId = randomId('r');
    const answer = new Promise<Extract<BridgeToEdge, { type: 'response' }> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), REQUEST_TIMEOUT_MS);
      this.pendingRequests.set(requestId, (frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
    });
    this.send(ws, { type: 'request', requestId, request });
    const frame = await answer;
    this.pendingRequests.delete(requestId);
    if (!frame) return fail('SITE_UNAVAILABLE', 'The on-prem bridge did not answer in time; try again');
    if (!frame.ok && frame.refusal === 'owner_not_connected')
      return fail(
        'OWNER_NOT_CONNECTED',
        'The desktop’s owner is not connected to it right now. A share link joins the owner’s live session (Guacamole shares sessions, not desktops), so it works only while the owner has the desktop open',
      );
    if (!frame.ok && frame.refusal === 'vm_missing')
      return fail('INVALID_STATE', `The desktop has no VM at site '${this.siteId()}' (it is being made, or it is gone)`);
    if (!frame.ok)
      return fail('SITE_UNAVAILABLE', `The on-prem bridge could not ${request.op.replace('_', ' ')}: ${frame.error ?? 'unknown error'}`);
    return ok(frame);
  }

  /** Sends a command under a lease: it stays in `commands` until it completes or fails. */
  private deliver(ws: WebSocket, command: Command, orphan = false): void {
    this.store.run(
      `INSERT INTO commands (id, desktop_id, body, lease_until, orphan) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET lease_until = excluded.lease_until, sends = sends + 1`,
      command.id,
      command.desktopId,
      JSON.stringify(command),
      Date.now() + this.cfg.LEASE_SECONDS * 1000,
      orphan ? 1 : 0,
    );
    this.renewedAt.set(command.id, Date.now());
    this.send(ws, { type: 'command', command });
  }

  private async route(frame: BridgeReport): Promise<void> {
    const siteId = this.siteId();
    const prev = this.desktopChains.get(frame.desktopId) ?? Promise.resolve();
    const next = prev
      .catch(() => {})
      .then(() => this.env.DESKTOP_SESSION.getByName(frame.desktopId).bridgeReport(siteId, frame))
      .then((r) => {
        if (!r.applied)
          console.log(
            JSON.stringify({ msg: 'bridge report ignored', siteId, desktopId: frame.desktopId, type: frame.type, reason: r.reason }),
          );
      });
    this.desktopChains.set(frame.desktopId, next);
    try {
      await next;
    } finally {
      if (this.desktopChains.get(frame.desktopId) === next) this.desktopChains.delete(frame.desktopId);
    }
  }

  /** Viewers the bridge sees count as activity on those desktops (only this site's own are touched). */
  private async reportViewers(desktops: { desktopId: string; viewers: number }[]): Promise<void> {
    const siteId = this.siteId();
    await Promise.all(
      desktops.map(({ desktopId, viewers }) => this.env.DESKTOP_SESSION.getByName(desktopId).recordViewers(siteId, viewers)),
    );
  }

  private async dispatchParked(): Promise<void> {
    const siteId = this.siteId();
    const rows = this.store.rows<{ id: string; body: string }>('SELECT id, body FROM parked ORDER BY parked_at');
    for (const row of rows) {
      const outcome = await this.dispatch({ siteId, command: JSON.parse(row.body) as Command });
      if (outcome !== 'offline') this.store.run('DELETE FROM parked WHERE id = ?', row.id);
    }
  }

  private async linkLost(ws: WebSocket, why: string): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.replaced) return;
    if (this.liveSocket()) return;
    await this.requeueInFlight(why);
  }

  private async requeueInFlight(why: string): Promise<void> {
    // Back to the queue: its backoff and dead-letter rules apply while the site is offline.
    const siteId = this.siteId();
    for (const row of this.inFlight()) {
      const message: JobMessage = { siteId, command: JSON.parse(row.body) as Command };
      await this.env.JOBS.send(message, { contentType: 'json' });
      this.store.run('DELETE FROM commands WHERE id = ?', row.id);
      this.renewedAt.delete(row.id);
    }
    for (const resolve of this.pendingRequests.values())
      resolve({ type: 'response', requestId: '', ok: false, error: 'bridge disconnected' });
    console.log(JSON.stringify({ msg: 'bridge disconnected', siteId, why }));
    await this.recordLink(siteId, false);
  }

  private liveSocket(): WebSocket | null {
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att && !att.replaced && ws.readyState === WebSocket.OPEN) return ws;
    }
    return null;
  }

  private inFlight() {
    return this.store.rows<{ id: string; desktop_id: string; body: string; lease_until: number; orphan: number }>(
      'SELECT id, desktop_id, body, lease_until, orphan FROM commands ORDER BY rowid',
    );
  }

  /** Hands a lapsed or lost command out again, unless its desktop has moved on to another command meanwhile. */
  private async resend(ws: WebSocket, row: { id: string; desktop_id: string; body: string; orphan: number }): Promise<void> {
    if (!row.orphan && !(await this.env.DESKTOP_SESSION.getByName(row.desktop_id).isActiveCommand(row.id))) {
      this.store.run('DELETE FROM commands WHERE id = ?', row.id);
      return;
    }
    this.store.run(
      'UPDATE commands SET lease_until = ?, sends = sends + 1 WHERE id = ?',
      Date.now() + this.cfg.LEASE_SECONDS * 1000,
      row.id,
    );
    this.send(ws, { type: 'command', command: JSON.parse(row.body) as Command });
  }

  private renewLeases(ids: string[], now: number): void {
    const lease = this.cfg.LEASE_SECONDS * 1000;
    for (const id of ids) {
      if (now - (this.renewedAt.get(id) ?? Number.NEGATIVE_INFINITY) < lease / 4) continue;
      this.store.run('UPDATE commands SET lease_until = ? WHERE id = ?', now + lease, id);
      this.renewedAt.set(id, now);
    }
  }

  private send(ws: WebSocket, frame: EdgeToBridge): void {
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // The close handler requeues whatever this frame was part of.
    }
  }

  private setAttachment(ws: WebSocket, patch: Partial<Attachment>): void {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att) ws.serializeAttachment({ ...att, ...patch });
  }

  /**
   * The site is the hub's name (every caller reaches it with getByName). The runtime leaves the
   * name out of an alarm that wakes a fresh instance when the alarm was scheduled before it
   * carried names (Cloudflare changelog, 2026-03-15: "Access Durable Object name via
   * ctx.id.name"), and local workerd after a restart: hubs made before then kept their site id
   * under `siteId`, which is read then; nothing writes it any more.
   */
  private siteId(): string {
    return this.ctx.id.name ?? this.store.get<string>('siteId') ?? 'unknown';
  }

  private async recordLink(siteId: string, connected: boolean): Promise<void> {
    try {
      await withDb(this.cfg, (db) => markSiteLink(db, siteId, connected));
    } catch (err) {
      console.warn(JSON.stringify({ msg: 'could not record site link state', siteId, error: describeDbError(err) }));
    }
  }
}
