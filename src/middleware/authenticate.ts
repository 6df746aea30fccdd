/**
 * Authentication of the API: a desktop token (../auth/desktop-token) is judged here, against
 * the one desktop and the four routes it opens; every other request goes to requireAuth
 * (bearer JWT or the dashboard's session). Mounted in front of every authenticated route
 * group, so a desktop token sent anywhere else is refused with a 403 that says why.
 */
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { isDesktopToken, principalOfDesktopToken } from '../auth/desktop-token';
import { requireAuth } from './auth';

const BEARER = /^Bearer\s+(\S+)$/i;

export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const token = BEARER.exec(c.req.header('authorization')?.trim() ?? '')?.[1];
  if (!token || !isDesktopToken(token)) return requireAuth(c, next);
  c.set('principal', await principalOfDesktopToken(c.var.cfg, token, c.req.method, c.req.path));
  await next();
});
