import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { verifyBearer } from '../auth/jwt';

/** Verifies the bearer JWT and puts the principal in c.var; every API route behind it needs one. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  c.set('principal', await verifyBearer(c.req.header('authorization'), c.var.cfg));
  await next();
});
