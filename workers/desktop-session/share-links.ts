/**
 * The desktop's share links in its Durable Object's storage: only a hash of each link's
 * secret is kept, so what storage holds opens nothing. The rules are src/desktop/share-links.ts.
 */
import type { StoredShareLink } from '../../src/desktop/share-links';
import { linkState } from '../../src/desktop/share-links';
import type { ShareLink } from '../../src/schemas/share-link';
import type { ObjectStorage } from '../shared/object-storage';

type Row = {
  id: string;
  secret_hash: string;
  mode: string;
  created_at: number;
  created_by: string;
  expires_at: number;
  max_uses: number;
  uses: number;
  last_used_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
};

export const SHARE_LINKS_SCHEMA_STEP = (sql: SqlStorage) => {
  sql.exec(`CREATE TABLE IF NOT EXISTS share_links (
    id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, mode TEXT NOT NULL, created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL, expires_at INTEGER NOT NULL, max_uses INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER, revoked_at INTEGER, revoked_by TEXT)`);
};

const fromRow = (r: Row): StoredShareLink & { secretHash: string } => ({
  id: r.id,
  secretHash: r.secret_hash,
  mode: r.mode === 'control' ? 'control' : 'view',
  createdAt: r.created_at,
  createdBy: r.created_by,
  expiresAt: r.expires_at,
  maxUses: r.max_uses,
  uses: r.uses,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toApi(desktopId: string, link: StoredShareLink, now: number): ShareLink {
  return {
    id: link.id,
    desktopId,
    mode: link.mode,
    state: linkState(link, now),
    createdAt: new Date(link.createdAt).toISOString(),
    createdBy: link.createdBy,
    expiresAt: new Date(link.expiresAt).toISOString(),
    maxUses: link.maxUses,
    uses: link.uses,
    lastUsedAt: iso(link.lastUsedAt),
    revokedAt: iso(link.revokedAt),
    revokedBy: link.revokedBy,
  };
}

export class ShareLinkStore {
  constructor(private readonly store: ObjectStorage) {}

  insert(link: StoredShareLink, secretHash: string): void {
    this.store.run(
      `INSERT INTO share_links (id, secret_hash, mode, created_at, created_by, expires_at, max_uses)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      link.id,
      secretHash,
      link.mode,
      link.createdAt,
      link.createdBy,
      link.expiresAt,
      link.maxUses,
    );
  }

  /** Newest first. */
  all(): (StoredShareLink & { secretHash: string })[] {
    return this.store.rows<Row>('SELECT * FROM share_links ORDER BY created_at DESC, id').map(fromRow);
  }

  get(id: string): (StoredShareLink & { secretHash: string }) | null {
    const row = this.store.first<Row>('SELECT * FROM share_links WHERE id = ?', id);
    return row ? fromRow(row) : null;
  }

  revoke(id: string, by: string, at: number): void {
    this.store.run('UPDATE share_links SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL', at, by, id);
  }

  /** Spends one use (before the bridge is asked, so two guests cannot both take the last one). */
  spend(id: string, at: number): void {
    this.store.run('UPDATE share_links SET uses = uses + 1, last_used_at = ? WHERE id = ?', at, id);
  }

  /** Gives back a use the bridge could not honour (the owner not connected, the site offline). */
  giveBack(id: string): void {
    this.store.run('UPDATE share_links SET uses = MAX(0, uses - 1) WHERE id = ?', id);
  }
}
