/**
 * The PRD desktop API (appendix 12.1) under /api/v1/desktops. Reads of one desktop go
 * to its Durable Object (the source of truth); lists come from Postgres.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { actorOf, isAdmin, isService, type Principal } from '../auth/jwt';
import { withDb } from '../db/client';
import { listDesktops } from '../db/queries';
import { ApiError, notFound } from '../errors';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { success } from '../lib/envelope';
import { randomId } from '../lib/ids';
import { unwrap } from '../lib/result';
import { siteBridge } from '../lib/site-link';
import {
  type Desktop,
  DesktopIdSchema,
  DesktopSchema,
  DesktopStatusSchema,
  PLANS,
  PlanSchema,
  TransitionRecordSchema,
} from '../schemas/desktop';
import { validationHook } from './validation';

const UserIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._@:-]+$/, 'userId may contain letters, digits and . _ @ : -');

export const CreateDesktopSchema = z
  .strictObject({
    userId: UserIdSchema.optional().openapi({
      description: 'Owner; required for service tokens, defaults to the caller otherwise',
      example: 'streamer_12345',
    }),
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^\p{Cc}]*$/u, 'name must not contain control characters')
      .default('Cloud Desktop')
      .openapi({ example: 'Content Creation Workspace' }),
    // Plans are upper case in the PRD; "premium" from a lenient client means the same.
    plan: z
      .preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), PlanSchema)
      .default('BASIC')
      .openapi({ example: 'PREMIUM' }),
    protocol: z
      .enum(['vnc', 'rdp'], { error: 'protocol must be vnc or rdp (SPICE is not supported by any Guacamole release)' })
      .default('vnc'),
  })
  .openapi('CreateDesktopRequest');

const IdParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'dk5v2m7q3x9a4b6c8d0e1f' }) });

const ListQuery = z.object({
  status: DesktopStatusSchema.optional(),
  plan: PlanSchema.optional(),
  userId: UserIdSchema.optional().openapi({ description: 'Admins (and services, for their own desktops) only' }),
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
});

const DesktopOut = DesktopSchema.openapi('Desktop');
const PageOut = z
  .object({ items: z.array(DesktopOut), page: z.number(), pageSize: z.number(), total: z.number(), totalPages: z.number() })
  .openapi('DesktopPage');
const SiteBridgeSchema = z.enum(['connected', 'offline']).openapi({
  description: "Whether the desktop's site bridge is connected; while it is offline the desktop's status cannot be vouched for",
});
const StatusOut = z.object({
  id: z.string(),
  status: DesktopStatusSchema,
  statusMessage: z.string().nullable(),
  errorMessage: z.string().nullable(),
  updatedAt: z.string(),
  siteBridge: SiteBridgeSchema,
});
const DesktopWithSiteOut = DesktopSchema.extend({ siteBridge: SiteBridgeSchema }).openapi('DesktopWithSite');
const ConnectOut = z.object({
  desktopId: z.string(),
  connectionUrl: z.string().openapi({ description: 'Open within expiresAt, once: it opens this desktop in the Guacamole web client' }),
  url: z.string().openapi({ description: 'The same as connectionUrl' }),
  expiresAt: z.string(),
  protocol: z.string(),
});

const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not allowed'),
  404: errorSpec('No such desktop (or not yours)'),
  409: errorSpec('Not allowed in the current status, or over quota'),
} as const;
const json = jsonSpec;
const security = bearerAuth;

/** A user acts on their own desktops; admins on all; a service on those it created. */
export function canAccess(p: Principal, d: Pick<Desktop, 'userId' | 'createdBy'>): boolean {
  if (isAdmin(p)) return true;
  if (isService(p)) return d.createdBy === actorOf(p);
  return d.userId === p.sub;
}

