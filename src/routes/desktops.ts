/**
 * The PRD desktop API (appendix 12.1) under /api/v1/desktops. Reads of one desktop go
 * to its Durable Object (the source of truth); lists as src/lib/desktop-list.ts says.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { desktopScopeOf } from '../auth/desktop-token';
import { actorOf, isAdmin, isService, type Principal } from '../auth/jwt';
import { actsAsService, describeNamespace, inNamespace, serviceAccountName, serviceMaxDesktops } from '../auth/tenancy';
import { type Config, config } from '../env';
import { ApiError, notFound } from '../errors';
import { idempotentCreate } from '../middleware/idempotency';
import { IdempotencyKeySchema } from '../lib/idempotency';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { success } from '../lib/envelope';
import { randomId } from '../lib/ids';
import { listDesktopsFor } from '../lib/desktop-list';
import { newDesktop } from '../lib/new-desktop';
import { cachedTemplate } from '../lib/template-cache';
import { claimFromPool, poolFor } from '../lib/pool-claim';
import { isPoolMember } from '../schemas/pool';
import { TemplateIdSchema } from '../schemas/template';
import { UserIdSchema } from '../schemas/user-id';
import { DEFAULT_LAUNCH, type LaunchSpec } from '../lib/launch';
import { browserIceServers } from '../lib/session-turn';
import { unwrap } from '../lib/result';
import { siteBridge } from '../lib/site-link';
import { type Desktop, DesktopIdSchema, DesktopSchema, DesktopStatusSchema, PlanSchema, TransitionRecordSchema } from '../schemas/desktop';
import { validationHook } from './validation';
import { findSnapshot, refuseUnlessVm, snapshotCapableListing } from '../lib/snapshots';
import { SnapshotNameSchema } from '../schemas/snapshot';

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
      .optional()
      .openapi({ example: 'Content Creation Workspace', description: "Default: the template's name, or 'Cloud Desktop'" }),
    // Plans are upper case in the PRD; "premium" from a lenient client means the same.
    plan: z
      .preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), PlanSchema)
      .optional()
      .openapi({ example: 'PREMIUM', description: "Default: the template's plan, or BASIC" }),
    protocol: z
      .enum(['vnc', 'rdp'], { error: 'protocol must be vnc or rdp (SPICE is not supported by any Guacamole release)' })
      .optional()
      .openapi({ description: 'Proxmox desktops without a template: vnc (default) or rdp; a template decides its own' }),
    templateId: TemplateIdSchema.optional().openapi({
      description: 'A template from GET /api/v1/templates; without one, the default VM template',
      example: 'gpu-workstation',
    }),
    idleTimeoutMinutes: z.number().min(0.1).max(10_080).optional().openapi({
      description: 'Stop after this long without activity: whole minutes up to the default; admins may ask for anything',
      example: 30,
    }),
    maxSessionMinutes: z
      .number()
      .int()
      .min(1)
      .max(10_080)
      .optional()
      .openapi({ description: 'Stop after running this long (a warning goes out first)', example: 240 }),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: 'Delete the desktop at this time (a warning goes out first)', example: '2026-12-31T18:00:00Z' }),
    forkOf: z
      .strictObject({ desktopId: DesktopIdSchema, snapshot: SnapshotNameSchema })
      .optional()
      .openapi({
        description:
          'Fork: the new desktop is a linked clone of this desktop’s VM at this snapshot (you must be allowed to read that desktop). It takes that desktop’s template, protocol and site (and its plan, unless you give one)',
        example: { desktopId: 'dk5v2m7q3x9a4b6c8d0e1f', snapshot: 'before-upgrade' },
      }),
  })
  .openapi('CreateDesktopRequest');

/** A desktop's id in the path, for every /desktops/{id}/… route. */
export const IdParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'dk5v2m7q3x9a4b6c8d0e1f' }) });

const ListQuery = z.object({
  status: DesktopStatusSchema.optional(),
  plan: PlanSchema.optional(),
  userId: UserIdSchema.optional().openapi({ description: 'Admins (and services, for their own desktops) only' }),
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
});

