/**
 * UserAccount: one Durable Object per user, holding the quota and the user's active
 * (not DELETED) desktops. A create reserves a slot here before its DesktopSession
 * exists, and the DesktopSession releases it when it reaches DELETED. Because one
 * object serialises one user's requests, two concurrent creates can never both take
 * the last slot, and the check needs no database round trip (creates keep working
 * while Postgres is unreachable). Postgres gets a copy of the limit for queries.
 */
import { DurableObject } from 'cloudflare:workers';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';
import type { Bindings } from '../../src/env';
import { desktopStatuses } from '../../src/lib/desktop-statuses';
import { DEFAULT_MAX_DESKTOPS } from '../../src/lib/quota';
import { fail, ok, type Result } from '../../src/lib/result';
import type { Quota } from '../../src/schemas/quota';

/** A create takes milliseconds from its reservation to its desktop's Durable Object. */
const ABANDONED_RESERVATION_MS = 5 * 60_000;

const SCHEMA: SchemaStep[] = [
  // 1: accounts made before versions have this table already, and kept their limit in `settings`: it moves to meta.
  (sql, store) => {
    sql.exec('CREATE TABLE IF NOT EXISTS active_desktops (desktop_id TEXT PRIMARY KEY, reserved_at INTEGER NOT NULL)');
    if (!store.hasTable('settings')) return;
    for (const row of store.rows<{ key: string; value: number }>('SELECT key, value FROM settings')) store.put(row.key, row.value);
    sql.exec('DROP TABLE settings');
  },
];

export class UserAccount extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.store.migrate(SCHEMA);
  }

  /**
   * Takes a slot for `desktopId`, unless the user is at their limit (admins acting for themselves
   * have none). A service's own account (src/auth/tenancy.ts) passes its configured `limit`.
   */
  async reserve(userId: string, desktopId: string, unlimited: boolean, limit?: number): Promise<Result<Quota>> {
    const quota = () => {
      const q = this.quotaNow();
      return limit === undefined ? q : { ...q, maxDesktops: limit, custom: true };
    };
    // A create resumed under its Idempotency-Key holds its slot already.
    if (this.store.first('SELECT 1 AS held FROM active_desktops WHERE desktop_id = ?', desktopId)) return ok(quota());
    const full = (q: Quota) => !unlimited && q.active >= q.maxDesktops;
    if (full(quota())) await this.releaseEnded();
    // Checked again after that await: this check and the insert below run as one step.
    const q = quota();
    if (full(q)) {
      const plural = q.maxDesktops === 1 ? '' : 's';
      const who = limit === undefined ? `user ${userId}` : userId;
      const remedy =
        limit === undefined ? 'delete one or ask an admin to raise the limit' : 'delete one (SERVICE_NAMESPACES sets the limit)';
      return fail(
        'QUOTA_EXCEEDED',
        `Quota exceeded: ${who} may have at most ${q.maxDesktops} active desktop${plural} (has ${q.active}); ${remedy}`,
      );
    }
    this.store.run('INSERT INTO active_desktops (desktop_id, reserved_at) VALUES (?, ?) ON CONFLICT DO NOTHING', desktopId, Date.now());
    return ok(this.quotaNow());
  }

  /**
   * Before refusing at the limit: a desktop that reached DELETED frees its slot through its
   * outbox a moment later, so a user who deletes and creates at once could be refused by a
   * slot already free. Those are released here, and so is a reservation whose desktop never
   * came to exist (its create died between the two steps). A reservation younger than that
   * belongs to a create still on its way and stays.
   */
  private async releaseEnded(): Promise<void> {
    const rows = this.store.rows<{ desktop_id: string; reserved_at: number }>('SELECT desktop_id, reserved_at FROM active_desktops');
    const views = await desktopStatuses(
      this.env,
      rows.map((r) => r.desktop_id),
    );
    rows.forEach((r, i) => {
      const view = views[i];
      const abandoned = view === null && Date.now() - r.reserved_at > ABANDONED_RESERVATION_MS;
      if (view?.status === 'DELETED' || abandoned) this.store.run('DELETE FROM active_desktops WHERE desktop_id = ?', r.desktop_id);
    });
  }

  /** The desktop is DELETED (or its creation was abandoned): its slot is free again. Idempotent. */
  async release(desktopId: string): Promise<void> {
    this.store.run('DELETE FROM active_desktops WHERE desktop_id = ?', desktopId);
  }

  /** The user's active desktops, newest first: what their desktop list is read from. */
  async activeDesktops(): Promise<string[]> {
    return this.store
      .rows<{ desktop_id: string }>('SELECT desktop_id FROM active_desktops ORDER BY reserved_at DESC, desktop_id')
      .map((r) => r.desktop_id);
  }

  async setLimit(maxDesktops: number): Promise<Quota> {
    this.store.put('maxDesktops', maxDesktops);
    return this.quotaNow();
  }

  async quota(): Promise<Quota> {
    return this.quotaNow();
  }

  private quotaNow(): Quota {
    const limit = this.store.get<number>('maxDesktops');
    const active = this.store.scalar<number>('SELECT count(*) FROM active_desktops') ?? 0;
    return { maxDesktops: limit ?? DEFAULT_MAX_DESKTOPS, custom: limit !== null, active };
  }
}
