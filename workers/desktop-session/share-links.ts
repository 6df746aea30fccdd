/**
 * The desktop's share links in its Durable Object's storage, and what the object does with
 * them: only a hash of each link's secret is kept, so what storage holds opens nothing. The
 * rules are src/desktop/share-links.ts.
 */
import type { StoredShareLink } from '../../src/desktop/share-links';
import { expiryOf, linkState, refuseRedemption, sharingUnsupported } from '../../src/desktop/share-links';
import { randomId, randomToken, sha256Hex, timingSafeEqualHex } from '../../src/lib/ids';
import { fail, ok, type Result } from '../../src/lib/result';
import type { Desktop } from '../../src/schemas/desktop';
import {
  type CreatedShareLink,
  type CreateShareLink,
  SHARE_LINK_LIMITS,
  type ShareLink,
  type ShareMode,
} from '../../src/schemas/share-link';
import type { ObjectStorage } from '../shared/object-storage';

/** What a redeemed link lets the route ask the bridge for. */
export type Redemption = { siteId: string; connectionId: string; mode: ShareMode; desktopName: string };

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

  /** A new link for `desktop`; its secret is in `url` only, this once. `origin` is the edge's public origin. */
  async create(desktop: Desktop | undefined, input: CreateShareLink, actor: string, origin: string): Promise<Result<CreatedShareLink>> {
    const secret = randomToken();
    const hashed = await sha256Hex(secret);
    if (!desktop) return fail('NOT_FOUND', 'Desktop not found');
    const unsupported = sharingUnsupported(desktop.backend);
    if (unsupported) return fail(unsupported.code, unsupported.message);
    if (desktop.status === 'DELETED' || desktop.status === 'FAILED')
      return fail('INVALID_STATE', `Cannot share desktop ${desktop.id}: it is ${desktop.status}`);
    const now = Date.now();
    const expiry = expiryOf(input, now);
    if ('code' in expiry) return fail(expiry.code, expiry.message);
    const open = this.all().filter((l) => linkState(l, now) === 'active').length;
    if (open >= SHARE_LINK_LIMITS.maxOpenPerDesktop)
      return fail('CONFLICT', `This desktop already has ${open} open share links; revoke one first`);
    const link: StoredShareLink = {
      id: randomId('sl'),
      mode: input.mode,
      createdAt: now,
      createdBy: actor,
      expiresAt: expiry.expiresAt,
      maxUses: input.maxUses ?? 1,
      uses: 0,
      lastUsedAt: null,
      revokedAt: null,
      revokedBy: null,
    };
    this.insert(link, hashed);
    const url = `${origin}/api/v1/share#${desktop.id}.${link.id}.${secret}`;
    return ok({ ...toApi(desktop.id, link, now), url });
  }

  list(desktop: Desktop | undefined): ShareLink[] {
    const now = Date.now();
    return this.all().map((l) => toApi(desktop?.id ?? '', l, now));
  }

  revokeFor(desktop: Desktop | undefined, linkId: string, actor: string): Result<ShareLink> {
    const link = desktop ? this.get(linkId) : null;
    if (!desktop || !link) return fail('NOT_FOUND', 'Share link not found');
    this.revoke(linkId, actor, Date.now());
    return ok(toApi(desktop.id, this.get(linkId) ?? link, Date.now()));
  }

  /** A guest opens a link: checks it and spends a use; the route asks the bridge, and gives the use back if it cannot. */
  async redeem(desktop: Desktop | undefined, linkId: string, secret: string): Promise<Result<Redemption>> {
    const hashed = await sha256Hex(secret);
    const link = desktop ? this.get(linkId) : null;
    if (!desktop || !link || !timingSafeEqualHex(link.secretHash, hashed)) return fail('NOT_FOUND', 'Share link not found');
    const now = Date.now();
    const refused = refuseRedemption(link, desktop.status, now);
    if (refused) return fail(refused.code, refused.message);
    if (!desktop.connectionId) return fail('INVALID_STATE', 'The shared desktop has no Guacamole connection yet; try again shortly');
    this.spend(linkId, now);
    return ok({ siteId: desktop.siteId, connectionId: desktop.connectionId, mode: link.mode, desktopName: desktop.name });
  }

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
