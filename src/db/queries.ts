/** Small named queries; the only place that knows the Postgres shape of a desktop. */
import { and, count, desc, eq, gt, inArray, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import {
  type ActivitySource,
  BackendSchema,
  type Desktop,
  type DesktopStatus,
  GpuSlotsSchema,
  type Plan,
  PlanSchema,
  ProtocolSchema,
  type TransitionRecord,
} from '../schemas/desktop';
import { creatorService } from '../auth/tenancy';
import type { Db } from './client';
import { describeDbError, isRowRefusal } from './errors';
import { withoutControls } from '../schemas/text';
import { fromExcluded, insertRows } from './plain-sql';
import { auditLog, desktopEvents, desktops, sites, templates, usageIntervals, users, webhooks, type DesktopRow } from './schema';
import type { Template, TemplateInput } from '../schemas/template';
import type { AuditRecord } from '../schemas/jobs';

export function desktopToRow(d: Desktop, version: number, nextDueAt: string | null = null): typeof desktops.$inferInsert {
  return { ...d, version, nextDueAt };
}

export function rowToDesktop(r: DesktopRow): Desktop {
  const { version: _version, nextDueAt: _nextDueAt, snapshotDueAt: _snapshotDueAt, snapshotRunAt: _snapshotRunAt, ...rest } = r;
  return {
    ...rest,
    plan: r.plan as Plan,
    status: r.status as DesktopStatus,
    protocol: ProtocolSchema.catch('vnc').parse(r.protocol),
    backend: BackendSchema.catch('proxmox').parse(r.backend),
    gpuSlots: GpuSlotsSchema.catch(0).parse(r.gpuSlots),
    lastActivitySource: (r.lastActivitySource as ActivitySource | null) ?? null,
  };
}

export type UsageIntervalRow = typeof usageIntervals.$inferInsert;

/** A row of a write-through that Postgres refused for what it holds. */
export interface RefusedRow {
  kind: 'desktop' | 'transition' | 'usage';
  /** Which one: the desktop id, the transition's seq, the usage interval's id. */
  key: string;
  /** Postgres' code and message (describeDbError). */
  error: string;
  /** `cleaned`: a copy without control characters went in its place; `set_aside`: that was refused too. */
  outcome: 'cleaned' | 'set_aside';
}

/**
 * Write-through from the Durable Object: applies only snapshots newer than the stored one.
 * A row Postgres refuses (a value it cannot hold) does not hold back the others: it is
 * written again without control characters and, if that is refused too, set aside. Both
 * are answered so the desktop can record them; any other error (the database is gone)
 * is thrown, and the whole write is tried again later.
 */
export async function writeThrough(
  db: Db,
  snapshot: { desktop: Desktop; version: number; nextDueAt: string | null },
  transitions: (TransitionRecord & { desktopId: string })[],
  usage: UsageIntervalRow[] = [],
): Promise<RefusedRow[]> {
  const row = desktopToRow(snapshot.desktop, snapshot.version, snapshot.nextDueAt);
  const refused = await writeEach(
    'desktop',
    [row],
    (r) => r.id,
    async ([r]) => {
      if (!r) return;
      // Plain SQL (./plain-sql.ts): the same upsert as drizzle's insert … onConflictDoUpdate, for a fraction of the CPU.
      const given = (key: string) => key !== 'id' && (r as Record<string, unknown>)[key] !== undefined;
      const st = insertRows(desktops, [r], (params, cols) => {
        params.push(snapshot.version);
        return `ON CONFLICT ("id") DO UPDATE SET ${fromExcluded(cols, given)} WHERE "desktops"."version" < $${params.length}`;
      });
      await db.$client.query(st.text, st.params);
    },
  );
  const events = transitions.map((t) => ({
    desktopId: t.desktopId,
    seq: t.seq,
    fromStatus: t.from,
    toStatus: t.to,
    event: t.event,
    actor: t.actor,
    reason: t.reason,
    at: t.at,
  }));
  refused.push(
    ...(await writeEach(
      'transition',
      events,
      (e) => String(e.seq),
      async (rows) => {
        const st = insertRows(desktopEvents, rows, () => 'ON CONFLICT DO NOTHING');
        await db.$client.query(st.text, st.params);
      },
    )),
  );
  refused.push(
    ...(await writeEach(
      'usage',
      usage,
      (u) => u.id,
      async (rows) => {
        const times = (key: string) => key === 'startedAt' || key === 'stoppedAt' || key === 'stopReason';
        const st = insertRows(usageIntervals, rows, (_params, cols) => `ON CONFLICT ("id") DO UPDATE SET ${fromExcluded(cols, times)}`);
        await db.$client.query(st.text, st.params);
      },
    )),
  );
  return refused;
}

/** Writes `rows` in one statement; when Postgres refuses it, row by row, cleaning or setting aside each refused one. */
async function writeEach<T extends object>(
  kind: RefusedRow['kind'],
  rows: T[],
  keyOf: (row: T) => string,
  write: (rows: T[]) => Promise<void>,
): Promise<RefusedRow[]> {
  if (rows.length === 0) return [];
  try {
    await write(rows);
    return [];
  } catch (err) {
    if (!isRowRefusal(err)) throw err;
  }
  const refused: RefusedRow[] = [];
  for (const row of rows) {
    let error: string;
    try {
      await write([row]);
      continue;
    } catch (err) {
      if (!isRowRefusal(err)) throw err;
      error = describeDbError(err);
    }
    try {
      await write([cleaned(row)]);
      refused.push({ kind, key: keyOf(row), error, outcome: 'cleaned' });
    } catch (err) {
      if (!isRowRefusal(err)) throw err;
      refused.push({ kind, key: keyOf(row), error, outcome: 'set_aside' });
    }
  }
  return refused;
}

/** The row with control characters removed from every text value. */
function cleaned<T extends object>(row: T): T {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'string' ? withoutControls(v) : v])) as T;
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

