/**
 * The connect link that /desktops/{id}/connect hands out: `/api/v1/connect#<ticket>`. The
 * ticket is the credential (single use, minutes long) and travels in the URL's fragment,
 * which browsers never send: no access log records it, and a chat app's link preview, which
 * fetches the page, spends nothing. The page itself (GET) holds no secret: its script reads
 * the fragment, drops it from the address bar, and POSTs the ticket; the POST asks the
 * site's bridge for a Guacamole session that can only see this desktop's connection and
 * answers its URL, which the page then opens.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env';
import { ApiError, notFound } from '../errors';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import { DesktopIdSchema } from '../schemas/desktop';

export const connectRoutes = new Hono<AppEnv>();

const OPENER = `(async () => {
  const say = (text) => { document.getElementById('m').textContent = text; };
  const ticket = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  if (!ticket) return say('This link is incomplete: ask for a new one.');
  try {
    const res = await fetch(location.pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ticket }),
      credentials: 'omit',
      cache: 'no-store',
    });
    const body = await res.json();
    if (res.ok && body.data && body.data.url) return location.replace(body.data.url);
    say(body.message || 'This link did not work: ask for a new one.');
  } catch {
    say('The desktop could not be opened; try again.');
  }
})();`;

const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Opening your desktop…</title>
<p id="m" role="status">Opening your desktop…</p>
<script>${OPENER}</script>
</html>
`;

let scriptHash: Promise<string> | undefined;
/** The CSP hash of the one inline script (computed once). */
function openerHash(): Promise<string> {
  scriptHash ??= crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(OPENER))
    .then((d) => `'sha256-${btoa(String.fromCharCode(...new Uint8Array(d)))}'`);
  return scriptHash;
}

connectRoutes.get('/', async (c) => {
  // The dashboard frames desktops from this origin, and the streaming apps allowed to call the
  // API from the browser (CORS_ORIGINS) embed them with <cloud-desktop>: only those may frame it.
  const apps = [...c.var.cfg.CORS_ORIGINS];
  c.header(
    'Content-Security-Policy',
    `default-src 'none'; script-src ${await openerHash()}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors ${["'self'", ...apps].join(' ')}`,
  );
  // X-Frame-Options cannot name other origins; where apps embed, browsers follow frame-ancestors alone.
  if (apps.length === 0) c.header('X-Frame-Options', 'SAMEORIGIN');
  c.header('Cache-Control', 'no-store');
  c.header('Referrer-Policy', 'no-referrer');
  return c.html(PAGE);
});

connectRoutes.post('/', async (c) => {
  const body = (await c.req.json().catch(() => null)) as { ticket?: unknown } | null;
  if (typeof body?.ticket !== 'string') throw new ApiError('VALIDATION_FAILED', 'Send {"ticket": "<the part of the link after #>"}');
  const [desktopId, secret] = body.ticket.split('.', 2);
  if (!desktopId || !secret || !DesktopIdSchema.safeParse(desktopId).success || !/^[A-Za-z0-9_-]{20,100}$/.test(secret)) {
    throw notFound('Connect link');
  }
  const { siteId, connectionId } = unwrap(await c.env.DESKTOP_SESSION.getByName(desktopId).redeemTicket(secret));
  const { url } = unwrap(await c.env.SITE_HUB.getByName(siteId).openSession(desktopId, connectionId));
  c.header('Cache-Control', 'no-store');
  c.header('Referrer-Policy', 'no-referrer');
  return c.json(success({ url }, 'Open the URL to reach the desktop'), 200);
});
