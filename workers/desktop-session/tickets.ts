/**
 * Connect tickets (PRD 3.2) in the desktop's storage: valid for a few minutes, for one
 * opening, of this desktop only. Only a ticket's hash is kept, so what storage holds
 * opens nothing.
 */
import { randomToken, sha256Hex } from '../../src/lib/ids';
import { fail, ok, type Result } from '../../src/lib/result';
import type { Desktop } from '../../src/schemas/desktop';
import type { ObjectStorage } from '../shared/object-storage';

export interface NewTicket {
  secret: string;
  hashed: string;
  expiresAt: number;
}

/** A fresh ticket, hashed before the desktop's state is read, so nothing that happens during the await is overwritten. */
export async function newTicket(ttlSeconds: number): Promise<NewTicket> {
  const secret = randomToken();
  return { secret, hashed: await sha256Hex(secret), expiresAt: Date.now() + ttlSeconds * 1000 };
}

/** Inside the connect's storage transaction: the ticket, and the old ones gone. */
export function storeTicket(store: ObjectStorage, t: NewTicket, now: number): void {
  store.run('DELETE FROM tickets WHERE expires_at < ?', now - 3_600_000);
  store.run('INSERT INTO tickets (secret, expires_at) VALUES (?, ?)', t.hashed, t.expiresAt);
}

/** Consumes a ticket once; answers what the site needs to open a Guacamole session. */
export async function redeemTicket(
  store: ObjectStorage,
  d: Desktop | undefined,
  secret: string,
): Promise<Result<{ siteId: string; connectionId: string }>> {
  const hashed = await sha256Hex(secret);
  const row = store.first<{ expires_at: number; used_at: number | null }>('SELECT * FROM tickets WHERE secret = ?', hashed);
  const gone = 'This connect link has expired or was already used; ask for a new one with GET /api/v1/desktops/{id}/connect';
  if (!d || !row || row.used_at !== null || row.expires_at < Date.now()) return fail('NOT_FOUND', gone);
  if (d.status !== 'RUNNING' || !d.connectionId)
    return fail('INVALID_STATE', `Cannot connect to desktop ${d.id}: it is ${d.status}, not RUNNING`);
  store.run('UPDATE tickets SET used_at = ? WHERE secret = ?', Date.now(), hashed);
  return ok({ siteId: d.siteId, connectionId: d.connectionId });
}
