/**
 * CORS for the origins in CORS_ORIGINS, and for no other. Other origins' apps authenticate
 * with a bearer header, so no origin is told it may send credentials: a page needs only
 * `Authorization` to be allowed, which the preflight grants to listed origins. The one
 * cookie (the dashboard's session) is therefore only ever sent same-origin, and its
 * X-CSRF-Token header is deliberately absent from the allowed headers.
 * Requests without an Origin header (curl, services, the bridge, status polling from a
 * backend) pass through after one header lookup.
 */
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { ApiError } from '../errors';

const PREFLIGHT = {
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Request-Id',
  'Access-Control-Max-Age': '600',
};
const EXPOSE = 'Location, Retry-After, WWW-Authenticate, X-Request-Id';

export const cors = createMiddleware<AppEnv>(async (c, next) => {
  const origin = c.req.header('origin');
  if (origin === undefined) {
    await next();
    // Answers differ by Origin once any origin is allowed; caches must keep them apart.
    if (c.var.cfg.CORS_ORIGINS.size > 0) c.res.headers.append('Vary', 'Origin');
    return;
  }
  const allowed = c.var.cfg.CORS_ORIGINS.has(origin);
  if (c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined) {
    if (!allowed) throw new ApiError('FORBIDDEN', 'Cross-origin requests from this origin are not allowed', undefined, { Vary: 'Origin' });
    return c.body(null, 204, { ...PREFLIGHT, 'Access-Control-Allow-Origin': origin, Vary: 'Origin' });
  }
  await next();
  const h = c.res.headers;
  h.append('Vary', 'Origin');
  if (allowed) {
    h.set('Access-Control-Allow-Origin', origin);
    h.set('Access-Control-Expose-Headers', EXPOSE);
  }
});
