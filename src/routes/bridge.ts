/**
 * GET /api/v1/sites/{siteId}/bridge: the on-prem bridge dials out here and upgrades to
 * a WebSocket. The site's hub checks the key against the SHA-256 it keeps (no database
 * round trip, so bridges log in while Postgres is down) before the upgrade reaches it,
 * so an unauthenticated peer never holds a socket.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { ApiError } from '../errors';
import { sha256Hex } from '../lib/ids';

export const bridgeRoutes = new Hono<AppEnv>();

bridgeRoutes.get('/:siteId/bridge', async (c) => {
  const siteId = c.req.param('siteId');
  const key = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (!key) throw new ApiError('UNAUTHORIZED', 'Missing site key: send Authorization: Bearer <site key>');
  if (!/^[a-z0-9-]{1,63}$/.test(siteId)) throw new ApiError('UNAUTHORIZED', 'Invalid site credentials');
  const hub = c.env.SITE_HUB.getByName(siteId);
  const verdict = await hub.authenticate(await sha256Hex(key));
  if (verdict === 'unavailable') throw new ApiError('DATABASE_UNAVAILABLE', 'The site cannot be checked right now; try again shortly');
  if (verdict !== 'ok') throw new ApiError('UNAUTHORIZED', 'Invalid site credentials');
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') throw new ApiError('BAD_REQUEST', 'Expected a WebSocket upgrade');
  const res = await hub.fetch(c.req.raw);
  // Re-wrap so the common middleware may still add its headers (a DO's response is immutable).
  return new Response(res.body, { status: res.status, headers: res.headers, webSocket: res.webSocket });
});
