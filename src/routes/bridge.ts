/**
 * GET /api/v1/sites/{siteId}/bridge: the on-prem bridge dials out here and upgrades to
 * a WebSocket. The site key is checked against its stored SHA-256 before the upgrade
 * reaches the site's hub, so an unauthenticated peer never holds a socket.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { withDb } from '../db/client';
import { siteKeyHash } from '../db/queries';
import { ApiError } from '../errors';
import { sha256Hex, timingSafeEqualHex } from '../lib/ids';

export const bridgeRoutes = new Hono<AppEnv>();

bridgeRoutes.get('/:siteId/bridge', async (c) => {
  const siteId = c.req.param('siteId');
  const key = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (!key) throw new ApiError('UNAUTHORIZED', 'Missing site key: send Authorization: Bearer <site key>');
  const stored = /^[a-z0-9-]{1,63}$/.test(siteId) ? await withDb(c.var.cfg, (db) => siteKeyHash(db, siteId)) : null;
  if (!stored || !timingSafeEqualHex(await sha256Hex(key), stored)) throw new ApiError('UNAUTHORIZED', 'Invalid site credentials');
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') throw new ApiError('BAD_REQUEST', 'Expected a WebSocket upgrade');
  const headers = new Headers(c.req.raw.headers);
  headers.set('x-site-id', siteId);
  const res = await c.env.SITE_HUB.getByName(siteId).fetch(new Request(c.req.raw.url, { headers }));
  // Re-wrap so the common middleware may still add its headers (a DO's response is immutable).
  return new Response(res.body, { status: res.status, headers: res.headers, webSocket: res.webSocket });
});
