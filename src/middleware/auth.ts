import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { verifyBearer } from '../auth/jwt';
import { renewAdminScope } from '../webhooks/admin-scope';
import { principalOf, renewIfDue, sessionFromCookie } from './session';

/**
 * Verifies the bearer JWT and puts the principal in c.var; every API route behind it needs one.
 * The dashboard's pages call the same API with their session cookie instead (CSRF-checked in
 * sessionFromCookie); a request with an Authorization header is always judged by it alone, so
 * API clients see exactly the bearer-token behaviour they always had.
 */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const authorization = c.req.header('authorization');
  const session = authorization === undefined ? await sessionFromCookie(c) : null;
  const principal = session ? principalOf(session) : await verifyBearer(authorization, c.var.cfg);
  c.set('principal', principal);
  // An admin's all-desktops webhooks last as long as they keep showing the role (src/webhooks/admin-scope.ts).
  renewAdminScope(c, principal);
  await next();
  // A page that keeps calling keeps its session (a WebSocket handshake's answer cannot carry a cookie).
  if (session && c.res.status !== 101) await renewIfDue(c, c.var.cfg, session);
});
