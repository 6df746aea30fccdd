/**
 * WarmPool: one shard of a warm pool (issue 13), one Durable Object per (pool, shard),
 * named `<poolId>#<shard>`. It keeps its share of the pool's members and hands them out:
 * a claim takes the longest-ready member atomically (it leaves the table before the
 * desktop is asked, so no two claims see it) and the member's own DesktopSession makes it
 * the claimer's, refusing a second claim. Its alarm is the replenisher: it reads each
 * member's desktop, plans with the pure rules (src/desktop/pool-sizing.ts, pool-plan.ts,
 * pool-shard.ts) and builds, starts, stops or destroys members through their desktops,
 * which the pool may only do to members nobody has claimed.
 */
import { DurableObject } from 'cloudflare:workers';
import type { ClaimedBy } from '../../src/desktop/decide';
import { type PoolMember, type PoolTier, isOutdated, memberBuild, memberToClaim, planReplenish } from '../../src/desktop/pool-plan';
import { observeMember, shardSizing } from '../../src/desktop/pool-shard';
import { type PoolTarget, poolTarget } from '../../src/desktop/pool-sizing';
import type { Bindings } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import { DEFAULT_LAUNCH, type LaunchSpec } from '../../src/lib/launch';
import { newDesktop } from '../../src/lib/new-desktop';
import { fail, ok, type Result } from '../../src/lib/result';
import type { Desktop } from '../../src/schemas/desktop';
import { type Pool, poolActor, poolOwner } from '../../src/schemas/pool';
import type { Template } from '../../src/schemas/template';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';
import type { CreateAdmission } from '../desktop-session/admission';

/** What the directory gives a shard: the pool, the template its members are built from, and which shard it is. */
export interface ShardConfig {
  pool: Pool;
  template: Template;
  shard: number;
}

/** A claim as the create route asks it: the new owner and whose quota it counts against. */
export type PoolClaim = { owner: ClaimedBy; actor: string; admission: CreateAdmission; requestId?: string };

/** What a shard shows of itself; the directory adds the shards up (src/schemas/pool.ts PoolView). */
export interface ShardView {
  target: PoolTarget | null;
  members: (PoolMember & { shard: number })[];
  counters: Counters;
  claimMs: number[];
}

type Counters = { hits: number; warmHits: number; misses: number; replaced: number };
const NO_COUNTS: Counters = { hits: 0, warmHits: 0, misses: 0, replaced: 0 };

/** The replenisher looks again this soon while members are on their way, and this late when all is at rest. */
const BUSY_RECHECK_MS = 2_000;
const IDLE_RECHECK_MS = 30_000;
/** At most this many members of a shard are built at once: a new pool fills the site gradually, not in one burst. */
const BUILDS_AT_ONCE = 10;
/** Claims and misses kept for the demand rule and the view. */
const CLAIMS_KEPT = 500;

const SCHEMA: SchemaStep[] = [
  (sql) => {
    sql.exec('CREATE TABLE members (desktop_id TEXT PRIMARY KEY, tier TEXT NOT NULL, phase TEXT NOT NULL, since INTEGER NOT NULL)');
    sql.exec('CREATE TABLE claims (at INTEGER NOT NULL, outcome TEXT NOT NULL, ms REAL)');
  },
  // 2: what each member was built from (src/desktop/pool-plan.ts memberBuild), so a template edit replaces the older ones.
  (sql) => {
    sql.exec('ALTER TABLE members ADD COLUMN build TEXT');
  },
];

