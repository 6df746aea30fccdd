/** Admin views across desktops: the audit log and the operational overview. */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq, gte, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { AppEnv } from '../app-env';
import { withDb } from '../db/client';
import { listSites, rowToAudit } from '../db/queries';
import { auditLog, desktopEvents, desktops } from '../db/schema';
import { success } from '../lib/envelope';
import { DesktopStatusSchema } from '../schemas/desktop';
import { AuditRecordSchema } from '../schemas/jobs';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const insightRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

const errors = { 400: errorSpec('Invalid input'), 401: errorSpec('Missing or invalid token'), 403: errorSpec('Not an admin') } as const;

const printable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

insightRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/audit',
    summary: 'The audit log: lifecycle and admin actions, newest first',
    security: bearerAuth,
    request: {
      query: z.object({
        actor: printable(200).optional(),
        action: printable(100).optional().openapi({ example: 'desktop.create' }),
        target: printable(200).optional(),
        outcome: printable(40).optional().openapi({ example: '202' }),
        from: z.iso.datetime({ offset: true }).optional(),
        to: z.iso.datetime({ offset: true }).optional(),
        page: z.coerce.number().int().min(1).max(100_000).default(1),
        pageSize: z.coerce.number().int().min(1).max(200).default(50),
      }),
    },
    responses: {
      200: jsonSpec(
        z.object({ items: z.array(AuditRecordSchema), page: z.number(), pageSize: z.number(), total: z.number() }),
        'A page of records',
      ),
      ...errors,
    },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const where: SQL[] = [];
    if (q.actor) where.push(eq(auditLog.actor, q.actor));
    if (q.action) where.push(eq(auditLog.action, q.action));
    if (q.target) where.push(eq(auditLog.target, q.target));
    if (q.outcome) where.push(eq(auditLog.outcome, q.outcome));
    if (q.from) where.push(gte(auditLog.at, new Date(q.from).toISOString()));
    if (q.to) where.push(lte(auditLog.at, new Date(q.to).toISOString()));
    const cond = where.length ? and(...where) : undefined;
    const [rows, [total]] = await withDb(c.var.cfg, (db) =>
      Promise.all([
        db
          .select()
          .from(auditLog)
          .where(cond)
          .orderBy(desc(auditLog.at), desc(auditLog.id))
          .offset((q.page - 1) * q.pageSize)
          .limit(q.pageSize),
        db.select({ n: count() }).from(auditLog).where(cond),
      ]),
    );
    const items = rows.map(rowToAudit);
    return c.json(success({ items, page: q.page, pageSize: q.pageSize, total: total?.n ?? 0 }, `${total?.n ?? 0} records`), 200);
  },
);

export const OverviewOut = z
  .object({
    at: z.string(),
    desktopsByStatus: z.record(DesktopStatusSchema, z.number()),
    sites: z.array(
      z.object({
        id: z.string(),
        name: z.string(),
        bridge: z.enum(['connected', 'offline']),
        nodes: z.array(z.object({ node: z.string(), desktops: z.number(), cpuCores: z.number(), memoryMb: z.number() })),
      }),
    ),
    activeUsers: z.number(),
    idleStopsWithinHour: z.array(z.object({ desktopId: z.string(), userId: z.string(), idleStopAt: z.string() })),
    provisioningLastHour: z.object({ desktops: z.number(), p50Ms: z.number().nullable(), p95Ms: z.number().nullable() }),
    failuresByReason: z.array(z.object({ reason: z.string(), count: z.number() })),
  })
  .openapi('AdminOverview');

const HOLDING_RESOURCES = ['PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING', 'STOPPING'];

const percentile = (sorted: number[], p: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null) : null;

insightRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/overview',
    summary: 'Desktops by status, capacity in use per site and node, active users, idle stops due, provisioning time, failures',
    security: bearerAuth,
    responses: { 200: jsonSpec(OverviewOut, 'Overview'), ...errors },
  }),
  async (c) => {
    const now = Date.now();
    const hourAgo = new Date(now - 3_600_000).toISOString();
    const dayAgo = new Date(now - 86_400_000).toISOString();
    const inHour = new Date(now + 3_600_000).toISOString();
    const result = await withDb(c.var.cfg, (db) =>
      Promise.all([
        db.select({ status: desktops.status, n: count() }).from(desktops).groupBy(desktops.status),
        db
          .select({
            siteId: desktops.siteId,
            node: sql<string>`coalesce(${desktops.node}, '(not placed yet)')`,
            n: count(),
            cpu: sql<number>`coalesce(sum(${desktops.cpuCores}), 0)::int`,
            mem: sql<number>`coalesce(sum(${desktops.memoryMb}), 0)::int`,
          })
          .from(desktops)
          .where(inArray(desktops.status, HOLDING_RESOURCES))
          .groupBy(desktops.siteId, sql`2`),
        db
          .select({ n: sql<number>`count(distinct ${desktops.userId})::int` })
          .from(desktops)
          .where(eq(desktops.status, 'RUNNING')),
        db
          .select({ desktopId: desktops.id, userId: desktops.userId, idleStopAt: desktops.idleStopAt })
          .from(desktops)
          .where(
            and(eq(desktops.status, 'RUNNING'), gte(desktops.idleStopAt, new Date(now).toISOString()), lte(desktops.idleStopAt, inHour)),
          )
          .orderBy(desktops.idleStopAt)
          .limit(500),
        // Creation to first RUNNING, for desktops created in the last hour.
        db.execute<{ ms: number }>(sql`
          select extract(epoch from (min(r.at) - min(c.at))) * 1000 as ms
          from ${desktopEvents} c join ${desktopEvents} r on r.desktop_id = c.desktop_id and r.to_status = 'RUNNING'
          where c.event = 'create' and c.at >= ${hourAgo}
          group by c.desktop_id`),
        db
          .select({ reason: desktopEvents.reason, n: count() })
          .from(desktopEvents)
          .where(and(eq(desktopEvents.toStatus, 'FAILED'), gte(desktopEvents.at, dayAgo)))
          .groupBy(desktopEvents.reason)
          .orderBy(desc(count()))
          .limit(20),
        listSites(db),
      ]),
    );
    const [byStatus, capacity, [active], idle, provisioning, failures, siteRows] = result;
    const times = provisioning.rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
    const sites = await Promise.all(
      siteRows.map(async (s) => ({
        id: s.id,
        name: s.name,
        bridge: (await c.env.SITE_HUB.getByName(s.id).status()).connected ? ('connected' as const) : ('offline' as const),
        nodes: capacity.filter((r) => r.siteId === s.id).map((r) => ({ node: r.node, desktops: r.n, cpuCores: r.cpu, memoryMb: r.mem })),
      })),
    );
    const desktopsByStatus = Object.fromEntries(
      DesktopStatusSchema.options.map((st) => [st, byStatus.find((r) => r.status === st)?.n ?? 0]),
    ) as Record<z.infer<typeof DesktopStatusSchema>, number>;
    const data = {
      at: new Date(now).toISOString(),
      desktopsByStatus,
      sites,
      activeUsers: active?.n ?? 0,
      idleStopsWithinHour: idle.map((r) => ({ desktopId: r.desktopId, userId: r.userId, idleStopAt: r.idleStopAt ?? '' })),
      provisioningLastHour: { desktops: times.length, p50Ms: percentile(times, 50), p95Ms: percentile(times, 95) },
      failuresByReason: failures.map((f) => ({ reason: f.reason, count: f.n })),
    };
    return c.json(success(data, 'Overview'), 200);
  },
);
