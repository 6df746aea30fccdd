/**
 * PoolDirectory: the one Durable Object (named `all`) that knows every warm pool, so an
 * admin can list them and a create can find the pool of its template and site. It keeps
 * each pool's definition with the template its members are built from, and hands both
 * to the pool's shards (./warm-pool.ts); a shard no longer needed, or a removed pool,
 * is told so and destroys its members. Creates read it through a short per-isolate cache
 * (src/lib/pool-claim.ts), so it is not on the hot path.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Bindings } from '../../src/env';
import { fail, ok, type Result } from '../../src/lib/result';
import { type Pool, poolShardName } from '../../src/schemas/pool';
import type { Template } from '../../src/schemas/template';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';
import type { ShardView } from './warm-pool';

const SCHEMA: SchemaStep[] = [
  (sql) => {
    sql.exec(`CREATE TABLE pools (id TEXT PRIMARY KEY, template_id TEXT NOT NULL, site_id TEXT NOT NULL, body TEXT NOT NULL,
      UNIQUE (template_id, site_id))`);
  },
];

type Stored = { pool: Pool; template: Template };

export class PoolDirectory extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.store.migrate(SCHEMA);
  }

  /** Creates or replaces a pool; one pool per template and site. Its shards hear of it before this answers. */
  async put(pool: Pool, template: Template): Promise<Result<Pool>> {
    const other = this.store.first<{ id: string }>(
      'SELECT id FROM pools WHERE template_id = ? AND site_id = ? AND id != ?',
      pool.templateId,
      pool.siteId,
      pool.id,
    );
    if (other) return fail('CONFLICT', `Pool ${other.id} already serves template ${pool.templateId} at site ${pool.siteId}`);
    const before = this.read(pool.id);
    const kept = before ? { ...pool, createdAt: before.pool.createdAt } : pool;
    this.store.run(
      'INSERT OR REPLACE INTO pools (id, template_id, site_id, body) VALUES (?, ?, ?, ?)',
      pool.id,
      pool.templateId,
      pool.siteId,
      JSON.stringify({ pool: kept, template } satisfies Stored),
    );
    await this.tellShards(kept.id, { pool: kept, template }, before?.pool.shards ?? 0);
    return ok(kept);
  }

  /**
   * A template was edited or retired: its pools build from it as it is now, and their shards replace the members made
   * from the older version (or destroy them all, for a retired template). Answers the pools told.
   */
  async templateChanged(template: Template): Promise<string[]> {
    const rows = this.store.rows<{ body: string }>('SELECT body FROM pools WHERE template_id = ?', template.id);
    const told: string[] = [];
    for (const row of rows) {
      const { pool } = JSON.parse(row.body) as Stored;
      this.store.run('UPDATE pools SET body = ? WHERE id = ?', JSON.stringify({ pool, template } satisfies Stored), pool.id);
      await this.tellShards(pool.id, { pool, template }, pool.shards);
      told.push(pool.id);
    }
    return told;
  }

  async remove(poolId: string): Promise<Result<Pool>> {
    const before = this.read(poolId);
    if (!before) return fail('NOT_FOUND', `No pool ${poolId}`);
    this.store.run('DELETE FROM pools WHERE id = ?', poolId);
    await this.tellShards(poolId, null, before.pool.shards);
    return ok(before.pool);
  }

  async get(poolId: string): Promise<Pool | null> {
    return this.read(poolId)?.pool ?? null;
  }

  async list(): Promise<Pool[]> {
    return this.store.rows<{ body: string }>('SELECT body FROM pools ORDER BY id').map((r) => (JSON.parse(r.body) as Stored).pool);
  }

  /** The pool a create of `templateId` at `siteId` is answered from, if any. */
  async forTemplate(templateId: string, siteId: string): Promise<Pool | null> {
    const row = this.store.first<{ body: string }>('SELECT body FROM pools WHERE template_id = ? AND site_id = ?', templateId, siteId);
    return row ? (JSON.parse(row.body) as Stored).pool : null;
  }

  /** Every shard's view of a pool, for the admin API. */
  async shardViews(poolId: string): Promise<ShardView[] | null> {
    const stored = this.read(poolId);
    if (!stored) return null;
    const shards = Array.from({ length: stored.pool.shards }, (_, i) => this.env.WARM_POOL.getByName(poolShardName(poolId, i)));
    return Promise.all(shards.map((s) => s.view()));
  }

  private read(poolId: string): Stored | null {
    const row = this.store.first<{ body: string }>('SELECT body FROM pools WHERE id = ?', poolId);
    return row ? (JSON.parse(row.body) as Stored) : null;
  }

  /** Each shard of the pool gets its part; shards beyond the pool's count (or all, for a removed pool) get null. */
  private async tellShards(poolId: string, stored: Stored | null, shardsBefore: number): Promise<void> {
    const now = stored?.pool.shards ?? 0;
    const calls: Promise<void>[] = [];
    for (let i = 0; i < Math.max(now, shardsBefore); i++) {
      const config = stored && i < now ? { ...stored, shard: i } : null;
      calls.push(this.env.WARM_POOL.getByName(poolShardName(poolId, i)).configure(config));
    }
    await Promise.all(calls);
  }
}
