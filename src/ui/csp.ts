/**
 * The Content-Security-Policy of the dashboard's pages (the API keeps `default-src 'none'`):
 * scripts, styles and connections from this origin only (no inline script or style at all),
 * forms posting only here, and frames limited to where desktops are served.
 */
import type { Context } from 'hono';
import type { Config } from '../env';
import { type DashboardEnv, isLoopback } from '../middleware/session';

export function frameSources(cfg: Config, url: URL): string[] {
  if (cfg.DESKTOP_FRAME_SOURCES.length > 0) return cfg.DESKTOP_FRAME_SOURCES;
  // Unconfigured: any https origin; local Guacamole and Selkies are plain http, and only a
  // loopback request (development) is allowed to frame them.
  return isLoopback(url) ? ['https:', 'http://127.0.0.1:*', 'http://localhost:*'] : ['https:'];
}

export function pageCsp(cfg: Config, url: URL): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    // 'self' covers the live-status WebSocket (ws/wss to this host) in CSP Level 3.
    "connect-src 'self'",
    // The connect link is on this origin and redirects to Guacamole (or a Selkies session).
    `frame-src 'self' ${frameSources(cfg, url).join(' ')}`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Headers of every dashboard page. Referrer-Policy `same-origin` instead of the API's
 * `no-referrer`: under no-referrer a browser sends `Origin: null` even on a same-origin form
 * post, and the sign-in form's origin check needs the real one; other sites (Guacamole)
 * still get no referrer.
 */
export function pageHeaders(c: Context<DashboardEnv>): void {
  c.header('Content-Security-Policy', pageCsp(c.var.cfg, new URL(c.req.url)));
  c.header('Referrer-Policy', 'same-origin');
  c.header('Cache-Control', 'no-store');
}
