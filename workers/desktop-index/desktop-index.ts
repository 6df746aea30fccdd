/**
 * DesktopIndex: one Durable Object per owner (`user:<userId>`, `service:<sub>`; see
 * src/lib/owner-index.ts) listing that owner's desktops with their current status, plan
 * and creation time. Each DesktopSession sends its entry here when its status changes,
 * and answers no read showing the new status before this index has it, so a list read
 * from here agrees with GET /{id}/status the moment that shows a change.
 *
 * Desktops older than the index are taken from the Postgres copy once, on the first list
 * that finds Postgres reachable.
 */
import { DurableObject } from 'cloudflare:workers';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';
import { withDb } from '../../src/db/client';
import { ownedDesktopEntries } from '../../src/db/queries';
import { type Bindings, config } from '../../src/env';
import { type IndexEntry, type IndexPage, type IndexQuery, ownerOfIndex } from '../../src/lib/owner-index';
import { fail, ok, type Result } from '../../src/lib/result';

/** After a seed that found Postgres unreachable, lists do not try again for this long. */
const SEED_RETRY_MS = 60_000;

const SCHEMA: SchemaStep[] = [
  // 1: indexes made before versions have these already, and kept `seeded` in `settings`: it moves to meta.
  (sql, store) => {
    sql.exec(`CREATE TABLE IF NOT EXISTS desktops (
      id TEXT PRIMARY KEY, user_id TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL,
      created_at TEXT NOT NULL, revision INTEGER NOT NULL)`);
    sql.exec('CREATE INDEX IF NOT EXISTS desktops_newest ON desktops (created_at DESC, id DESC)');
    if (!store.hasTable('settings')) return;
    for (const row of store.rows<{ key: string; value: string }>('SELECT key, value FROM settings')) store.put(row.key, row.value);
    sql.exec('DROP TABLE settings');
  },
];

export class DesktopIndex extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;
  private seedRetryAt = 0;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.store.migrate(SCHEMA);
  }

  /** Records a desktop as it is now; an entry older than the one held (a late retry) changes nothing. */
  async put(entry: IndexEntry): Promise<void> {
    this.upsert(entry);
  }

  async list(q: IndexQuery): Promise<Result<IndexPage>> {
    const seeded = await this.seedOnce();
    if (!seeded.ok) return seeded;
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.userId !== undefined) {
      where.push('user_id = ?');
      args.push(q.userId);
    }
    if (q.plan) {
      where.push('plan = ?');
      args.push(q.plan);
    }
    if (q.status) {
      where.push('status = ?');
      args.push(q.status);
    } else if (!q.includeDeleted) where.push("status <> 'DELETED'");
    const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = this.store.scalar<number>(`SELECT count(*) FROM desktops ${cond}`, ...args) ?? 0;
    const ids = this.store
      .rows<{ id: string }>(
        `SELECT id FROM desktops ${cond} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
        ...args,
        q.limit,
        q.offset,
      )
      .map((r) => r.id);
    return ok({ ids, total });
  }

  private upsert(e: IndexEntry): void {
    this.store.run(
      `INSERT INTO desktops (id, user_id, plan, status, created_at, revision) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, plan = excluded.plan, status = excluded.status,
         created_at = excluded.created_at, revision = excluded.revision
       WHERE excluded.revision > desktops.revision`,
      e.id,
      e.userId,
      e.plan,
      e.status,
      e.createdAt,
      e.revision,
    );
  }

  /**
   * The owner's desktops from before this index existed, read from Postgres once. Entries
   * sent by the desktops themselves are never newer in Postgres (the copy only moves
   * forward, by the same revision), so the order of the two does not matter.
   */
  private async seedOnce(): Promise<Result<true>> {
    if (this.store.get<string>('seeded') !== null) return ok(true);
    const owner = ownerOfIndex(this.ctx.id.name ?? '');
    if (!owner) return fail('INTERNAL_ERROR', `desktop index with an unexpected name: ${this.ctx.id.name}`);
    // Lists must work while Postgres is down, and every desktop created or changed since this
    // index existed is here already: without Postgres the list is answered from what is here,
    // and the seed is tried again a minute later rather than slowing every list.
    if (Date.now() < this.seedRetryAt) return ok(true);
    let entries: IndexEntry[];
    try {
      entries = await withDb(config(this.env), (db) => ownedDesktopEntries(db, owner));
    } catch (err) {
      this.seedRetryAt = Date.now() + SEED_RETRY_MS;
      console.warn(JSON.stringify({ msg: 'desktop index not seeded from Postgres yet', index: this.ctx.id.name, error: String(err) }));
      return ok(true);
    }
    this.store.transaction(() => {
      for (const e of entries) this.upsert(e);
      this.store.put('seeded', new Date().toISOString());
    });
    return ok(true);
  }
}