/** An owner's desktops as an owner index keeps them (DesktopIndex seeds itself from this once). */
export async function ownedDesktopEntries(db: Db, owner: { userId: string } | { createdBy: string }) {
  const where = 'userId' in owner ? eq(desktops.userId, owner.userId) : eq(desktops.createdBy, owner.createdBy);
  const rows = await db
    .select({
      id: desktops.id,
      userId: desktops.userId,
      plan: desktops.plan,
      status: desktops.status,
      createdAt: desktops.createdAt,
      revision: desktops.version,
    })
    .from(desktops)
    .where(where);
  // Timestamps come back in Postgres' own text form; the index orders by ISO strings.
  return rows.map((r) => ({
    ...r,
    plan: r.plan as Plan,
    status: r.status as DesktopStatus,
    createdAt: new Date(r.createdAt).toISOString(),
  }));
}

/** The Postgres copy of a user's limit (the UserAccount Durable Object enforces it). */
export async function setQuota(db: Db, userId: string, maxDesktops: number): Promise<void> {
  const now = new Date().toISOString();
  await db
    .insert(users)
    .values({ id: userId, maxDesktops, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: users.id, set: { maxDesktops, updatedAt: now } });
}

export interface UserSummary {
  userId: string;
  /** The admin-set limit, or null for the default. */
  maxDesktops: number | null;
  active: number;
  desktops: number;
  lastCreatedAt: string | null;
}

/**
 * Everyone the control plane knows: users with desktops (any status) or an admin-set
 * quota. Most active first, then the most recent creator. Counts come from the write-through
 * copy, so a create of the last moments may not be counted yet; the quota itself is kept by
 * the user's Durable Object.
 */