export class WarmPool extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.store.migrate(SCHEMA);
  }

  /** From the directory: the pool as it is now, or null when the pool (or this shard) is gone: its members are destroyed. */
  async configure(config: ShardConfig | null): Promise<void> {
    this.store.put('config', config);
    // Kept after the pool is gone, so its members can still be destroyed as the pool's.
    if (config) this.store.put('poolId', config.pool.id);
    await this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * Takes a ready member for `claim`'s owner: its desktop, or null on a miss (counted for the demand rule when
   * `countMiss`). A member that turns out not to be claimable is set aside, never handed out; a refusal that is
   * the claimer's (their quota) is answered as it is, and the member stays ready for the next.
   */
  async claim(claim: PoolClaim, countMiss: boolean): Promise<Result<Desktop | null>> {
    const started = Date.now();
    const config = this.config();
    if (!config) return ok(null);
    const build = memberBuild(config.template);
    for (;;) {
      // A member built from an older version of the template is never handed out (the replenisher replaces it).
      const m = memberToClaim(this.members().filter((x) => !isOutdated(x, build)));
      if (!m) break;
      this.removeMember(m.desktopId);
      // A desktop that cannot be asked now is not handed out; the replenisher looks at it again.
      const r = await this.env.DESKTOP_SESSION.getByName(m.desktopId)
        .claim({ ...claim, poolId: config.pool.id })
        .catch((err: unknown) => fail<Desktop>('INVALID_STATE', String(err)));
      if (r.ok) {
        this.record(m.tier === 'running' ? 'hit' : 'warm', Date.now() - started);
        await this.wakeWithin(0);
        return ok(r.value);
      }
      if (r.code === 'INVALID_STATE') this.putMember({ ...m, phase: 'moving', since: Date.now() });
      else if (r.code !== 'CONFLICT' && r.code !== 'NOT_FOUND') {
        this.putMember(m);
        return fail(r.code, r.message);
      }
    }
    if (countMiss) this.record('miss', null);
    await this.wakeWithin(0);
    return ok(null);
  }

  async view(): Promise<ShardView> {
    const config = this.config();
    const members = this.members().map((m) => ({ ...m, shard: config?.shard ?? 0 }));
    const claimMs = this.store
      .rows<{ ms: number }>("SELECT ms FROM claims WHERE outcome IN ('hit', 'warm') ORDER BY at DESC LIMIT 200")
      .map((r) => r.ms);
    return { target: this.store.get<PoolTarget>('target'), members, counters: this.counters(), claimMs };
  }

  // ---- the replenisher ----

  override async alarm(): Promise<void> {
    await this.observe();
    const config = this.config();
    if (!config) {
      // The pool (or this shard) is gone: its members go with it, until none is left.
      await Promise.all(this.members().map((m) => this.destroy(m)));
      if (this.members().length > 0) await this.wakeWithin(BUSY_RECHECK_MS);
      return;
    }
    const busy = await this.replenish(config);
    await this.wakeWithin(busy ? BUSY_RECHECK_MS : IDLE_RECHECK_MS);
  }

  /** Reads every member's desktop and moves it to the phase that shows (src/desktop/pool-shard.ts). */
  private async observe(): Promise<void> {
    await Promise.all(
      this.members().map(async (m) => {
        const reading = await this.env.DESKTOP_SESSION.getByName(m.desktopId)
          .poolReading()
          .catch(() => undefined);
        if (reading === undefined) return;
        // A claim may have taken it while the reading was under way.
        const now = this.members().find((x) => x.desktopId === m.desktopId);
        if (!now) return;
        const next = observeMember(now, reading, Date.now());
        if (next === 'gone') this.removeMember(m.desktopId);
        else if (next !== now) this.putMember(next);
      }),
    );
  }

  /** One round of the plan; answers whether anything is on its way (so the next look comes soon). */
  private async replenish({ pool, template, shard }: ShardConfig): Promise<boolean> {
    const now = Date.now();
    const sizing = shardSizing(pool.sizing, shard, pool.shards);
    const since = now - (sizing.demand?.windowMinutes ?? 0) * 60_000;
    const misses = this.store.rows<{ at: number }>("SELECT at FROM claims WHERE outcome = 'miss' AND at > ?", since).map((r) => r.at);
    const retired = template.retiredAt !== null;
    const target = retired
      ? { running: 0, stopped: 0, reasons: [`template ${template.id} retired: no new launches`] }
      : poolTarget(sizing, { misses }, now);
    if (pool.paused) target.reasons.push('paused: nothing is built, started or stopped');
    this.store.put('target', target);
    // Members made from an older version of the template (or one now retired) go, whatever else the plan says.
    const build = memberBuild(template);
    const all = this.members();
    const stale = (m: PoolMember) => retired || isOutdated(m, build);
    // One still being built is destroyed once it is ready; its replacement is planned now.
    const outdated = all.filter((m) => stale(m) && m.phase !== 'building');
    const members = all.filter((m) => !stale(m));
    const building = all.filter((m) => m.phase === 'building').length;
    const plan = planReplenish(target, members, BUILDS_AT_ONCE - building);
    // A paused pool still sheds what went bad or is outdated; it builds and moves nothing.
    const failed = new Set(members.filter((m) => m.phase === 'failed').map((m) => m.desktopId));
    const destroy = members.filter((m) => plan.destroy.includes(m.desktopId) && (!pool.paused || failed.has(m.desktopId)));
    const work: Promise<unknown>[] = [
      ...destroy.map((m) => this.destroy(m, failed.has(m.desktopId))),
      ...outdated.map((m) => this.destroy(m)),
    ];
    if (!pool.paused && !retired) {
      for (const id of plan.start) work.push(this.move(id, 'running', 'start'));
      for (const id of plan.stop) work.push(this.move(id, 'stopped', 'stop'));
      for (let i = 0; i < plan.create.running; i++) work.push(this.build(pool, template, 'running'));
      for (let i = 0; i < plan.create.stopped; i++) work.push(this.build(pool, template, 'stopped'));
    }
    await Promise.all(work);
    return work.length > 0 || this.members().some((m) => m.phase !== 'ready');
  }

  /** A new member, recorded before its desktop is asked for, so a reset in between leaves nothing untracked. */
  private async build(pool: Pool, template: Template, tier: PoolTier): Promise<void> {
    const id = randomId('dk');
    this.putMember({ desktopId: id, tier, phase: 'building', since: Date.now(), build: memberBuild(template) });
    const desktop = newDesktop({
      id,
      userId: poolOwner(pool.id),
      name: template.name,
      plan: template.defaultPlan,
      protocol: template.protocol,
      siteId: pool.siteId,
      createdBy: poolActor(pool.id),
      idleTimeoutMinutes: template.idleTimeoutMinutes,
      maxSessionMinutes: template.maxSessionMinutes,
      templateId: template.id,
      backend: template.backend,
      gpuSlots: template.gpuSlots,
    });
    const launch: LaunchSpec = { ...DEFAULT_LAUNCH, vmTemplate: template.vmTemplate, image: template.image, storageGb: template.storageGb };
    const admission = { unlimited: true, service: null };
    const r = await this.env.DESKTOP_SESSION.getByName(id)
      .create({ desktop, actor: poolActor(pool.id), launch, admission, pool: pool.id })
      .catch((err: unknown) => fail('INTERNAL_ERROR', String(err)));
    // Refused (no GPU free, say): nothing was made; the next round tries again.
    if (!r.ok) this.removeMember(id);
  }

  private async move(desktopId: string, tier: PoolTier, action: 'start' | 'stop'): Promise<void> {
    const m = this.members().find((x) => x.desktopId === desktopId);
    if (!m) return;
    this.putMember({ ...m, tier, phase: 'moving', since: Date.now() });
    const r = await this.poolAction(desktopId, action);
    if (!r.ok) this.putMember(m);
  }

  private async destroy(m: PoolMember, wentBad = false): Promise<void> {
    const r = await this.poolAction(m.desktopId, 'delete');
    // Gone already, or claimed by someone since: either way no longer this pool's.
    if (r.ok || r.code === 'NOT_FOUND' || r.code === 'CONFLICT') {
      this.removeMember(m.desktopId);
      if (wentBad) this.count('replaced');
    }
  }

  private poolAction(desktopId: string, action: 'start' | 'stop' | 'delete'): Promise<Result<Desktop>> {
    const poolId = this.store.get<string>('poolId') ?? '';
    return this.env.DESKTOP_SESSION.getByName(desktopId)
      .poolAction(poolId, action)
      .catch((err: unknown) => fail('INTERNAL_ERROR', String(err)));
  }

  // ---- storage ----

  private config(): ShardConfig | null {
    return this.store.get<ShardConfig>('config');
  }

  private members(): PoolMember[] {
    return this.store
      .rows<{ desktop_id: string; tier: string; phase: string; since: number; build: string | null }>(
        'SELECT * FROM members ORDER BY since',
      )
      .map((r) => ({
        desktopId: r.desktop_id,
        tier: r.tier as PoolTier,
        phase: r.phase as PoolMember['phase'],
        since: r.since,
        build: r.build,
      }));
  }

  private putMember(m: PoolMember): void {
    this.store.run(
      'INSERT OR REPLACE INTO members (desktop_id, tier, phase, since, build) VALUES (?, ?, ?, ?, ?)',
      m.desktopId,
      m.tier,
      m.phase,
      m.since,
      m.build ?? null,
    );
  }

  private removeMember(desktopId: string): void {
    this.store.run('DELETE FROM members WHERE desktop_id = ?', desktopId);
  }

  private record(outcome: 'hit' | 'warm' | 'miss', ms: number | null): void {
    this.store.run('INSERT INTO claims (at, outcome, ms) VALUES (?, ?, ?)', Date.now(), outcome, ms);
    this.store.run('DELETE FROM claims WHERE rowid <= (SELECT MAX(rowid) FROM claims) - ?', CLAIMS_KEPT);
    this.count(outcome === 'hit' ? 'hits' : outcome === 'warm' ? 'warmHits' : 'misses');
  }

  private counters(): Counters {
    return { ...NO_COUNTS, ...this.store.get<Counters>('counters') };
  }

  private count(what: keyof Counters): void {
    const c = this.counters();
    this.store.put('counters', { ...c, [what]: c[what] + 1 });
  }

  private async wakeWithin(ms: number): Promise<void> {
    const at = Date.now() + ms;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }
}
