/**
 * The app factory: one OpenAPIHono with the common middleware (request id, security
 * headers, config, CORS, rate limits, body limit, auth, errors) and the sub-apps mounted
 * with app.route().
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { requestId } from 'hono/request-id';
import type { AppEnv } from './app-env';
import { config } from './env';
import { ApiError } from './errors';
import { audit, auditRefusals } from './middleware/audit';
import { authenticate } from './middleware/authenticate';
import { cors } from './middleware/cors';
import { errorResponse, onError } from './middleware/errors';
import { rateLimitByClient, rateLimitByPrincipal } from './middleware/rate-limit';
import { securityHeaders } from './middleware/security-headers';
import { adminRoutes } from './routes/admin';
import { bridgeRoutes } from './routes/bridge';
import { connectRoutes } from './routes/connect';
import { desktopTokenRoutes } from './routes/desktop-tokens';
import { shareRoutes } from './routes/share';
import { shareLinkRoutes } from './routes/share-links';
import { rebuildRoutes } from './routes/rebuild';
import { snapshotRoutes } from './routes/snapshots';
import { desktopRoutes } from './routes/desktops';
import { healthRoutes } from './routes/health';
import { planRoutes } from './routes/plans';
import { templateRoutes } from './routes/templates';
import { dashboardRoutes } from './routes/ui';
import { usageRoutes } from './routes/usage';
import { webhookRoutes } from './routes/webhooks';
import { LiveMessageSchema } from './schemas/live';

export const MAX_BODY_BYTES = 64 * 1024;

/** The OpenAPI document's header; its paths come from the routes (the SDK is generated from the whole). */
export const OPENAPI_HEADER = {
  openapi: '3.1.0',
  info: {
    title: 'Cloud Desktop control plane',
    version: '1.0.0',
    description: 'Desktops on your own Proxmox hardware, opened in the browser through Guacamole. Envelope: {success, message, data}.',
  },
};

export function newApp() {
  const app = new OpenAPIHono<AppEnv>();

  app.use('*', requestId({ headerName: 'X-Request-Id', limitLength: 64 }));
  app.use('*', securityHeaders);
  app.use(
    '*',
    createMiddleware<AppEnv>(async (c, next) => {
      c.set('cfg', config(c.env));
      await next();
    }),
  );
  // Outside authentication and the limits, so their 401s and 429s are audited too.
  app.use('*', auditRefusals);
  // CORS outside the limits, so a listed origin can read its 429s (and a preflight costs nothing).
  app.use('*', cors);
  app.use('*', rateLimitByClient);
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => errorResponse(c as never, new ApiError('PAYLOAD_TOO_LARGE', `Request body over ${MAX_BODY_BYTES} bytes`)),
    }),
  );

  // `/x/*` matches `/x` as well: one registration each, or a request would pay its limit twice.
  app.use('/api/v1/desktops/*', authenticate, rateLimitByPrincipal, audit);
  app.use('/api/v1/admin/*', authenticate, rateLimitByPrincipal, audit);
  app.use('/api/v1/webhooks/*', authenticate, rateLimitByPrincipal, audit);
  app.use('/api/v1/usage/*', authenticate, rateLimitByPrincipal);
  app.use('/api/v1/templates/*', authenticate, rateLimitByPrincipal);

  app.route('/healthz', healthRoutes);
  app.route('/api/v1/plans', planRoutes);
  app.route('/api/v1/desktops', desktopRoutes);
  app.route('/api/v1/desktops', desktopTokenRoutes);
  app.route('/api/v1/desktops', shareLinkRoutes);
  app.route('/api/v1/desktops', snapshotRoutes);
  app.route('/api/v1/desktops', rebuildRoutes);
  app.route('/api/v1/admin', adminRoutes);
  app.route('/api/v1/webhooks', webhookRoutes);
  app.route('/api/v1/usage', usageRoutes);
  app.route('/api/v1/templates', templateRoutes);
  app.route('/api/v1/sites', bridgeRoutes);
  app.route('/api/v1/connect', connectRoutes);
  // A guest's share link: no account; audited (anonymous) and rate limited per address.
  app.use('/api/v1/share', audit);
  app.route('/api/v1/share', shareRoutes);
  // The dashboard at / (src/ui). Its pages set their own CSP (scripts, styles and frames as
  // they need them), which securityHeaders then leaves alone; the API keeps `default-src 'none'`.
  // They read the API through this same app, in-process, with the visitor's session.
  app.route(
    '/',
    dashboardRoutes((req, c) => app.fetch(req, c.env, c.executionCtx)),
  );

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  app.openAPIRegistry.register('LiveMessage', LiveMessageSchema);
  app.doc31('/api/v1/openapi.json', OPENAPI_HEADER);

  app.notFound((c) => errorResponse(c, new ApiError('NOT_FOUND', `No route for ${c.req.method} ${c.req.path}`)));
  app.onError(onError);
  return app;
}
