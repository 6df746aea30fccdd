/**
 * A stand-in for Traefik in front of the session pods: a request whose Host header is a host of an Ingress rule or an
 * IngressRoute `Host(...)` matcher goes to the Service's ready pods, where the desktop image's nginx asks for Basic
 * auth on every path and `/health` answers `OK\n`.
 *
 * What a caller sees: 404 `404 page not found` for unknown hosts (Traefik's catch-all); 503 `no available
 * server` when the service has no ready pod (404 instead when allowEmptyServices is off, Traefik's default);
 * 502 when the Service points at a port the desktop does not listen on; 401 with WWW-Authenticate for
 * wrong credentials; 200 otherwise.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendText } from './http';
import { resourceByKind } from './resources';
import { IngressRouteSchema, IngressSchema, ServiceSchema } from './schemas';
import { basicAuthCredentials, basicAuthEnabled, DESKTOP_PORT } from './desktop';
import type { KubeObject } from './objects';
import type { Cluster, PodBackend } from './state';

interface RouteTarget {
  namespace: string;
  service: string;
  port: number | string;
}

/** The host part of a Host header (no port, lower case). */
export function hostOnly(header: string | undefined): string {
  const value = (header ?? '').trim().toLowerCase();
  if (value.startsWith('[')) return value.slice(0, value.indexOf(']') + 1);
  return value.replace(/:\d+$/, '');
}

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) {
    const rest = p.slice(1);
    return host.endsWith(rest) && !host.slice(0, -rest.length).includes('.') && host.length > rest.length;
  }
  return p === host;
}

