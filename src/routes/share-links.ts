/**
 * Share links of a desktop (the owner, the service that created it, or an admin):
 *  POST   /api/v1/desktops/{id}/share-links            make one (view or control, expiry, uses)
 *  GET    /api/v1/desktops/{id}/share-links            list them (never their secrets)
 *  DELETE /api/v1/desktops/{id}/share-links/{linkId}   revoke one, disconnecting the guests who came in through it
 * The guest's side, without an account, is ./share.ts.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { actorOf } from '../auth/jwt';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import type { Desktop } from '../schemas/desktop';
import {
  CreateShareLinkSchema,
  CreatedShareLinkSchema,
  RevokedShareLinkSchema,
  type ShareLink,
  ShareLinkSchema,
} from '../schemas/share-link';
import { IdParams, loadDesktop } from './desktops';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const OWNER_DISCONNECT_NOTE =
  'Guacamole shares the owner’s live session, not the desktop: a guest gets in only while the owner has the desktop open, and every guest is disconnected when the owner disconnects (the link itself keeps working until it expires, is used up or is revoked).';

const LinkParams = IdParams.extend({
  linkId: z.string().openapi({ param: { name: 'linkId', in: 'path' }, example: 'slq3x9a4b6c8d0e1f2g3h4' }),
});

const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not allowed'),
  404: errorSpec('No such desktop (or not yours), or no such link'),
} as const;

export const shareLinkRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

shareLinkRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/share-links',
    summary: 'Make a share link for a desktop',
    description: `A link someone without an account opens to watch (view: read-only) or use (control) the desktop. ${OWNER_DISCONNECT_NOTE} VM (Guacamole) desktops only: a Selkies GPU desktop answers 409 SHARING_UNSUPPORTED.`,
    security: bearerAuth,
    request: { params: IdParams, body: { required: true, content: { 'application/json': { schema: CreateShareLinkSchema } } } },
    responses: {
      201: jsonSpec(CreatedShareLinkSchema, 'The link, with its URL (shown this once)'),
      ...errors,
      409: errorSpec('SHARING_UNSUPPORTED (a Selkies desktop), a deleted or failed desktop, or too many open links'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const { stub, desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    const link = unwrap(await stub.createShareLink(c.req.valid('json'), actorOf(p), new URL(c.req.url).origin));
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { linkId: link.id, mode: link.mode, expiresAt: link.expiresAt, maxUses: link.maxUses });
    c.header('Cache-Control', 'no-store');
    return c.json(
      success(
        link,
        `Share link ${link.id}: ${link.mode === 'view' ? 'view only' : 'full control'}, until ${link.expiresAt}. ${OWNER_DISCONNECT_NOTE}`,
      ),
      201,
    );
  },
);

shareLinkRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/share-links',
    summary: 'List a desktop’s share links',
    description: 'Newest first, in every state; their secrets are never shown again.',
    security: bearerAuth,
    request: { params: IdParams },
    responses: { 200: jsonSpec(z.array(ShareLinkSchema), 'The links'), ...errors },
  }),
  async (c) => {
    const { stub } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    return c.json(success(await stub.listShareLinks(), OWNER_DISCONNECT_NOTE), 200);
  },
);

shareLinkRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}/share-links/{linkId}',
    summary: 'Revoke a share link',
    description:
      'The link stops working at once, and the guests who came in through it are disconnected now and cannot rejoin with it (`guestsEnded` counts them). Revocation stands even when the desktop’s site is unreachable: then `guestsEnded` is null, those guests stay until the owner disconnects, and revoking again retries.',
    security: bearerAuth,
    request: { params: LinkParams },
    responses: { 200: jsonSpec(RevokedShareLinkSchema, 'The link, revoked'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { id, linkId } = c.req.valid('param');
    const { stub, desktop } = await loadDesktop(c.env, p, id);
    const link = unwrap(await stub.revokeShareLink(linkId, actorOf(p)));
    const ended = await endGuests(c.env, desktop, link);
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { linkId: link.id, mode: link.mode, guestsEnded: ended.guestsEnded });
    return c.json(
      success({ ...link, guestsEnded: ended.guestsEnded }, `Share link ${link.id} revoked: it opens no more. ${ended.note}`),
      200,
    );
  },
);

/**
 * Disconnects the guests who came in through a revoked link (the site's bridge finds them in Guacamole). A link
 * never opened has none, nor has a desktop not running (no live session to be in), so its site is not asked then.
 * The link stays revoked whatever the bridge answers.
 */
async function endGuests(
  env: AppEnv['Bindings'],
  desktop: Desktop,
  link: ShareLink,
): Promise<{ guestsEnded: number | null; note: string }> {
  if (link.uses === 0 || !desktop.connectionId || desktop.status !== 'RUNNING') return { guestsEnded: 0, note: 'Nobody is in through it.' };
  const ended = await env.SITE_HUB.getByName(desktop.siteId).endSharedSessions(desktop.id, desktop.connectionId, link.id);
  if (!ended.ok) {
    return {
      guestsEnded: null,
      note: `Guests who came in through it could not be disconnected now (${ended.message}): they stay until the owner disconnects. Revoke it again to retry.`,
    };
  }
  const n = ended.value.ended;
  return {
    guestsEnded: n,
    note: n === 0 ? 'Nobody was in through it.' : `${n === 1 ? '1 guest' : `${n} guests`} who came in through it disconnected.`,
  };
}
