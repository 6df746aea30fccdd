/**
 * Health. GET /healthz is public, like any load balancer probe, and says only whether the
 * edge is up and its database answers: site names, bridge versions and queue depths are
 * for admins, at GET /api/v1/admin/health.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { withDb } from '../db/client';
import { listSites } from '../db/queries';
import type { Bindings, Config } from '../env';
import { success } from '../lib/envelope';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';

export const HealthOut = z
  .object({
    status: z.enum(['ok', 'degraded']),
    database: z.enum(['ok', 'unreachable']),
    sites: z.array(
      z.object({
        id: z.string(),
        name: z.string(),
        bridge: z.enum(['connected', 'offline']),
        /** When the hub accepted the bridge's current connection. */
        connectedAt: z.string().nullable(),
        lastSeenAt: z.string().nullable(),
        bridgeVersion: z.string().nullable(),
        commandsInFlight: z.number(),
      }),
    ),
  })
  .openapi('Health');
type Health = z.infer<typeof HealthOut>;

async function health(env: Bindings, cfg: Config): Promise<Health> {
  let database: Health['database'] = 'ok';
  let siteRows: { id: string; name: string }[];
  try {
    siteRows = await withDb(cfg, (db) => listSites(db));
  } catch {
    database = 'unreachable';
    siteRows = [{ id: cfg.DEFAULT_SITE_ID, name: cfg.DEFAULT_SITE_ID }];
  }
  const sites = await Promise.all(
    siteRows.map(async (s) => {
      const st = await env.SITE_HUB.getByName(s.id).status();
      return {
        id: s.id,
        name: s.name,
        bridge: st.connected ? ('connected' as const) : ('offline' as const),
        connectedAt: st.connectedAt,
        lastSeenAt: st.lastSeenAt,
        bridgeVersion: st.bridgeVersion,
        commandsInFlight: st.inFlight,
      };
    }),
  );
  const healthy = database === 'ok' && sites.every((s) => s.bridge === 'connected');
  return { status: healthy ? 'ok' : 'degraded', database, sites };
}

export const healthRoutes = new Hono<AppEnv>();

healthRoutes.get('/', async (c) => {
  let up = true;
  try {
    await withDb(c.var.cfg, async () => {});
  } catch {
    up = false;
  }
  c.header('Cache-Control', 'no-store');
  return c.json(success({ status: up ? 'ok' : 'degraded' }, up ? 'Up' : 'Degraded: the database is unreachable'), 200);
});

/** Mounted under /api/v1/admin (admins only). */
export const adminHealthRoutes = new OpenAPIHono<AppEnv>();

adminHealthRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/health',
    summary: 'Each site and its bridge (version, last heartbeat, commands in flight), and whether Postgres answers',
    security: bearerAuth,
    responses: {
      200: jsonSpec(HealthOut, 'Health in detail'),
      401: errorSpec('Missing or invalid token'),
      403: errorSpec('Not an admin'),
    },
  }),
  async (c) => {
    const body = await health(c.env, c.var.cfg);
    c.header('Cache-Control', 'no-store');
    return c.json(success(body, body.status === 'ok' ? 'All systems connected' : 'Degraded'), 200);
  },
);
