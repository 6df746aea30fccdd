/**
 * GET /healthz: each on-prem site and whether its bridge is connected (`connected`,
 * or `offline`), plus whether Postgres answers. Public, like any load balancer probe.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { withDb } from '../db/client';
import { listSites } from '../db/queries';
import { success } from '../lib/envelope';

export const healthRoutes = new Hono<AppEnv>();

healthRoutes.get('/', async (c) => {
  const cfg = c.var.cfg;
  let database: 'ok' | 'unreachable' = 'ok';
  let siteRows: { id: string; name: string }[] = [];
  try {
    siteRows = await withDb(cfg, (db) => listSites(db));
  } catch {
    database = 'unreachable';
    siteRows = [{ id: cfg.DEFAULT_SITE_ID, name: cfg.DEFAULT_SITE_ID }];
  }
  const sites = await Promise.all(
    siteRows.map(async (s) => {
      const st = await c.env.SITE_HUB.getByName(s.id).status();
      return {
        id: s.id,
        name: s.name,
        bridge: st.connected ? ('connected' as const) : ('offline' as const),
        lastSeenAt: st.lastSeenAt,
        bridgeVersion: st.bridgeVersion,
        commandsInFlight: st.inFlight,
      };
    }),
  );
  const healthy = database === 'ok' && sites.every((s) => s.bridge === 'connected');
  const body = success({ status: healthy ? 'ok' : 'degraded', database, sites }, healthy ? 'All systems connected' : 'Degraded');
  c.header('Cache-Control', 'no-store');
  return c.json(body, 200);
});
