/**
 * Webhook subscriptions (POST/GET/DELETE /api/v1/webhooks) and their delivery log.
 * A user subscribes to their own desktops; a service to the desktops it created; an
 * admin to all. The signing secret is answered once, at creation.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq, isNull } from 'drizzle-orm';
import type { AppEnv } from '../app-env';
import { type Principal, isAdmin, isService } from '../auth/jwt';
import { withDb } from '../db/client';
import { describeDbError } from '../db/errors';
import { webhookDeliveries, webhooks } from '../db/schema';
import { ApiError, notFound } from '../errors';
import { success } from '../lib/envelope';
import { randomId, randomToken } from '../lib/ids';
import { encryptSecret } from '../lib/secret-box';
import { EVENT_TYPES, EventTypeSchema } from '../schemas/events';
import { adminUntil, endAdminScope } from '../webhooks/admin-scope';
import { type DeliveryReason, refuseAtRegistration } from '../webhooks/target';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const webhookRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

// Someone here without the admin role may be a demoted admin: their all-desktops subscriptions end now.
webhookRoutes.use('*', async (c, next) => {
  const p = c.var.principal;
  if (!isAdmin(p)) {
    c.executionCtx.waitUntil(
      endAdminScope(c.var.cfg, p).catch((err: unknown) =>
        console.warn(JSON.stringify({ msg: 'could not end admin webhooks', error: describeDbError(err) })),
      ),
    );
  }
  await next();
});

const security = bearerAuth;
const json = jsonSpec;
const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  404: errorSpec('No such webhook (or not yours)'),
} as const;

const roleOf = (p: Principal) => (isAdmin(p) ? 'admin' : isService(p) ? 'service' : 'user');

export const WebhookOut = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(EventTypeSchema),
    scope: z.string().openapi({ description: 'Whose desktops: own (user), created by this service, or all (admin)' }),
    adminUntil: z.string().nullable().openapi({
      description:
        'An admin’s subscription is delivered until then; using the API as an admin moves it WEBHOOK_ADMIN_DAYS ahead, using it without the role ends it',
    }),
    description: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Webhook');

const CreateWebhookSchema = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .openapi({ example: 'https://app.example.com/hooks/desktops' }),
  events: z
    .array(EventTypeSchema)
    .min(1)
    .max(EVENT_TYPES.length)
    .default([...EVENT_TYPES])
    .openapi({ description: `Event types to receive (default: all). One of: ${EVENT_TYPES.join(', ')}` }),
  // Postgres refuses NUL in text: a control character here was a 500 (found by test/edge/security/fuzz.test.ts).
  description: z
    .string()
    .trim()
    .max(200)
    .regex(/^[^\p{Cc}]*$/u, 'description must not contain control characters')
    .optional(),
});

const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });

function view(row: typeof webhooks.$inferSelect) {
  const scope =
    row.ownerRole === 'admin'
      ? 'all desktops'
      : row.ownerRole === 'service'
        ? `desktops created by ${row.ownerSub}`
        : `desktops of ${row.ownerSub}`;
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.eventTypes) as z.infer<typeof EventTypeSchema>[],
    scope,
    description: row.description,
    createdAt: row.createdAt,
    adminUntil: row.adminUntil,
  };
}

/** The caller's own live subscription `id`, or 404. */
async function ownWebhook(c: { var: AppEnv['Variables'] }, id: string) {
  const p = c.var.principal;
  if (!/^wh[a-z2-7]{20}$/.test(id)) throw notFound('Webhook');
  const [row] = await withDb(c.var.cfg, (db) =>
    db
      .select()
      .from(webhooks)
      .where(and(eq(webhooks.id, id), isNull(webhooks.deletedAt))),
  );
  const mine = row && row.ownerSub === p.sub && row.ownerRole === roleOf(p);
  if (!row || !(mine || isAdmin(p))) throw notFound('Webhook');
  return row;
}

webhookRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Subscribe a URL to desktop events',
    description:
      'Deliveries are POSTs of {id, type, createdAt, data} with X-Webhook-Id (the event id, for deduplication) and X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>. The secret is in this answer only.',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: CreateWebhookSchema } } } },
    responses: {
      201: json(WebhookOut.extend({ secret: z.string() }), 'The subscription and its signing secret (shown once)'),
      ...errors,
      409: errorSpec('Too many subscriptions (WEBHOOK_MAX_PER_OWNER)'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const body = c.req.valid('json');
    const url = new URL(body.url);
    const refused = refuseAtRegistration(url, c.var.cfg);
    if (refused) throw new ApiError('VALIDATION_FAILED', refused);
    const secret = `whsec_${randomToken()}`;
    const row = {
      id: randomId('wh'),
      ownerRole: roleOf(p),
      ownerSub: p.sub,
      url: url.toString(),
      eventTypes: JSON.stringify([...new Set(body.events)]),
      // Encrypted at rest: the edge needs it again to sign each delivery, so a hash would not do.
      secret: await encryptSecret(c.var.cfg, secret),
      description: body.description ?? null,
      createdAt: new Date().toISOString(),
      deletedAt: null,
      adminUntil: isAdmin(p) ? adminUntil(c.var.cfg) : null,
    };
    const max = c.var.cfg.WEBHOOK_MAX_PER_OWNER;
    const added = await withDb(c.var.cfg, async (db) => {
      const mine = and(eq(webhooks.ownerRole, row.ownerRole), eq(webhooks.ownerSub, row.ownerSub), isNull(webhooks.deletedAt));
      const [live] = await db.select({ n: count() }).from(webhooks).where(mine);
      if ((live?.n ?? 0) >= max) return false;
      await db.insert(webhooks).values(row);
      return true;
    });
    if (!added) {
      throw new ApiError('QUOTA_EXCEEDED', `You have ${max} webhook subscriptions, the most allowed; delete one first`);
    }
    c.header('Cache-Control', 'no-store');
    c.header('Location', `/api/v1/webhooks/${row.id}`);
    return c.json(success({ ...view(row), secret }, 'Subscribed; keep the secret, it is not shown again'), 201);
  },
);

webhookRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'Your webhook subscriptions',
    security,
    responses: { 200: json(z.array(WebhookOut), 'Subscriptions'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const rows = await withDb(c.var.cfg, (db) =>
      db
        .select()
        .from(webhooks)
        .where(and(eq(webhooks.ownerSub, p.sub), eq(webhooks.ownerRole, roleOf(p)), isNull(webhooks.deletedAt)))
        .orderBy(desc(webhooks.createdAt)),
    );
    return c.json(success(rows.map(view), `${rows.length} subscriptions`), 200);
  },
);

webhookRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    summary: 'A webhook subscription',
    security,
    request: { params: IdParam },
    responses: { 200: json(WebhookOut, 'Subscription'), ...errors },
  }),
  async (c) => c.json(success(view(await ownWebhook(c, c.req.valid('param').id)), 'Subscription'), 200),
);

webhookRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    summary: 'Unsubscribe (deliveries in flight are dropped)',
    security,
    request: { params: IdParam },
    responses: { 200: json(WebhookOut, 'Removed'), ...errors },
  }),
  async (c) => {
    const row = await ownWebhook(c, c.req.valid('param').id);
    await withDb(c.var.cfg, (db) => db.update(webhooks).set({ deletedAt: new Date().toISOString() }).where(eq(webhooks.id, row.id)));
    return c.json(success(view(row), 'Unsubscribed'), 200);
  },
);

const REASONS = [
  'http_status',
  'redirect',
  'timeout',
  'connection_failed',
  'unresolvable',
  'resolver_unavailable',
  'private_address',
  'gave_up',
] as const satisfies readonly DeliveryReason[];

export const DeliveryOut = z.object({
  eventId: z.string(),
  eventType: z.string(),
  attempt: z.number().openapi({ description: 'Which try this was (1 = the first)' }),
  outcome: z.enum(['delivered', 'failed', 'refused', 'dead']).openapi({
    description:
      'delivered; failed (tried again later); refused (the target is not a public address: nothing was sent, and nothing will be); dead (failed after `attempt` tries)',
  }),
  reason: z
    .enum(REASONS)
    .nullable()
    .openapi({ description: 'Why it did not deliver: the class only, not what the remote said or how long it took' }),
  at: z.string().openapi({ description: 'When the attempt started' }),
});

webhookRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/deliveries',
    summary: 'Every delivery attempt of a subscription, newest first',
    security,
    request: { params: IdParam, query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }) },
    responses: { 200: json(z.array(DeliveryOut), 'Attempts'), ...errors },
  }),
  async (c) => {
    const row = await ownWebhook(c, c.req.valid('param').id);
    const rows = await withDb(c.var.cfg, (db) =>
      db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.webhookId, row.id))
        .orderBy(desc(webhookDeliveries.at), desc(webhookDeliveries.id))
        .limit(c.req.valid('query').limit),
    );
    const out = rows.map((r) => ({
      eventId: r.eventId,
      eventType: r.eventType,
      attempt: r.attempt,
      outcome: DeliveryOut.shape.outcome.catch('failed').parse(r.outcome),
      // Rows of older releases hold free text here: shown as no class rather than as the remote's words.
      reason: DeliveryOut.shape.reason.catch(null).parse(r.error),
      at: r.at,
    }));
    return c.json(success(out, `${out.length} attempts`), 200);
  },
);