const DesktopOut = DesktopSchema.openapi('Desktop');
const PageOut = z
  .object({
    items: z.array(DesktopOut),
    page: z.number(),
    pageSize: z.number(),
    total: z.number(),
    totalPages: z.number(),
    consistency: z.enum(['current', 'eventual']).openapi({
      description:
        "current: every desktop as GET /{id}/status shows it now (your own list, a service's, an admin's for one userId). eventual: the fleet-wide list of an admin, read from the database copy, which each desktop updates a moment after it changes",
    }),
    asOf: z.string().openapi({ description: 'When the list was read; for an eventual list, changes made just before may be missing' }),
  })
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
  connectionUrl: z.string().openapi({
    description:
      'VNC/RDP desktops: open within expiresAt, once; it opens the desktop in the Guacamole web client. WebRTC (Selkies) desktops: the session’s own address',
  }),
  url: z.string().openapi({ description: 'The same as connectionUrl' }),
  expiresAt: z.string().openapi({ description: 'Until when the link (or, for WebRTC, the TURN credentials) work' }),
  protocol: z.string(),
  credentials: z
    .object({ username: z.string(), password: z.string() })
    .optional()
    .openapi({ description: 'WebRTC desktops: the Basic credentials of the session’s web client' }),
  iceServers: z
    .array(z.object({ urls: z.array(z.string()), username: z.string().optional(), credential: z.string().optional() }))
    .optional()
    .openapi({ description: 'WebRTC desktops: STUN/TURN servers with short-lived credentials (coturn shared-secret scheme)' }),
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

/**
 * A user acts on their own desktops; admins on all; a service on those it created for the users of its namespace;
 * a desktop token on its one desktop.
 */
export function canAccess(p: Principal, d: Pick<Desktop, 'id' | 'userId' | 'createdBy'>, cfg: Config): boolean {
  const scope = desktopScopeOf(p);
  if (scope) return scope.desktopId === d.id && d.userId === p.sub;
  if (isAdmin(p)) return true;
  // A warm pool's unclaimed member is nobody's yet (a user id that looks like a pool's owns nothing).
  if (isPoolMember(d)) return false;
  if (isService(p)) return d.createdBy === actorOf(p) && inNamespace(cfg, p.sub, d.userId);
  return d.userId === p.sub;
}

/** Whose desktop a create makes: services must name a user of their namespace, users may only name themselves. */
function targetUser(p: Principal, requested: string | undefined, cfg: Config): string {
  if (actsAsService(p)) {
    if (!requested) throw new ApiError('VALIDATION_FAILED', 'userId is required when a service creates a desktop');
    if (!inNamespace(cfg, p.sub, requested)) {
      throw new ApiError('FORBIDDEN', `Service ${p.sub} may only create desktops for ${describeNamespace(cfg, p.sub)}`);
    }
    return requested;
  }
  if (requested && requested !== p.sub && !isAdmin(p)) throw new ApiError('FORBIDDEN', 'You can only create desktops for yourself');
  return requested ?? p.sub;
}

export const desktopRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

/**
 * The desktop a fork clones, once the caller may read it, it is a VM on storage that takes snapshots, and it has the
 * snapshot named. The fork takes its template and protocol: asking for others is refused rather than ignored.
 */
async function forkSource(
  env: AppEnv['Bindings'],
  p: Principal,
  forkOf: { desktopId: string; snapshot: string },
  body: { templateId?: string; protocol?: string },
): Promise<Desktop> {
  const { desktop: source } = await loadDesktop(env, p, forkOf.desktopId);
  refuseUnlessVm(source);
  if (body.templateId !== undefined && body.templateId !== source.templateId) {
    throw new ApiError('VALIDATION_FAILED', `A fork takes the template of desktop ${source.id}; leave templateId out`);
  }
  if (body.protocol !== undefined && body.protocol !== source.protocol) {
    throw new ApiError('VALIDATION_FAILED', `A fork opens over ${source.protocol}, as desktop ${source.id} does; leave protocol out`);
  }
  findSnapshot(await snapshotCapableListing(env, source), source, forkOf.snapshot);
  return source;
}

export async function loadDesktop(env: AppEnv['Bindings'], p: Principal, id: string) {
  if (!DesktopIdSchema.safeParse(id).success) throw notFound('Desktop');
  const stub = env.DESKTOP_SESSION.getByName(id);
  const desktop = await stub.get();
  // Another user's desktop is indistinguishable from a missing one.
  if (!desktop || !canAccess(p, desktop, config(env))) throw notFound('Desktop');
  return { stub, desktop };
}

desktopRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Create a desktop',
    description:
      'Answers 202 at once (PENDING); provisioning continues asynchronously (PRD 3.1). When the template has a warm pool with a ready desktop (and the create asks for the template’s default plan), the answer is that desktop, already RUNNING (or STARTING, from the pool’s stopped tier), with `claimedFromPool` set; it is yours as if it had been built for you. Send an Idempotency-Key to make retries safe. With `forkOf` the desktop is a linked clone of another desktop’s snapshot (404 if you may not read that desktop or it has no such snapshot; 409 SNAPSHOTS_UNSUPPORTED for a WebRTC desktop or storage that cannot take snapshots).',
    security,
    middleware: [idempotentCreate] as const,
    request: {
      headers: z.object({ 'idempotency-key': IdempotencyKeySchema.optional() }),
      body: { required: true, content: { 'application/json': { schema: CreateDesktopSchema } } },
    },
    responses: {
      202: json(DesktopOut, 'Creation initiated (or, for a repeated Idempotency-Key, the desktop it created)'),
      ...errors,
      409: errorSpec('Over quota, no GPU capacity, or a create with this Idempotency-Key still being handled'),
      422: errorSpec('This Idempotency-Key was used for a create with a different body'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const body = c.req.valid('json');
    const userId = targetUser(p, body.userId, c.var.cfg);
    const cfg = c.var.cfg;
    const source = body.forkOf ? await forkSource(c.env, p, body.forkOf, body) : null;
    const templateId = source ? source.templateId : body.templateId;
    const template = templateId ? await cachedTemplate(cfg, templateId) : null;
    if (source && templateId && !template) {
      throw new ApiError('VALIDATION_FAILED', `Desktop ${source.id} was made from template ${templateId}, which no longer exists`);
    }
    if (!source && body.templateId && (!template || template.retiredAt)) {
      throw new ApiError('VALIDATION_FAILED', `Unknown template ${body.templateId}; GET /api/v1/templates lists what you may launch`);
    }
    // Users may ask for less idle time than the template (or the site default) allows; admins for anything.
    const defaultIdle = template?.idleTimeoutMinutes ?? cfg.IDLE_TIMEOUT_MINUTES;
    const idle = body.idleTimeoutMinutes;
    if (idle !== undefined && !isAdmin(p) && (!Number.isInteger(idle) || idle < 1 || idle > defaultIdle)) {
      throw new ApiError(
        'VALIDATION_FAILED',
        `idleTimeoutMinutes must be a whole number from 1 to ${defaultIdle} (only admins may ask for anything else)`,
      );
    }
    const maxSession = body.maxSessionMinutes ?? template?.maxSessionMinutes ?? null;
    if (template?.maxSessionMinutes && body.maxSessionMinutes && body.maxSessionMinutes > template.maxSessionMinutes && !isAdmin(p)) {
      throw new ApiError('VALIDATION_FAILED', `maxSessionMinutes may be at most ${template.maxSessionMinutes} for template ${template.id}`);
    }
    if (body.expiresAt !== undefined && Date.parse(body.expiresAt) <= Date.now()) {
      throw new ApiError('VALIDATION_FAILED', 'expiresAt must be in the future');
    }
    if (template && body.protocol && body.protocol !== template.protocol) {
      throw new ApiError('VALIDATION_FAILED', `Template ${template.id} opens over ${template.protocol}; leave protocol out`);
    }
    const desktop = newDesktop({
      id: c.var.idempotentDesktopId ?? randomId('dk'),
      userId,
      name: body.name ?? (source ? `${source.name.slice(0, 93)} (fork)` : undefined) ?? template?.name ?? 'Cloud Desktop',
      plan: body.plan ?? source?.plan ?? template?.defaultPlan ?? 'BASIC',
      protocol: source?.protocol ?? template?.protocol ?? body.protocol ?? 'vnc',
      // A linked clone lives beside the VM it is cloned from.
      siteId: source?.siteId ?? cfg.DEFAULT_SITE_ID,
      createdBy: actorOf(p),
      idleTimeoutMinutes: idle ?? defaultIdle,
      maxSessionMinutes: maxSession,
      expiresAt: body.expiresAt ? new Date(body.expiresAt).toISOString() : null,
      templateId: template?.id ?? null,
      backend: template?.backend ?? 'proxmox',
      gpuSlots: template?.gpuSlots ?? 0,
    });
    const launch: LaunchSpec = {
      ...(template
        ? { vmTemplate: template.vmTemplate, image: template.image, storageGb: template.storageGb, gpu: null, turn: null }
        : DEFAULT_LAUNCH),
      ...(body.forkOf ? { forkOf: body.forkOf } : {}),
    };
    if (body.forkOf) c.set('auditDetails', { forkOf: body.forkOf });
    // The desktop takes its quota slots and GPU booking itself, and gives them back if it cannot be created.
    const admission = {
      unlimited: isAdmin(p) && userId === p.sub,
      // A service's desktops also count against its own quota (src/auth/tenancy.ts).
      service: actsAsService(p)
        ? { account: serviceAccountName(p.sub), label: `service ${p.sub}`, limit: serviceMaxDesktops(cfg, p.sub) }
        : null,
    };
    // A create that asks for nothing a ready member lacks is answered from its template's warm pool, if it has one.
    const pool =
      template && !source && (!body.plan || body.plan === template.defaultPlan) ? await poolFor(c.env, template.id, desktop.siteId) : null;
    if (pool) {
      const { userId: owner, createdBy, name, idleTimeoutMinutes, maxSessionMinutes, expiresAt } = desktop;
      const claim = { owner: { userId: owner, createdBy, name, idleTimeoutMinutes, maxSessionMinutes, expiresAt }, admission };
      const claimed = unwrap(await claimFromPool(c.env, pool, { ...claim, actor: actorOf(p), requestId: c.var.requestId }));
      if (claimed) {
        c.set('auditDetails', { claimedFromPool: pool.id });
        c.set('createdDesktopId', claimed.id);
        c.header('Location', `/api/v1/desktops/${claimed.id}`);
        return c.json(success(claimed, `Desktop taken ready from warm pool ${pool.id}.`), 202);
      }
    }
    const created = unwrap(
      await c.env.DESKTOP_SESSION.getByName(desktop.id).create({
        desktop,
        actor: actorOf(p),
        launch,
        admission,
        requestId: c.var.requestId,
      }),
    );
    c.header('Location', `/api/v1/desktops/${created.id}`);
    return c.json(success(created, 'Desktop creation initiated successfully.'), 202);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'List desktops',
    description:
      'Your desktops (a service: those it created; admins: everyone’s), newest first; DELETED ones only when filtered by status. Your own and a service’s lists, and an admin’s list for one userId, show each desktop in the status GET /{id}/status shows, at once; an admin’s fleet-wide list is read from the database copy and may lag by a moment (consistency, asOf).',
    security,
    request: { query: ListQuery },
    responses: { 200: json(PageOut, 'A page of desktops'), ...errors },
  }),
  async (c) => {
    const page = await listDesktopsFor(c.env, c.var.cfg, c.var.principal, c.req.valid('query'));
    return c.json(success(page, `${page.total} desktop${page.total === 1 ? '' : 's'}`), 200);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/user/{userId}',
    summary: "A user's desktops",
    description:
      'Their active (not DELETED) desktops, newest first (up to 100), read from the desktops themselves: current, and available while Postgres is unreachable. A service sees those it created.',
    security,
    request: { params: z.object({ userId: UserIdSchema.openapi({ param: { name: 'userId', in: 'path' } }) }) },
    responses: { 200: json(z.array(DesktopOut), 'The user’s active desktops'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { userId } = c.req.valid('param');
    if (userId !== p.sub && !isAdmin(p) && !isService(p)) throw new ApiError('FORBIDDEN', 'You can only see your own desktops');
    const { items } = await listDesktopsFor(c.env, c.var.cfg, p, { userId, page: 1, pageSize: 100 });
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
    if (!d || !canAccess(c.var.principal, d, c.var.cfg)) throw notFound('Desktop');
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
    c.header('Cache-Control', 'no-store');
    if (desktop.backend === 'selkies') {
      const running = unwrap(await stub.connectSelkies());
      const session = unwrap(await c.env.SITE_HUB.getByName(running.siteId).sessionCredentials(running.id));
      const ice = await browserIceServers(c.var.cfg, running);
      const data = {
        desktopId: running.id,
        connectionUrl: session.url,
        url: session.url,
        expiresAt: ice.expiresAt,
        protocol: running.protocol,
        credentials: { username: session.username, password: session.password },
        iceServers: ice.iceServers,
      };
      return c.json(success(data, 'Open the URL and sign in with the credentials'), 200);
    }
    const { ticket, expiresAt } = unwrap(await stub.issueTicket());
    // The ticket rides in the fragment, which browsers never send: see ./connect.ts.
    const url = new URL(`/api/v1/connect#${ticket}`, c.req.url).toString();
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
      // A start is a new run: the desktop books what it needs for it (src/desktop/decide.ts).
      const result = await stub.act({ action, actor: actorOf(p), requestId: c.var.requestId });
      const desktop = unwrap(result);
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
    const desktop = unwrap(await stub.act({ action: 'delete', actor: actorOf(p), requestId: c.var.requestId }));
    return c.json(success(desktop, 'Desktop deletion initiated.'), 202);
  },
);

desktopRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/keepalive',
    summary: 'Record activity: restarts the idle clock and cancels a pending idle stop',
    security,
    request: {
      params: IdParams,
      body: {
        required: false,
        content: {
          'application/json': {
            schema: z.strictObject({
              reason: z
                .string()
                .trim()
                .min(1)
                .max(200)
                .regex(/^[^\p{Cc}]*$/u, 'reason must not contain control characters')
                .optional()
                .openapi({ example: 'rendering a video' }),
            }),
          },
        },
      },
    },
    responses: { 200: json(DesktopOut, 'The desktop, with its new idleStopAt'), ...errors },
  }),
  async (c) => {
    const { stub } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    const desktop = unwrap(await stub.recordActivity('keepalive', c.req.valid('json').reason ?? null));
    return c.json(success(desktop, `Still here: the desktop stops at ${desktop.idleStopAt} unless there is more activity`), 200);
  },
);

