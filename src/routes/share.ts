/**
 * The guest's side of a share link, no account needed: `/api/v1/share#<desktop>.<link>.<secret>`.
 * As with the connect link (./connect.ts), the secret travels in the fragment, which browsers
 * never send: the page (GET) holds no secret, its script POSTs the fragment, and the POST
 * asks the site's bridge for a Guacamole share key on the owner's live session, then the page
 * opens it. Each attempt is rate limited per address (RATE_LIMIT_SHARE) and audited.
 */
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { ApiError, notFound } from '../errors';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import { DesktopIdSchema } from '../schemas/desktop';
import { RedeemShareLinkSchema, RedeemedShareLinkSchema } from '../schemas/share-link';
import { errorSpec, jsonSpec } from './openapi';
import { OWNER_DISCONNECT_NOTE } from './share-links';
import { validationHook } from './validation';

export const shareRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

const OPENER = `(async () => {
  const say = (title, text) => {
    document.getElementById('t').textContent = title;
    document.getElementById('m').textContent = text || '';
  };
  const token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  if (!token) return say('This link is incomplete', 'Ask the person who shared the desktop for a new one.');
  try {
    const res = await fetch(location.pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      credentials: 'omit',
      cache: 'no-store',
    });
    const body = await res.json();
    if (res.ok && body.data && body.data.url) {
      say(body.data.mode === 'view' ? 'Opening ' + body.data.desktopName + ' (view only)' : 'Opening ' + body.data.desktopName, body.message);
      return location.replace(body.data.url);
    }
    say('This share link did not work', body.message || 'Ask the person who shared the desktop for a new one.');
    document.body.dataset.refused = (body.error && body.error.code) || 'UNKNOWN';
  } catch {
    say('The desktop could not be opened', 'Check your connection and try again.');
  }
})();`;

const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Shared desktop</title>
<main>
<h1 id="t">Opening a shared desktop…</h1>
<p id="m" role="status"></p>
<p>${OWNER_DISCONNECT_NOTE}</p>
</main>
<script>${OPENER}</script>
</html>
`;

let scriptHash: Promise<string> | undefined;
function openerHash(): Promise<string> {
  scriptHash ??= crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(OPENER))
    .then((d) => `'sha256-${btoa(String.fromCharCode(...new Uint8Array(d)))}'`);
  return scriptHash;
}

shareRoutes.get('/', async (c) => {
  c.header(
    'Content-Security-Policy',
    `default-src 'none'; script-src ${await openerHash()}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  );
  c.header('X-Frame-Options', 'DENY');
  c.header('Cache-Control', 'no-store');
  c.header('Referrer-Policy', 'no-referrer');
  return c.html(PAGE);
});

shareRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Open a share link (no account needed)',
    description: `What the share link's page does with the part of the link after #. ${OWNER_DISCONNECT_NOTE}`,
    request: { body: { required: true, content: { 'application/json': { schema: RedeemShareLinkSchema } } } },
    responses: {
      200: jsonSpec(RedeemedShareLinkSchema, 'Open the URL to join the owner’s session'),
      400: errorSpec('No token sent'),
      404: errorSpec('No such link'),
      409: errorSpec('OWNER_NOT_CONNECTED (the owner has no live session to join), or INVALID_STATE (the desktop is not running)'),
      410: errorSpec('SHARE_LINK_GONE: revoked, expired or used up'),
      429: errorSpec('Too many attempts from this address'),
      503: errorSpec('The desktop’s site is unreachable'),
    },
  }),
  async (c) => {
    const [desktopId, linkId, secret] = c.req.valid('json').token.split('.', 3);
    if (!desktopId || !linkId || !secret || !DesktopIdSchema.safeParse(desktopId).success || !/^[A-Za-z0-9_-]{20,100}$/.test(secret)) {
      throw notFound('Share link');
    }
    c.set('auditTarget', desktopId);
    c.set('auditDetails', { linkId });
    const stub = c.env.DESKTOP_SESSION.getByName(desktopId);
    const { siteId, connectionId, mode, desktopName } = unwrap(await stub.redeemShareLink(linkId, secret));
    c.set('auditDetails', { linkId, mode });
    const hub = c.env.SITE_HUB.getByName(siteId);
    const shared = await hub.shareSession(desktopId, connectionId, mode, linkId);
    if (!shared.ok) {
      await stub.giveBackShareUse(linkId);
      throw new ApiError(shared.code, shared.message);
    }
    // A revoke while the bridge was minting the key may have ended the link's guests before the bridge made the
    // link's sharing profile again: look once more, and if it was revoked, lock that profile out too.
    if ((await stub.listShareLinks()).find((l) => l.id === linkId)?.state === 'revoked') {
      await hub.endSharedSessions(desktopId, connectionId, linkId);
      throw new ApiError('SHARE_LINK_GONE', 'This share link was revoked by the desktop’s owner; ask the owner for a new one');
    }
    c.header('Cache-Control', 'no-store');
    c.header('Referrer-Policy', 'no-referrer');
    const what = mode === 'view' ? 'View only: your keyboard and mouse are not passed on.' : 'Full control.';
    return c.json(success({ url: shared.value.url, mode, desktopName }, `${what} ${OWNER_DISCONNECT_NOTE}`), 200);
  },
);
