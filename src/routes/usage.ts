/**
 * GET /api/v1/usage: running time per plan for pay-per-hour billing, from the usage
 * intervals each desktop records (start, stop, reason). Intervals are clipped to the
 * requested window; an interval still open counts up to now.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { and, eq, gt, inArray, isNull, lt, or, type SQL, sql } from 'drizzle-orm';
import type { AppEnv } from '../app-env';
import { actorOf, isAdmin } from '../auth/jwt';
import { actsAsService, describeNamespace, inNamespace } from '../auth/tenancy';
import { withDb } from '../db/client';
import { desktops, usageIntervals } from '../db/schema';
import { ApiError } from '../errors';
import { success } from '../lib/envelope';
import { PlanSchema } from '../schemas/desktop';
import { UserIdSchema } from '../schemas/user-id';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const usageRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

const HOUR = 3_600_000;
const MAX_INTERVALS = 5000;

const UsageOut = z
  .object({
    userId: z.string().nullable(),
    from: z.string(),
    to: z.string(),
    totalHours: z.number(),
    byPlan: z.array(z.object({ plan: PlanSchema, hours: z.number(), intervals: z.number() })),
    intervals: z.array(
      z.object({
        desktopId: z.string(),
        userId: z.string(),
        plan: PlanSchema,
        startedAt: z.string(),
        stoppedAt: z.string().nullable(),
        stopReason: z.string().nullable(),
        hours: z.number(),
      }),
    ),
  })
  .openapi('Usage');

const round = (h: number) => Math.round(h * 10_000) / 10_000;

usageRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'Running hours per plan (pay-per-hour billing)',
    description:
      'Users see their own usage; admins any user’s (or everyone’s, without userId); a service that of the desktops it created, for the users of its namespace. Default window: this month so far.',
    security: bearerAuth,
    request: {
      query: z.object({
        userId: UserIdSchema.optional(),
        from: z.iso.datetime({ offset: true }).optional(),
        to: z.iso.datetime({ offset: true }).optional(),
      }),
    },
    responses: {
      200: jsonSpec(UsageOut, 'Usage in the window'),
      400: errorSpec('Invalid input'),
      401: errorSpec('No token'),
      403: errorSpec('Not yours'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const q = c.req.valid('query');
    const service = actsAsService(p);
    const privileged = isAdmin(p) || service;
    if (q.userId && q.userId !== p.sub && !privileged)
      throw new ApiError('FORBIDDEN', "Only admins and services can see other users' usage");
    if (service && q.userId && !inNamespace(c.var.cfg, p.sub, q.userId)) {
      throw new ApiError('FORBIDDEN', `Service ${p.sub} sees only the usage of ${describeNamespace(c.var.cfg, p.sub)}`);
    }
    const userId = privileged ? (q.userId ?? null) : p.sub;
    const now = Date.now();
    const monthStart = new Date(now);
    monthStart.setUTCDate(1);
    monthStart.setUTCHours(0, 0, 0, 0);
    const from = q.from ? Date.parse(q.from) : monthStart.getTime();
    const to = q.to ? Math.min(Date.parse(q.to), now) : now;
    if (!(from < to)) throw new ApiError('VALIDATION_FAILED', 'from must be before to (and before now)');

    const where: SQL[] = [
      lt(usageIntervals.startedAt, new Date(to).toISOString()),
      or(isNull(usageIntervals.stoppedAt), gt(usageIntervals.stoppedAt, new Date(from).toISOString())) as SQL,
    ];
    if (userId) where.push(eq(usageIntervals.userId, userId));
    // A service's tenant is the desktops it created: not another service's, not its users' own.
    if (service) {
      where.push(
        inArray(usageIntervals.desktopId, sql`(select ${desktops.id} from ${desktops} where ${desktops.createdBy} = ${actorOf(p)})`),
      );
    }
    const rows = await withDb(c.var.cfg, (db) =>
      db
        .select()
        .from(usageIntervals)
        .where(and(...where))
        .orderBy(usageIntervals.startedAt)
        .limit(MAX_INTERVALS),
    );
    const intervals = rows.map((r) => {
      const start = Math.max(Date.parse(r.startedAt), from);
      const end = Math.min(r.stoppedAt ? Date.parse(r.stoppedAt) : now, to);
      return {
        desktopId: r.desktopId,
        userId: r.userId,
        plan: PlanSchema.parse(r.plan),
        startedAt: r.startedAt,
        stoppedAt: r.stoppedAt,
        stopReason: r.stopReason,
        hours: round(Math.max(0, end - start) / HOUR),
      };
    });
    const byPlan = PlanSchema.options
      .map((plan) => {
        const mine = intervals.filter((i) => i.plan === plan);
        return { plan, hours: round(mine.reduce((h, i) => h + i.hours, 0)), intervals: mine.length };
      })
      .filter((x) => x.intervals > 0);
    const totalHours = round(byPlan.reduce((h, x) => h + x.hours, 0));
    const data = { userId, from: new Date(from).toISOString(), to: new Date(to).toISOString(), totalHours, byPlan, intervals };
    return c.json(success(data, `${totalHours} hours`), 200);
  },
);