/**
 * GET /{id}/live: the desktop's live status. A WebSocket (Upgrade: websocket) served by
 * the desktop's Durable Object, hibernatable; or, for clients that cannot use
 * WebSockets, the same messages as Server-Sent Events (Accept: text/event-stream).
 * The first message is the current state; then every transition, progress step,
 * warning and activity. Authorised like GET /{id}.
 */
desktopRoutes.get('/:id/live', async (c) => {
  const { stub } = await loadDesktop(c.env, c.var.principal, c.req.param('id'));
  const wantsWebSocket = c.req.header('upgrade')?.toLowerCase() === 'websocket';
  const upstream = await stub.fetch(new Request('https://desktop/live', { headers: { upgrade: 'websocket' } }));
  if (wantsWebSocket) return new Response(null, { status: 101, webSocket: upstream.webSocket, headers: new Headers() });
  const ws = upstream.webSocket;
  if (!ws) throw new ApiError('INTERNAL_ERROR', 'the live stream is unavailable');
  return sseFromWebSocket(ws, c.req.raw.signal);
});

/** Relays a live WebSocket as Server-Sent Events (`event: <type>`, `data: <json>`), with a comment every 25 s to keep proxies open. */
function sseFromWebSocket(ws: WebSocket, clientGone: AbortSignal): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  let open = true;
  const end = () => {
    if (!open) return;
    open = false;
    clearInterval(keepAlive);
    ws.close(1000, 'stream ended');
    writer.close().catch(() => {});
  };
  const write = (text: string) => writer.write(encoder.encode(text)).catch(end);
  ws.accept();
  ws.addEventListener('message', (ev) => {
    const data = String(ev.data);
    const type = (JSON.parse(data) as { type?: string }).type ?? 'message';
    void write(`event: ${type}\ndata: ${data}\n\n`);
  });
  ws.addEventListener('close', end);
  ws.addEventListener('error', end);
  clientGone.addEventListener('abort', end);
  const keepAlive = setInterval(() => void write(': keep-alive\n\n'), 25_000);
  void write(': live status of the desktop\n\n');
  return new Response(readable, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
  });
}