export async function listUsers(db: Db, page: number, pageSize: number): Promise<{ items: UserSummary[]; total: number }> {
  const known = sql`(select ${desktops.userId} as id from ${desktops} union select ${users.id} from ${users})`;
  const rows = await db.execute<{
    id: string;
    max_desktops: number | null;
    active: number;
    desktops: number;
    last_created_at: string | null;
  }>(sql`
    select k.id, u.max_desktops,
      count(d.id) filter (where d.status <> 'DELETED')::int as active,
      count(d.id)::int as desktops,
      max(d.created_at) as last_created_at
    from ${known} k
    left join ${users} u on u.id = k.id
    left join ${desktops} d on d.user_id = k.id
    group by k.id, u.max_desktops
    order by active desc, last_created_at desc nulls last, k.id
    limit ${pageSize} offset ${(page - 1) * pageSize}`);
  const [total] = (await db.execute<{ n: number }>(sql`select count(*)::int as n from ${known} k`)).rows;
  const items = rows.rows.map((r) => ({
    userId: r.id,
    maxDesktops: r.max_desktops,
    active: Number(r.active),
    desktops: Number(r.desktops),
    lastCreatedAt: r.last_created_at === null ? null : new Date(r.last_created_at).toISOString(),
  }));
  return { items, total: Number(total?.n ?? 0) };
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

/** Removes a site's row; answers whether there was one. */
export async function deleteSite(db: Db, siteId: string): Promise<boolean> {
  const rows = await db.delete(sites).where(eq(sites.id, siteId)).returning({ id: sites.id });
  return rows.length > 0;
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

/** Of these desktop ids, those Postgres knows as not DELETED (reconciliation's second witness beside the Durable Objects). */
export async function liveDesktopIds(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .select({ id: desktops.id })
    .from(desktops)
    .where(and(inArray(desktops.id, ids), ne(desktops.status, 'DELETED')));
  return new Set(rows.map((r) => r.id));
}

type Subscriber = { id: string; eventTypes: string; url: string; secret: string };
type EventDesktop = { userId: string; createdBy: string };

/** Live subscriptions that may see events of this desktop: its user's, the service's that created it, every admin's. */
export async function subscribersFor(db: Db, desktop: EventDesktop): Promise<Subscriber[]> {
  return (await subscribersForEach(db, [desktop]))(desktop);
}

/**
 * subscribersFor for the desktops of a batch of events, in one query (a create makes half a
 * dozen events): answers a lookup from one of those desktops to its subscriptions.
 */
export async function subscribersForEach(db: Db, list: EventDesktop[]): Promise<(desktop: EventDesktop) => Subscriber[]> {
  // A service's sub may itself hold colons: everything after the first one is the sub.
  const serviceOf = (d: EventDesktop) => creatorService(d.createdBy) ?? '';
  const rows = await db
    .select({
      id: webhooks.id,
      eventTypes: webhooks.eventTypes,
      url: webhooks.url,
      secret: webhooks.secret,
      ownerRole: webhooks.ownerRole,
      ownerSub: webhooks.ownerSub,
    })
    .from(webhooks)
    .where(
      and(
        isNull(webhooks.deletedAt),
        or(
          // An admin's scope lasts while its owner keeps showing the role (../webhooks/admin-scope.ts).
          and(eq(webhooks.ownerRole, 'admin'), gt(webhooks.adminUntil, new Date().toISOString())),
          and(eq(webhooks.ownerRole, 'service'), inArray(webhooks.ownerSub, [...new Set(list.map(serviceOf))])),
          and(eq(webhooks.ownerRole, 'user'), inArray(webhooks.ownerSub, [...new Set(list.map((d) => d.userId))])),
        ),
      ),
    );
  const subscriber = ({ ownerRole: _role, ownerSub: _sub, ...s }: (typeof rows)[number]): Subscriber => s;
  return (d) =>
    rows
      .filter(
        (r) =>
          r.ownerRole === 'admin' ||
          (r.ownerRole === 'service' && r.ownerSub === serviceOf(d)) ||
          (r.ownerRole === 'user' && r.ownerSub === d.userId),
      )
      .map(subscriber);
}

/** A stored audit record as the API answers it (`details` is kept as JSON text). */
export function rowToAudit(r: typeof auditLog.$inferSelect): AuditRecord {
  return { ...r, details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null };
}

export async function insertAudit(db: Db, records: AuditRecord[]): Promise<void> {
  if (records.length === 0) return;
  await db
    .insert(auditLog)
    .values(records.map((r) => ({ ...r, details: r.details ? JSON.stringify(r.details) : null })))
    .onConflictDoNothing();
}

export function rowToTemplate(r: typeof templates.$inferSelect): Template {
  return {
    ...r,
    backend: BackendSchema.parse(r.backend),
    protocol: ProtocolSchema.parse(r.protocol),
    defaultPlan: PlanSchema.parse(r.defaultPlan),
    gpuSlots: GpuSlotsSchema.parse(r.gpuSlots),
    gpu: r.gpuSlots > 0,
    snapshotSchedule: r.snapshotSchedule ?? null,
  };
}

export async function listTemplates(db: Db, opts: { includeRetired: boolean }): Promise<Template[]> {
  const rows = await db
    .select()
    .from(templates)
    .where(opts.includeRetired ? undefined : isNull(templates.retiredAt))
    .orderBy(templates.name);
  return rows.map(rowToTemplate);
}

export async function getTemplate(db: Db, id: string): Promise<Template | null> {
  const [row] = await db.select().from(templates).where(eq(templates.id, id));
  return row ? rowToTemplate(row) : null;
}

/** Creates or replaces a template; a replaced one is un-retired. */
export async function putTemplate(db: Db, id: string, input: TemplateInput): Promise<{ template: Template; created: boolean }> {
  const now = new Date().toISOString();
  const existing = await getTemplate(db, id);
  const row = { id, ...input, createdAt: existing?.createdAt ?? now, updatedAt: now, retiredAt: null };
  await db
    .insert(templates)
    .values(row)
    .onConflictDoUpdate({ target: templates.id, set: { ...input, updatedAt: now, retiredAt: null } });
  if (JSON.stringify(existing?.snapshotSchedule ?? null) !== JSON.stringify(input.snapshotSchedule)) {
    // Its desktops follow the new schedule from the next cron run on (those with their own setting are only looked at again).
    await db
      .update(desktops)
      .set({ snapshotDueAt: now })
      .where(and(eq(desktops.templateId, id), ne(desktops.status, 'DELETED')));
  }
  return { template: rowToTemplate(row), created: existing === null };
}

export async function retireTemplate(db: Db, id: string): Promise<Template | null> {
  const now = new Date().toISOString();
  const [row] = await db.update(templates).set({ retiredAt: now, updatedAt: now }).where(eq(templates.id, id)).returning();
  return row ? rowToTemplate(row) : null;
}
