/** Small named queries; the only place that knows the Postgres shape of a desktop. */
import { and, count, desc, eq, inArray, ne, sql, type SQL } from 'drizzle-orm';
import type { Desktop, DesktopStatus, Plan, TransitionRecord } from '../schemas/desktop';
import type { Db } from './client';
import { desktopEvents, desktops, sites, users, type DesktopRow } from './schema';

export function desktopToRow(d: Desktop, version: number): typeof desktops.$inferInsert {
  return { ...d, version };
}

export function rowToDesktop(r: DesktopRow): Desktop {
  const { version: _version, ...rest } = r;
  return { ...rest, plan: r.plan as Plan, status: r.status as DesktopStatus, protocol: r.protocol === 'rdp' ? 'rdp' : 'vnc' };
}

/** Write-through from the Durable Object: applies only snapshots newer than the stored one. */
export async function writeThrough(
  db: Db,
  snapshot: { desktop: Desktop; version: number },
  transitions: (TransitionRecord & { desktopId: string })[],
) {
  const row = desktopToRow(snapshot.desktop, snapshot.version);
  const { id: _id, ...update } = row;
  await db
    .insert(desktops)
    .values(row)
    .onConflictDoUpdate({ target: desktops.id, set: update, setWhere: sql`${desktops.version} < ${snapshot.version}` });
  if (transitions.length > 0) {
    await db
      .insert(desktopEvents)
      .values(
        transitions.map((t) => ({
          desktopId: t.desktopId,
          seq: t.seq,
          fromStatus: t.from,
          toStatus: t.to,
          event: t.event,
          actor: t.actor,
          reason: t.reason,
          at: t.at,
        })),
      )
      .onConflictDoNothing();
  }
}

export interface DesktopFilter {
  userId?: string;
  createdBy?: string;
  status?: DesktopStatus;
  plan?: Plan;
  includeDeleted: boolean;
}

export async function listDesktops(db: Db, f: DesktopFilter, page: { offset: number; limit: number }) {
  const where: SQL[] = [];
  if (f.userId) where.push(eq(desktops.userId, f.userId));
  if (f.createdBy) where.push(eq(desktops.createdBy, f.createdBy));
  if (f.plan) where.push(eq(desktops.plan, f.plan));
  if (f.status) where.push(eq(desktops.status, f.status));
  else if (!f.includeDeleted) where.push(ne(desktops.status, 'DELETED'));
  const cond = where.length ? and(...where) : undefined;
  const [rows, totals] = await Promise.all([
    db.select().from(desktops).where(cond).orderBy(desc(desktops.createdAt), desc(desktops.id)).offset(page.offset).limit(page.limit),
    db.select({ n: count() }).from(desktops).where(cond),
  ]);
  return { items: rows.map(rowToDesktop), total: totals[0]?.n ?? 0 };
}

/** The Postgres copy of a user's limit (the UserAccount Durable Object enforces it). */
export async function setQuota(db: Db, userId: string, maxDesktops: number): Promise<void> {
  const now = new Date().toISOString();
  await db
    .insert(users)
    .values({ id: userId, maxDesktops, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: users.id, set: { maxDesktops, updatedAt: now } });
}

export async function listSites(db: Db) {
  return db.select({ id: sites.id, name: sites.name, lastConnectedAt: sites.lastConnectedAt }).from(sites).orderBy(sites.id);
}

export async function siteKeyHash(db: Db, siteId: string): Promise<string | null> {
  const [row] = await db.select({ h: sites.keyHash }).from(sites).where(eq(sites.id, siteId));
  return row?.h ?? null;
}

export async function upsertSite(db: Db, site: { id: string; name: string; keyHash: string }): Promise<void> {
  const now = new Date().toISOString();
  await db
    .insert(sites)
    .values({ ...site, createdAt: now })
    .onConflictDoUpdate({ target: sites.id, set: { name: site.name, keyHash: site.keyHash } });
}

export async function markSiteLink(db: Db, siteId: string, connected: boolean): Promise<void> {
  const now = new Date().toISOString();
  await db
    .update(sites)
    .set(connected ? { lastConnectedAt: now } : { lastDisconnectedAt: now })
    .where(eq(sites.id, siteId));
}

/** Desktops of a site that should have a VM and are not being worked on: what reconciliation checks. */
export async function settledDesktopIds(db: Db, siteId: string, limit = 5000): Promise<string[]> {
  const rows = await db
    .select({ id: desktops.id })
    .from(desktops)
    .where(and(eq(desktops.siteId, siteId), inArray(desktops.status, ['RUNNING', 'STOPPED'])))
    .limit(limit);
  return rows.map((r) => r.id);
}