/** Hosts and path prefixes of an IngressRoute rule (``Host(`a`) && PathPrefix(`/b`)``; v2's multi-value form too). */
function parseRule(match: string): { hosts: string[]; prefixes: string[] } {
  const values = (fn: string) =>
    [...match.matchAll(new RegExp(`${fn}\\(([^)]*)\\)`, 'g'))].flatMap((m) =>
      [...(m[1] ?? '').matchAll(/`([^`]*)`/g)].map((v) => v[1] ?? ''),
    );
  return { hosts: values('Host'), prefixes: values('PathPrefix') };
}

function findTarget(cluster: Cluster, host: string, path: string, withIngressRoutes: boolean): RouteTarget | null {
  for (const ing of cluster.all(resourceByKind('Ingress'))) {
    const spec = IngressSchema.parse(ing).spec;
    for (const rule of spec?.rules ?? []) {
      if (!rule.host || !hostMatches(rule.host, host)) continue;
      for (const p of rule.http?.paths ?? []) {
        const prefix = p.path ?? '/';
        const ok = p.pathType === 'Exact' ? path === prefix : path.startsWith(prefix);
        const svc = p.backend?.service;
        if (!ok || !svc?.name) continue;
        return { namespace: ing.metadata.namespace ?? '', service: svc.name, port: svc.port?.number ?? svc.port?.name ?? 0 };
      }
    }
  }
  if (!withIngressRoutes) return null;
  for (const ir of cluster.all(resourceByKind('IngressRoute'))) {
    for (const route of IngressRouteSchema.parse(ir).spec?.routes ?? []) {
      const { hosts, prefixes } = parseRule(route.match ?? '');
      if (!hosts.some((h) => hostMatches(h, host))) continue;
      if (prefixes.length > 0 && !prefixes.some((p) => path.startsWith(p))) continue;
      const svc = route.services?.[0];
      if (!svc?.name) continue;
      return { namespace: svc.namespace ?? ir.metadata.namespace ?? '', service: svc.name, port: svc.port ?? 0 };
    }
  }
  return null;
}

/**
 * The TLS secret Traefik would serve for `host`: an Ingress `spec.tls[]` entry listing the host, or the
 * `spec.tls.secretName` of an IngressRoute whose rule matches it. Null: Traefik falls back to its generated default
 * certificate ("TRAEFIK DEFAULT CERT", doc.traefik.io TLS), which no client trusts.
 */
export function tlsSecretFor(cluster: Cluster, host: string, withIngressRoutes: boolean): { namespace: string; name: string } | null {
  for (const ing of cluster.all(resourceByKind('Ingress'))) {
    for (const tls of IngressSchema.parse(ing).spec?.tls ?? []) {
      if (tls.secretName && (tls.hosts ?? []).some((h) => hostMatches(h, host)))
        return { namespace: ing.metadata.namespace ?? '', name: tls.secretName };
    }
  }
  if (!withIngressRoutes) return null;
  for (const ir of cluster.all(resourceByKind('IngressRoute'))) {
    const spec = IngressRouteSchema.parse(ir).spec;
    const secretName = spec?.tls?.secretName;
    if (!secretName) continue;
    if ((spec?.routes ?? []).some((route) => parseRule(route.match ?? '').hosts.some((h) => hostMatches(h, host))))
      return { namespace: ir.metadata.namespace ?? '', name: secretName };
  }
  return null;
}

/** True when some Ingress/IngressRoute names this host: the request is for the route, not for the API. */
export function isRouteHost(cluster: Cluster, host: string, withIngressRoutes: boolean): boolean {
  return findTarget(cluster, host, '/', withIngressRoutes) !== null;
}

function credentialsMatch(header: string | undefined, expected: { user: string; password: string }): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(header?.trim() ?? '');
  if (!m) return false;
  const given = Buffer.from(Buffer.from(m[1] ?? '', 'base64').toString('utf8'));
  const wanted = Buffer.from(`${expected.user}:${expected.password}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

const NGINX_401 =
  '<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
const NGINX_404 =
  '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function desktopPage(cluster: Cluster, backend: PodBackend, host: string): string {
  const { image, node } = cluster.podDescription(backend.pod);
  const instance = backend.pod.metadata.labels?.['app.kubernetes.io/instance'] ?? backend.pod.metadata.name;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Selkies — ${escapeHtml(instance)}</title></head>
<body><h1>Selkies desktop ${escapeHtml(instance)}</h1>
<p>host ${escapeHtml(host)} · pod ${escapeHtml(backend.pod.metadata.namespace ?? '')}/${escapeHtml(backend.pod.metadata.name)} · node ${escapeHtml(node ?? '')} · image ${escapeHtml(image)}</p>
<p>(Kubernetes simulator stand-in: no WebRTC stream here.)</p></body></html>
`;
}

/** Whether the Service port the route names exists and leads to the desktop's nginx (8080). */
function servicePortTarget(service: KubeObject, port: number | string): 'ok' | 'no-port' | 'wrong-target' {
  const ports = ServiceSchema.parse(service).spec?.ports ?? [];
  const sp = ports.find((p) => (typeof port === 'number' ? p.port === port : p.name === port || String(p.port) === port));
  if (!sp) return 'no-port';
  const target = sp.targetPort ?? sp.port;
  if (typeof target === 'number') return target === DESKTOP_PORT ? 'ok' : 'wrong-target';
  return target === 'http' || target === String(DESKTOP_PORT) ? 'ok' : 'wrong-target';
}

export function handleRoute(
  cluster: Cluster,
  req: IncomingMessage,
  res: ServerResponse,
  host: string,
  opts: { withIngressRoutes: boolean; allowEmptyServices: boolean },
): void {
  cluster.stats.routeRequests += 1;
  const path = new URL(req.url ?? '/', 'http://route').pathname;
  const notFound = () => sendText(res, 404, '404 page not found\n');
  const target = findTarget(cluster, host, path, opts.withIngressRoutes);
  if (!target) {
    notFound();
    return;
  }
  const found = cluster.serviceBackends(target.namespace, target.service);
  // Traefik drops a router whose service is missing or names an unknown port: the host is then unknown to it.
  if (!found) {
    notFound();
    return;
  }
  const portCheck = servicePortTarget(found.service, target.port);
  if (portCheck === 'no-port') {
    notFound();
    return;
  }
  const backend = found.backends.find((b) => b.ready);
  if (!backend) {
    opts.allowEmptyServices ? sendText(res, 503, 'no available server\n') : notFound();
    return;
  }
  if (portCheck === 'wrong-target') {
    sendText(res, 502, 'Bad Gateway\n');
    return;
  }

  if (basicAuthEnabled(backend.env) && !credentialsMatch(req.headers.authorization, basicAuthCredentials(backend.env))) {
    res.writeHead(401, {
      'Content-Type': 'text/html',
      'WWW-Authenticate': 'Basic realm="Selkies"',
      'Content-Length': Buffer.byteLength(NGINX_401),
    });
    res.end(NGINX_401);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'Method Not Allowed\n');
    return;
  }
  if (path === '/health') {
    sendText(res, 200, 'OK\n');
    return;
  }
  if (path === '/' || path === '/index.html') {
    const page = desktopPage(cluster, backend, host);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(page) });
    res.end(page);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(NGINX_404) });
  res.end(NGINX_404);
}
