/**
 * POST /api/v1/desktops/{id}/embed-token: a short-lived token scoped to one desktop, for a
 * browser page that embeds it (../auth/desktop-token). Whoever may act on the desktop (its
 * owner, the service that created it, an admin) may mint one; a desktop token cannot mint
 * another. An app's backend calls this with its service token and hands the page only the
 * answer, so its service token never reaches a browser.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { DESKTOP_TOKEN_SCOPE, DESKTOP_TOKEN_TTL, mintDesktopToken } from '../auth/desktop-token';
import { actorOf } from '../auth/jwt';
import { success } from '../lib/envelope';
import { loadDesktop } from './desktops';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

const { defaultSeconds, minSeconds, maxSeconds } = DESKTOP_TOKEN_TTL;

const MintRequest = z
  .strictObject({
    ttlSeconds: z
      .number()
      .int()
      .min(minSeconds)
      .max(maxSeconds)
      .optional()
      .openapi({ description: `Lifetime in seconds, ${minSeconds} to ${maxSeconds}; default ${defaultSeconds}`, example: 600 }),
  })
  .openapi('EmbedTokenRequest');

const MintAnswer = z
  .object({
    token: z.string().openapi({ description: 'Send as Authorization: Bearer <token> to the routes in scope, for this desktop only' }),
    expiresAt: z.string(),
    desktopId: z.string(),
    scope: z.array(z.enum(DESKTOP_TOKEN_SCOPE)).openapi({
      description: 'GET …/status, GET …/live, GET …/connect and POST …/keepalive of this desktop',
    }),
  })
  .openapi('EmbedToken');

export const desktopTokenRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

desktopTokenRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/embed-token',
    summary: 'Mint a short-lived token for one desktop, for a browser that embeds it',
    description:
      'For the <cloud-desktop> element: your backend calls this with its own token and gives the page only the answer. ' +
      'The token acts as the desktop’s owner on its status, live stream, connect and keepalive, and is refused everywhere else.',
    security: bearerAuth,
    request: {
      params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'dk5v2m7q3x9a4b6c8d0e1f' }) }),
      body: { required: false, content: { 'application/json': { schema: MintRequest } } },
    },
    responses: {
      200: jsonSpec(MintAnswer, 'The token'),
      400: errorSpec('Invalid input'),
      401: errorSpec('Missing or invalid token'),
      403: errorSpec('A desktop token cannot mint another, or no signing secret is configured'),
      404: errorSpec('No such desktop (or not yours)'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const { desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    const ttl = c.req.valid('json').ttlSeconds ?? defaultSeconds;
    const { token, expiresAt } = await mintDesktopToken(c.var.cfg, desktop, actorOf(p), ttl);
    c.header('Cache-Control', 'no-store');
    const data = { token, expiresAt, desktopId: desktop.id, scope: [...DESKTOP_TOKEN_SCOPE] };
    return c.json(success(data, `A token for desktop ${desktop.id}, valid until ${expiresAt}`), 200);
  },
);
