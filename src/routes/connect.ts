/**
 * GET /api/v1/connect/{ticket}: the URL that /desktops/{id}/connect hands out. The
 * ticket is the credential (single use, minutes long); opening it asks the site's
 * bridge for a Guacamole session that can only see this desktop's connection and
 * redirects the browser into the Guacamole web client.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { notFound } from '../errors';
import { unwrap } from '../lib/result';
import { DesktopIdSchema } from '../schemas/desktop';

export const connectRoutes = new Hono<AppEnv>();

connectRoutes.get('/:ticket', async (c) => {
  const [desktopId, secret] = c.req.param('ticket').split('.', 2);
  if (!desktopId || !secret || !DesktopIdSchema.safeParse(desktopId).success || !/^[A-Za-z0-9_-]{20,100}$/.test(secret)) {
    throw notFound('Connect link');
  }
  const { siteId, connectionId } = unwrap(await c.env.DESKTOP_SESSION.getByName(desktopId).redeemTicket(secret));
  const { url } = unwrap(await c.env.SITE_HUB.getByName(siteId).openSession(desktopId, connectionId));
  c.header('Cache-Control', 'no-store');
  c.header('Referrer-Policy', 'no-referrer');
  return c.redirect(url, 302);
});
