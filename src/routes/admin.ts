/** Admin-only endpoints: per-user quotas and on-prem sites (whose key is shown once). */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { isAdmin } from '../auth/jwt';
import { withDb } from '../db/client';
import { deleteSite, listSites, listUsers, setQuota, upsertSite } from '../db/queries';
import { DEFAULT_MAX_DESKTOPS } from '../lib/quota';
import { ApiError, notFound } from '../errors';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { success } from '../lib/envelope';
import { randomToken, sha256Hex } from '../lib/ids';
import { OccupancySchema } from '../schemas/gpu';
import { QuotaSchema } from '../schemas/quota';
import { ReconcileReportSchema } from '../schemas/reconcile';
import { UserIdSchema } from '../schemas/user-id';
import { confirmReconcileReport, reconcileAllSites, reconcileSite } from '../reconcile/reconcile';
import { insightRoutes } from './admin-insights';
import { adminMetricsRoutes } from './admin-metrics';
import { adminPoolRoutes } from './admin-pools';
import { adminHealthRoutes } from './health';
import { adminTemplateRoutes } from './templates';
import { validationHook } from './validation';

export const adminRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

adminRoutes.use(
  '*',
  createMiddleware<AppEnv>(async (c, next) => {
    if (!isAdmin(c.var.principal)) throw new ApiError('FORBIDDEN', 'Admin role required');
    await next();
  }),
);

const security = bearerAuth;
const json = jsonSpec;
const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not an admin'),
} as const;

const UserParam = z.object({
  userId: UserIdSchema.openapi({ param: { name: 'userId', in: 'path' } }),
});
export const QuotaOut = z.object({ userId: z.string(), ...QuotaSchema.shape }).openapi('Quota');

export const UserSummaryOut = z
  .object({
    userId: z.string(),
    ...QuotaSchema.shape,
    desktops: z.number().openapi({ description: 'Desktops ever created, DELETED ones included' }),
    lastCreatedAt: z.string().nullable(),
  })
  .openapi('UserSummary');

adminRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/users',
    summary: 'Users with desktops or an admin-set quota, most active first',
    security,
    request: {
      query: z.object({
        page: z.coerce.number().int().min(1).max(100_000).default(1),
        pageSize: z.coerce.number().int().min(1).max(200).default(50),
      }),
    },
    responses: {
      200: json(z.object({ items: z.array(UserSummaryOut), page: z.number(), pageSize: z.number(), total: z.number() }), 'A page of users'),
      ...errors,
    },
  }),
  async (c) => {
    const { page, pageSize } = c.req.valid('query');
    const { items, total } = await withDb(c.var.cfg, (db) => listUsers(db, page, pageSize));
    const users = items.map(({ maxDesktops, ...u }) => ({
      ...u,
      maxDesktops: maxDesktops ?? DEFAULT_MAX_DESKTOPS,
      custom: maxDesktops !== null,
    }));
    return c.json(success({ items: users, page, pageSize, total }, `${total} users`), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/users/{userId}/quota',
    summary: "A user's desktop limit and active desktops",
    security,
    request: { params: UserParam },
    responses: { 200: json(QuotaOut, 'Quota'), ...errors },
  }),
  async (c) => {
    const { userId } = c.req.valid('param');
    const q = await c.env.USER_ACCOUNT.getByName(userId).quota();
    return c.json(success({ userId, ...q }, `${userId} may have ${q.maxDesktops} active desktops`), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'put',
    path: '/users/{userId}/quota',
    summary: "Set a user's limit of active (not DELETED) desktops",
    security,
    request: {
      params: UserParam,
      body: {
        required: true,
        content: { 'application/json': { schema: z.strictObject({ maxDesktops: z.number().int().min(0).max(1000) }) } },
      },
    },
    responses: { 200: json(QuotaOut, 'Updated quota'), ...errors },
  }),
  async (c) => {
    const { userId } = c.req.valid('param');
    const { maxDesktops } = c.req.valid('json');
    const q = await c.env.USER_ACCOUNT.getByName(userId).setLimit(maxDesktops);
    await withDb(c.var.cfg, (db) => setQuota(db, userId, maxDesktops));
    return c.json(success({ userId, ...q }, `${userId} may now have ${maxDesktops} active desktops`), 200);
  },
);

const SiteOut = z.object({ id: z.string(), name: z.string(), bridge: z.enum(['connected', 'offline']), lastSeenAt: z.string().nullable() });

adminRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/sites',
    summary: 'On-prem sites and their bridges',
    security,
    responses: { 200: json(z.array(SiteOut), 'Sites'), ...errors },
  }),
  async (c) => {
    const rows = await withDb(c.var.cfg, (db) => listSites(db));
    const sites = await Promise.all(
      rows.map(async (s) => {
        const st = await c.env.SITE_HUB.getByName(s.id).status();
        return { id: s.id, name: s.name, bridge: st.connected ? ('connected' as const) : ('offline' as const), lastSeenAt: st.lastSeenAt };
      }),
    );
    return c.json(success(sites, `${sites.length} sites`), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/sites',
    summary: 'Register a site, or rotate its key',
    description:
      'Answers the site key once; only its SHA-256 is stored. Configure the bridge with SITE_ID and SITE_KEY. Rotating hangs up on a bridge still connected with the old key.',
    security,
    request: {
      body: {
        required: true,
        content: {
          'application/json': {
            schema: z.strictObject({
              id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'id: lowercase letters, digits and -'),
              // Postgres refuses NUL in text: a control character here was a 500 (found by test/edge/security/fuzz.test.ts).
              name: z
                .string()
                .trim()
                .min(1)
                .max(100)
                .regex(/^[^\p{Cc}]*$/u, 'name must not contain control characters'),
            }),
          },
        },
      },
    },
    responses: { 201: json(z.object({ id: z.string(), name: z.string(), siteKey: z.string() }), 'The site and its key'), ...errors },
  }),
  async (c) => {
    const { id, name } = c.req.valid('json');
    const siteKey = `sk_${randomToken()}`;
    const keyHash = await sha256Hex(siteKey);
    await withDb(c.var.cfg, (db) => upsertSite(db, { id, name, keyHash }));
    // The hub checks bridges against its own copy (Postgres may be down when they log in).
    await c.env.SITE_HUB.getByName(id).setSiteKey(keyHash);
    c.header('Cache-Control', 'no-store');
    return c.json(success({ id, name, siteKey }, 'Site registered; store the key now, it is not shown again'), 201);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/sites/{siteId}',
    summary: 'Remove a site: its key stops working and its bridge is hung up on',
    description:
      'Desktops of the site are left as they are (delete them first); its bridge can no longer log in. Register the site again to get a new key.',
    security,
    request: { params: z.object({ siteId: z.string().openapi({ param: { name: 'siteId', in: 'path' } }) }) },
    responses: { 200: json(z.object({ id: z.string() }), 'Removed'), 404: errorSpec('No such site'), ...errors },
  }),
  async (c) => {
    const { siteId } = c.req.valid('param');
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(siteId)) throw notFound('Site');
    const hadRow = await withDb(c.var.cfg, (db) => deleteSite(db, siteId));
    const hadKey = await c.env.SITE_HUB.getByName(siteId).removeSite();
    if (!hadRow && !hadKey) throw notFound('Site');
    return c.json(success({ id: siteId }, `Site ${siteId} removed; its bridge can no longer connect`), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/reconcile',
    summary: 'Reconcile now: compare desktops with the VMs and connections each site reports',
    description:
      "Orphans (leftovers carrying this site's and deployment's marks, of desktops neither the Durable Objects nor Postgres know) are reported and removed once older than RECONCILE_GRACE_SECONDS, at most RECONCILE_MAX_REMOVALS per site and pass; beyond that the report lists them as awaiting confirmation. Settled desktops whose VM vanished become FAILED, those powered off outside the control plane STOPPED. The cron trigger runs the same every 5 minutes.",
    security,
    request: {
      body: {
        required: false,
        content: { 'application/json': { schema: z.strictObject({ siteId: z.string().min(1).max(63).optional() }) } },
      },
    },
    responses: { 200: json(z.array(ReconcileReportSchema), 'One report per site'), ...errors },
  }),
  async (c) => {
    const { siteId } = c.req.valid('json');
    const reports = siteId ? [await reconcileSite(c.env, siteId)] : await reconcileAllSites(c.env);
    const drift = reports.reduce((n, r) => n + r.orphans.length + r.corrected.length, 0);
    return c.json(
      success(reports, `${reports.length} site${reports.length === 1 ? '' : 's'} reconciled; ${drift} finding${drift === 1 ? '' : 's'}`),
      200,
    );
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/reconcile/{reportId}/confirm',
    summary: "Confirm a site's last reconciliation report: remove the orphans it lists as awaiting confirmation",
    security,
    request: { params: z.object({ reportId: z.string().min(1).max(64) }) },
    responses: { 200: json(ReconcileReportSchema, 'The report, with the removals sent'), ...errors },
  }),
  async (c) => {
    const { reportId } = c.req.valid('param');
    const confirmed = await confirmReconcileReport(c.env, reportId);
    if (!confirmed.ok)
      throw new ApiError('NOT_FOUND', `No site's last reconciliation report is ${reportId}; reconcile again and confirm the new report`);
    const sent = confirmed.report.orphans.filter((o) => o.removal === 'sent').length;
    return c.json(success(confirmed.report, `Removal of ${sent} orphan${sent === 1 ? '' : 's'} sent`), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/reconcile',
    summary: 'The last reconciliation report of every site',
    security,
    responses: { 200: json(z.array(ReconcileReportSchema), 'Last reports'), ...errors },
  }),
  async (c) => {
    const sites = await withDb(c.var.cfg, (db) => listSites(db));
    const reports = (await Promise.all(sites.map((s) => c.env.SITE_HUB.getByName(s.id).lastReconcileReport()))).filter((r) => r !== null);
    return c.json(success(reports, `${reports.length} reports`), 200);
  },
);

// The audit log, the overview and templates: admin-only like everything here.
adminRoutes.route('/', insightRoutes);
adminRoutes.route('/', adminTemplateRoutes);
adminRoutes.route('/', adminHealthRoutes);
adminRoutes.route('/', adminMetricsRoutes);
adminRoutes.route('/', adminPoolRoutes);

export const GpuOccupancyOut = OccupancySchema.extend({ siteId: z.string() }).openapi('GpuOccupancy');

adminRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/gpus',
    summary: 'GPU slot occupancy per site and GPU (sessions are desktop ids)',
    security,
    responses: { 200: json(z.array(GpuOccupancyOut), 'Occupancy'), ...errors },
  }),
  async (c) => {
    const sites = await withDb(c.var.cfg, (db) => listSites(db));
    const out = await Promise.all(sites.map(async (s) => ({ siteId: s.id, ...(await c.env.SITE_HUB.getByName(s.id).gpuOccupancy()) })));
    const used = out.reduce((n, s) => n + s.totals.used, 0);
    return c.json(success(out, `${used} GPU slots in use`), 200);
  },
);
