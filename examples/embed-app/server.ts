/**
 * A streaming app's page with a cloud desktop in it: the smallest whole example of the
 * <cloud-desktop> element (README "Embedding a desktop"). Its backend holds the app's service
 * token and never lets it reach the browser; the page gets only desktop tokens, minted for
 * the one desktop the viewer may see, from POST /api/embed-token.
 *
 *   GET  /                    the page (CSP: scripts from here and the edge only, frames from the edge and the desktops)
 *   GET  /api/templates       what the viewer may launch
 *   GET  /api/desktops        the viewer's desktops
 *   POST /api/desktops        launch one: {templateId}
 *   DELETE /api/desktops/:id  end it
 *   POST /api/embed-token     {desktopId} → {token, expiresAt}: the element's token-endpoint
 *
 * Viewers are this app's own users: here a random id in a cookie stands for the app's
 * sign-in. The backend checks that the desktop is the viewer's before it asks for a token.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PUBLIC = fileURLToPath(new URL('./public', import.meta.url));

export interface EmbedExampleOptions {
  port: number;
  host?: string;
  /** The edge API, e.g. http://127.0.0.1:8787: the page loads the element from it, the backend calls it. */
  edgeUrl: string;
  /** The app's service token (a JWT with the `service` role): asked for on every call, so it may be renewed. */
  serviceToken: () => Promise<string>;
  /** CSP frame sources of the desktops themselves (Guacamole, Selkies sessions), besides the edge. */
  frameSources: string[];
  /**
   * The prefix of the user ids this app's service may act for: `<service sub>:` unless the
   * edge's SERVICE_NAMESPACES gives it another (README "Services are tenants").
   */
  userNamespace: string;
}

interface Desktop {
  id: string;
  userId: string;
  name: string;
  status: string;
}

class Problem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startEmbedExample(opts: EmbedExampleOptions): Promise<{ url: string; close(): Promise<void> }> {
  const edge = opts.edgeUrl.replace(/\/$/, '');
  const page = readFileSync(join(PUBLIC, 'index.html'), 'utf8').replaceAll('{{EDGE_URL}}', edge);
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${edge}`,
    "style-src 'self'",
    // The element calls the edge's API (its live stream too) with the desktop token.
    `connect-src 'self' ${edge}`,
    // The connect link is on the edge and redirects to the desktop's own web client.
    `frame-src ${edge} ${opts.frameSources.join(' ')}`,
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  /** The edge's API with the service token; its refusals keep their status and message. */
  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${edge}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await opts.serviceToken()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const env = (await res.json().catch(() => ({}))) as { data?: T; message?: string };
    if (!res.ok) throw new Problem(res.status, env.message ?? `the desktop service answered ${res.status}`);
    return env.data as T;
  }

  /** The viewer's desktop, or 404: a service sees only what it created, and the app only its viewer's. */
  async function viewersDesktop(viewer: string, id: unknown): Promise<Desktop> {
    if (typeof id !== 'string' || !/^[a-z0-9]{8,40}$/.test(id)) throw new Problem(400, 'desktopId is required');
    const d = await api<Desktop>('GET', `/api/v1/desktops/${id}`).catch(() => null);
    if (!d || d.userId !== viewer) throw new Problem(404, 'No such desktop');
    return d;
  }

  async function route(req: IncomingMessage, res: ServerResponse, viewer: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://app');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': csp, 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    const asset = ASSETS[url.pathname];
    if (method === 'GET' && asset) {
      res.writeHead(200, { 'content-type': asset, 'cache-control': 'no-cache' });
      res.end(readFileSync(join(PUBLIC, url.pathname.slice(1))));
      return;
    }
    if (!url.pathname.startsWith('/api/')) throw new Problem(404, 'Not found');
    // The app's own CSRF defence: its API answers its own page only.
    if (method !== 'GET' && !sameOrigin(req)) throw new Problem(403, 'Cross-site request refused');
    const body = method === 'POST' ? await readJson(req) : {};

    if (method === 'GET' && url.pathname === '/api/templates') {
      const templates = await api<{ id: string; name: string; os: string; description: string }[]>('GET', '/api/v1/templates');
      return json(
        res,
        200,
        templates.map(({ id, name, os, description }) => ({ id, name, os, description })),
      );
    }
    if (method === 'GET' && url.pathname === '/api/desktops') {
      const desktops = await api<Desktop[]>('GET', `/api/v1/desktops/user/${encodeURIComponent(viewer)}`);
      return json(
        res,
        200,
        desktops.map(({ id, name, status }) => ({ id, name, status })),
      );
    }
    if (method === 'POST' && url.pathname === '/api/desktops') {
      const d = await api<Desktop>('POST', '/api/v1/desktops', { userId: viewer, templateId: body.templateId });
      return json(res, 201, { id: d.id, name: d.name, status: d.status });
    }
    const end = /^\/api\/desktops\/([^/]+)$/.exec(url.pathname);
    if (method === 'DELETE' && end) {
      const d = await viewersDesktop(viewer, end[1]);
      await api('DELETE', `/api/v1/desktops/${d.id}`);
      return json(res, 202, { id: d.id });
    }
    if (method === 'POST' && url.pathname === '/api/embed-token') {
      const d = await viewersDesktop(viewer, body.desktopId);
      const t = await api<{ token: string; expiresAt: string }>('POST', `/api/v1/desktops/${d.id}/embed-token`, { ttlSeconds: 600 });
      res.setHeader('cache-control', 'no-store');
      return json(res, 200, { token: t.token, expiresAt: t.expiresAt });
    }
    throw new Problem(404, 'Not found');
  }

  const server = createServer((req, res) => {
    const viewer = `${opts.userNamespace}${viewerOf(req, res)}`;
    route(req, res, viewer).catch((err: unknown) => {
      const status = err instanceof Problem ? err.status : 502;
      if (!(err instanceof Problem)) console.error(`[embed-app] ${req.method} ${req.url}: ${String(err)}`);
      json(res, status, { error: err instanceof Problem ? err.message : 'The desktop service could not be reached' });
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ASSETS: Record<string, string> = { '/app.js': 'text/javascript; charset=utf-8', '/app.css': 'text/css; charset=utf-8' };

/** Stands in for the app's sign-in: each browser is a viewer with an id of its own. */
function viewerOf(req: IncomingMessage, res: ServerResponse): string {
  const found = /(?:^|;\s*)viewer=(viewer-[0-9a-f]{16})(?:;|$)/.exec(req.headers.cookie ?? '')?.[1];
  if (found) return found;
  const viewer = `viewer-${randomBytes(8).toString('hex')}`;
  res.setHeader('set-cookie', `viewer=${viewer}; Path=/; HttpOnly; SameSite=Lax`);
  return viewer;
}

function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  return !!origin && URL.canParse(origin) && new URL(origin).host === req.headers.host;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 10_000) throw new Problem(413, 'Body too large');
  }
  try {
    const v = JSON.parse(text || '{}') as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // falls through to the refusal
  }
  throw new Problem(400, 'Expected a JSON object');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
