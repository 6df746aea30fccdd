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
import { withDb } from '../../src/db/client';
import { ownedDesktopEntries } from '../../src/db/queries';
import { type Bindings, config } from '../../src/env';
import { type IndexEntry, type IndexPage, type IndexQuery, ownerOfIndex } from '../../src/lib/owner-index';
import { fail, ok, type Result } from '../../src/lib/result';

/** After a seed that found Postgres unreachable, lists do not try again for this long. */
const SEED_RETRY_MS = 60_000;

export class DesktopIndex extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  private seedRetryAt = 0;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS desktops (
      id TEXT PRIMARY KEY, user_id TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL,
      created_at TEXT NOT NULL, revision INTEGER NOT NULL)`);
    this.sql.exec('CREATE INDEX IF NOT EXISTS desktops_newest ON desktops (created_at DESC, id DESC)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
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
    const total = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM desktops ${cond}`, ...args).one().n;
    const ids = this.sql
      .exec<{ id: string }>(
        `SELECT id FROM desktops ${cond} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
        ...args,
        q.limit,
        q.offset,
      )
      .toArray()
      .map((r) => r.id);
    return ok({ ids, total });
  }

  private upsert(e: IndexEntry): void {
    this.sql.exec(
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
    if (this.sql.exec(`SELECT 1 FROM settings WHERE key = 'seeded'`).toArray().length > 0) return ok(true);
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
    this.ctx.storage.transactionSync(() => {
      for (const e of entries) this.upsert(e);
      this.sql.exec(`INSERT INTO settings (key, value) VALUES ('seeded', ?) ON CONFLICT(key) DO NOTHING`, new Date().toISOString());
    });
    return ok(true);
  }
}
