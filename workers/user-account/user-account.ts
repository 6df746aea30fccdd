/**
 * UserAccount: one Durable Object per user, holding the quota and the user's active
 * (not DELETED) desktops. A create reserves a slot here before its DesktopSession
 * exists, and the DesktopSession releases it when it reaches DELETED. Because one
 * object serialises one user's requests, two concurrent creates can never both take
 * the last slot, and the check needs no database round trip (creates keep working
 * while Postgres is unreachable). Postgres gets a copy of the limit for queries.
 *
 * It also counts the user's snapshots (SNAPSHOT_MAX_PER_USER) the same way: a snapshot takes a slot before its
 * command goes out, a failed take or a delete gives it back, and listing a desktop's snapshots replaces that
 * desktop's slots with what Proxmox really has, so a snapshot removed outside the control plane frees its slot.
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
/** A snapshot slot this young may belong to a take still running, which a listing cannot show yet. */
const SNAPSHOT_IN_FLIGHT_MS = 15 * 60_000;

const SCHEMA: SchemaStep[] = [
  // 1: accounts made before versions have this table already, and kept their limit in `settings`: it moves to meta.
  (sql, store) => {
    sql.exec('CREATE TABLE IF NOT EXISTS active_desktops (desktop_id TEXT PRIMARY KEY, reserved_at INTEGER NOT NULL)');
    if (!store.hasTable('settings')) return;
    for (const row of store.rows<{ key: string; value: number }>('SELECT key, value FROM settings')) store.put(row.key, row.value);
    sql.exec('DROP TABLE settings');
  },
  // 2: snapshots of the user's desktops, for the snapshot quota.
  (sql) => {
    sql.exec(`CREATE TABLE IF NOT EXISTS snapshots (
      desktop_id TEXT NOT NULL, name TEXT NOT NULL, reserved_at INTEGER NOT NULL, PRIMARY KEY (desktop_id, name))`);
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

  /** The desktop is DELETED (or its creation was abandoned): its slot is free again, and its snapshots went with its VM. Idempotent. */
  async release(desktopId: string): Promise<void> {
    this.store.run('DELETE FROM active_desktops WHERE desktop_id = ?', desktopId);
    this.store.run('DELETE FROM snapshots WHERE desktop_id = ?', desktopId);
  }

  /**
   * Takes a snapshot slot, unless the user has `limit` snapshots already. `fresh` is false when the slot was held
   * already (a take asked again): a refusal after it must not give back what an earlier take holds.
   */
  async reserveSnapshot(desktopId: string, name: string, limit: number): Promise<Result<{ snapshots: number; fresh: boolean }>> {
    const count = () => this.store.scalar<number>('SELECT count(*) FROM snapshots') ?? 0;
    if (this.store.first('SELECT 1 AS held FROM snapshots WHERE desktop_id = ? AND name = ?', desktopId, name)) {
      return ok({ snapshots: count(), fresh: false });
    }
    const held = count();
    if (held >= limit) {
      return fail(
        'SNAPSHOT_QUOTA',
        `Snapshot quota reached: a user may keep at most ${limit} snapshot${limit === 1 ? '' : 's'} (has ${held}); delete one first`,
      );
    }
    this.store.run('INSERT INTO snapshots (desktop_id, name, reserved_at) VALUES (?, ?, ?)', desktopId, name, Date.now());
    return ok({ snapshots: held + 1, fresh: true });
  }

  async releaseSnapshot(desktopId: string, name: string): Promise<void> {
    this.store.run('DELETE FROM snapshots WHERE desktop_id = ? AND name = ?', desktopId, name);
  }

  /**
   * What Proxmox lists for the desktop replaces what was counted for it, but for slots taken moments ago: their
   * snapshot may still be being taken.
   */
  async syncSnapshots(desktopId: string, names: string[]): Promise<void> {
    const now = Date.now();
    this.store.transaction(() => {
      this.store.run('DELETE FROM snapshots WHERE desktop_id = ? AND reserved_at < ?', desktopId, now - SNAPSHOT_IN_FLIGHT_MS);
      for (const name of names) {
        this.store.run('INSERT OR IGNORE INTO snapshots (desktop_id, name, reserved_at) VALUES (?, ?, ?)', desktopId, name, now);
      }
    });
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