/** Whose desktop a create makes: services must name the user, users may only name themselves. */
function targetUser(p: Principal, requested: string | undefined): string {
  if (isService(p) && !isAdmin(p)) {
    if (!requested) throw new ApiError('VALIDATION_FAILED', 'userId is required when a service creates a desktop');
    return requested;
  }
  if (requested && requested !== p.sub && !isAdmin(p)) throw new ApiError('FORBIDDEN', 'You can only create desktops for yourself');
  return requested ?? p.sub;
}

export const desktopRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

async function loadDesktop(env: AppEnv['Bindings'], p: Principal, id: string) {
  if (!DesktopIdSchema.safeParse(id).success) throw notFound('Desktop');
  const stub = env.DESKTOP_SESSION.getByName(id);
  const desktop = await stub.get();
  // Another user's desktop is indistinguishable from a missing one.
  if (!desktop || !canAccess(p, desktop)) throw notFound('Desktop');
  return { stub, desktop };
}

desktopRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Create a desktop',
    description: 'Answers 202 at once (PENDING); provisioning continues asynchronously (PRD 3.1).',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: CreateDesktopSchema } } } },
    responses: { 202: json(DesktopOut, 'Creation initiated'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const body = c.req.valid('json');
    const userId = targetUser(p, body.userId);
    const plan = PLANS[body.plan];
    const now = new Date().toISOString();
    const desktop: Desktop = {
      id: randomId('dk'),
      userId,
      name: body.name,
      plan: body.plan,
      cpuCores: plan.cpuCores,
      memoryMb: plan.memoryMb,
      protocol: body.protocol,
      status: 'PENDING',
      statusMessage: 'desktop creation requested',
      errorMessage: null,
      siteId: c.var.cfg.DEFAULT_SITE_ID,
      vmId: null,
      node: null,
      ipAddress: null,
      connectionId: null,
      createdBy: actorOf(p),
      createdAt: now,
      updatedAt: now,
      lastAccessedAt: null,
      expiresAt: null,
      deletedAt: null,
    };
    // The quota lives in the user's Durable Object: no database round trip on the way to 202.
    const account = c.env.USER_ACCOUNT.getByName(userId);
    unwrap(await account.reserve(userId, desktop.id, isAdmin(p) && userId === p.sub));
    let created: Desktop;
    try {
      created = unwrap(await c.env.DESKTOP_SESSION.getByName(desktop.id).create(desktop, actorOf(p)));
    } catch (err) {
      await account.release(desktop.id).catch(() => {});
      throw err;
    }
    c.header('Location', `/api/v1/desktops/${created.id}`);
    return c.json(success(created, 'Desktop creation initiated successfully.'), 202);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'List desktops',
    description: 'Your desktops (admins: everyone’s), newest first; DELETED ones only when filtered by status.',
    security,
    request: { query: ListQuery },
    responses: { 200: json(PageOut, 'A page of desktops'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const q = c.req.valid('query');
    if (q.userId && q.userId !== p.sub && !isAdmin(p) && !isService(p))
      throw new ApiError('FORBIDDEN', "Only admins can list other users' desktops");
    const filter = {
      userId: isAdmin(p) || isService(p) ? q.userId : p.sub,
      createdBy: isService(p) && !isAdmin(p) ? actorOf(p) : undefined,
      status: q.status,
      plan: q.plan,
      includeDeleted: false,
    };
    const { items, total } = await withDb(c.var.cfg, (db) =>
      listDesktops(db, filter, { offset: (q.page - 1) * q.pageSize, limit: q.pageSize }),
    );
    const page = { items, page: q.page, pageSize: q.pageSize, total, totalPages: Math.ceil(total / q.pageSize) };
    return c.json(success(page, `${total} desktop${total === 1 ? '' : 's'}`), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/user/{userId}',
    summary: "A user's desktops",
    security,
    request: { params: z.object({ userId: UserIdSchema.openapi({ param: { name: 'userId', in: 'path' } }) }) },
    responses: { 200: json(z.array(DesktopOut), 'The user’s active desktops'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { userId } = c.req.valid('param');
    if (userId !== p.sub && !isAdmin(p) && !isService(p)) throw new ApiError('FORBIDDEN', 'You can only see your own desktops');
    const filter = { userId, createdBy: isService(p) && !isAdmin(p) ? actorOf(p) : undefined, includeDeleted: false };
    const { items } = await withDb(c.var.cfg, (db) => listDesktops(db, filter, { offset: 0, limit: 100 }));
    return c.json(success(items, `${items.length} desktop${items.length === 1 ? '' : 's'} for ${userId}`), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    summary: 'Get a desktop',
    security,
    request: { params: IdParams },
    responses: { 200: json(DesktopWithSiteOut, 'The desktop'), ...errors },
  }),
  async (c) => {
    const { desktop } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    return c.json(success({ ...desktop, siteBridge: await siteBridge(c.env, desktop.siteId) }, 'Desktop retrieved'), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/status',
    summary: 'Get a desktop’s status',
    security,
    request: { params: IdParams },
    responses: { 200: json(StatusOut, 'Current status (PRD 12.2)'), ...errors },
  }),
  async (c) => {
    const id = c.req.valid('param').id;
    const d = DesktopIdSchema.safeParse(id).success ? await c.env.DESKTOP_SESSION.getByName(id).status() : null;
    if (!d || !canAccess(c.var.principal, d)) throw notFound('Desktop');
    const status = {
      id: d.id,
      status: d.status,
      statusMessage: d.statusMessage,
      errorMessage: d.errorMessage,
      updatedAt: d.updatedAt,
      siteBridge: await siteBridge(c.env, d.siteId),
    };
    return c.json(success(status, `Desktop is ${d.status}`), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/events',
    summary: 'Every status transition, with time, actor and reason',
    security,
    request: { params: IdParams },
    responses: { 200: json(z.array(TransitionRecordSchema), 'Transitions, oldest first'), ...errors },
  }),
  async (c) => {
    const { stub } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    const events = await stub.history();
    return c.json(success(events, `${events.length} transitions`), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/connect',
    summary: 'Get a connection URL (PRD 3.2)',
    description: 'A URL that opens the desktop in the Guacamole web client. It works once, within a few minutes, for this desktop only.',
    security,
    request: { params: IdParams },
    responses: { 200: json(ConnectOut, 'Connection URL'), ...errors },
  }),
  async (c) => {
    const { stub, desktop } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    const { ticket, expiresAt } = unwrap(await stub.issueTicket());
    const url = new URL(`/api/v1/connect/${ticket}`, c.req.url).toString();
    c.header('Cache-Control', 'no-store');
    const data = { desktopId: desktop.id, connectionUrl: url, url, expiresAt, protocol: desktop.protocol };
    return c.json(success(data, 'Open the URL to reach the desktop'), 200);
  },
);

for (const action of ['start', 'stop'] as const) {
  desktopRoutes.openapi(
    createRoute({
      method: 'post',
      path: `/{id}/${action}`,
      summary: action === 'start' ? 'Start a STOPPED desktop' : 'Stop a RUNNING desktop',
      security,
      request: { params: IdParams },
      responses: { 202: json(DesktopOut, `${action} initiated`), ...errors },
    }),
    async (c) => {
      const p = c.var.principal;
      const { stub } = await loadDesktop(c.env, p, c.req.valid('param').id);
      const desktop = unwrap(await stub.act(action, actorOf(p)));
      return c.json(success(desktop, `Desktop ${action} initiated.`), 202);
    },
  );
}

desktopRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    summary: 'Delete a desktop, its VM and its connection',
    description: 'Answers 202; the desktop is STOPPING until the VM and the connection are gone, then DELETED.',
    security,
    request: { params: IdParams },
    responses: { 202: json(DesktopOut, 'Deletion initiated'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { stub } = await loadDesktop(c.env, p, c.req.valid('param').id);
    const desktop = unwrap(await stub.act('delete', actorOf(p)));
    return c.json(success(desktop, 'Desktop deletion initiated.'), 202);
  },
);
