/**
 * Warm pools for admins (issue 13): `/api/v1/admin/pools`. A pool keeps ready desktops of
 * one template at one site; a create for that template is answered by one of them
 * (`claimedFromPool`), and falls back to a cold create on a miss. An admin makes, changes,
 * pauses and removes pools, and sees each one's target and why, its members, its hits,
 * misses and how long a hit's claim took.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { ApiError, notFound } from '../errors';
import { success } from '../lib/envelope';
import { forgetPoolLookups, poolDirectory } from '../lib/pool-claim';
import { unwrap } from '../lib/result';
import { cachedTemplate } from '../lib/template-cache';
import { type Pool, PoolIdSchema, PoolInputSchema, PoolSchema, type PoolView, PoolViewSchema } from '../schemas/pool';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const adminPoolRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not an admin'),
} as const;
const idParam = z.object({ poolId: PoolIdSchema.openapi({ param: { name: 'poolId', in: 'path' } }) });

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null);

/** A pool with what its shards show, added up. */
async function viewOf(env: AppEnv['Bindings'], pool: Pool): Promise<PoolView> {
  const shards = (await poolDirectory(env).shardViews(pool.id)) ?? [];
  const sum = (f: (s: (typeof shards)[number]) => number) => shards.reduce((n, s) => n + f(s), 0);
  const claimMs = shards.flatMap((s) => s.claimMs).sort((a, b) => a - b);
  return {
    ...pool,
    target: {
      running: sum((s) => s.target?.running ?? 0),
      stopped: sum((s) => s.target?.stopped ?? 0),
      // The shards share one sizing: their reasons are the same sentences with their own share of the counts.
      reasons:
        shards.length > 1
          ? shards.flatMap((s, i) => (s.target?.reasons ?? []).map((r) => `shard ${i}: ${r}`))
          : (shards[0]?.target?.reasons ?? []),
    },
    members: shards.flatMap((s) => s.members.map((m) => ({ ...m, since: new Date(m.since).toISOString() }))),
    stats: {
      hits: sum((s) => s.counters.hits),
      warmHits: sum((s) => s.counters.warmHits),
      misses: sum((s) => s.counters.misses),
      replaced: sum((s) => s.counters.replaced),
      claimP50Ms: percentile(claimMs, 50),
      claimP95Ms: percentile(claimMs, 95),
    },
  };
}

adminPoolRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/pools',
    summary: 'Warm pools',
    security: bearerAuth,
    responses: { 200: jsonSpec(z.array(PoolSchema), 'Every pool'), ...errors },
  }),
  async (c) => c.json(success(await poolDirectory(c.env).list(), 'Warm pools'), 200),
);

adminPoolRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/pools/{poolId}',
    summary: 'A warm pool: its target and why, its members, hits, misses and claim times',
    security: bearerAuth,
    request: { params: idParam },
    responses: { 200: jsonSpec(PoolViewSchema, 'The pool now'), ...errors, 404: errorSpec('No such pool') },
  }),
  async (c) => {
    const { poolId } = c.req.valid('param');
    const pool = await poolDirectory(c.env).get(poolId);
    if (!pool) throw notFound('Pool');
    return c.json(success(await viewOf(c.env, pool), 'Warm pool'), 200);
  },
);

adminPoolRoutes.openapi(
  createRoute({
    method: 'put',
    path: '/pools/{poolId}',
    summary: 'Create or change a warm pool',
    description:
      'One pool per template and site. Its members are built from the template as it is now (save the pool again after changing the template). ' +
      'Creates for the template that ask for its default plan are answered from the pool; others, and misses, are built cold. ' +
      'Set `paused` to stop building and moving members (what is ready is still handed out). ' +
      'A Selkies template’s pool keeps pods running on their nodes (image pulled, no user’s home): a claim answers STARTING and replaces the pod with one that mounts the claimer’s home on the same node, without an image pull; such a pool has no stopped tier.',
    security: bearerAuth,
    request: { params: idParam, body: { required: true, content: { 'application/json': { schema: PoolInputSchema } } } },
    responses: {
      200: jsonSpec(PoolSchema, 'The pool as stored'),
      ...errors,
      409: errorSpec('Another pool serves this template at this site'),
    },
  }),
  async (c) => {
    const { poolId } = c.req.valid('param');
    const input = c.req.valid('json');
    const template = await cachedTemplate(c.var.cfg, input.templateId);
    if (!template || template.retiredAt) throw new ApiError('VALIDATION_FAILED', `Unknown template ${input.templateId}`);
    // A stopped Selkies desktop is no pod at all: a stopped tier would warm nothing (its next start may land anywhere).
    const stopped = input.sizing.stopped > 0 || input.sizing.windows.some((w) => (w.stopped ?? 0) > 0);
    if (template.backend === 'selkies' && stopped) {
      throw new ApiError(
        'VALIDATION_FAILED',
        `Template ${template.id} runs Selkies pods: its pool has a running tier only (a stopped pod is no pod, it keeps nothing warm); set stopped to 0`,
      );
    }
    const now = new Date().toISOString();
    const pool: Pool = { ...input, id: poolId, siteId: input.siteId ?? c.var.cfg.DEFAULT_SITE_ID, createdAt: now, updatedAt: now };
    const stored = unwrap(await poolDirectory(c.env).put(pool, template));
    forgetPoolLookups();
    c.set('auditTarget', poolId);
    return c.json(success(stored, `Pool ${poolId} saved`), 200);
  },
);

adminPoolRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/pools/{poolId}',
    summary: 'Remove a warm pool',
    description: 'Its unclaimed members are destroyed; desktops already claimed from it are their owners’ and stay.',
    security: bearerAuth,
    request: { params: idParam },
    responses: { 200: jsonSpec(PoolSchema, 'The pool removed'), ...errors, 404: errorSpec('No such pool') },
  }),
  async (c) => {
    const { poolId } = c.req.valid('param');
    const removed = unwrap(await poolDirectory(c.env).remove(poolId));
    forgetPoolLookups();
    c.set('auditTarget', poolId);
    return c.json(success(removed, `Pool ${poolId} removed; its unclaimed members are being destroyed`), 200);
  },
);
