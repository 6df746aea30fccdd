/**
 * The end-to-end readiness check of a session: `GET /health` through the ingress with the desktop's Basic credentials.
 * It speaks node:http(s) rather than fetch because it must name the session host in `Host` (and in TLS SNI) while
 * connecting to a fixed ingress address, and fetch drops a Host header.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { checkPinned, type Trust, tlsOptions } from '../tls-trust';
import type { RouteCheck } from './types';

export interface RouteProbeOptions {
  /** Where the ingress listens, e.g. `https://10.0.0.5` or `http://127.0.0.1:6443`; default `https://<host>`. */
  origin?: string;
  timeoutMs: number;
  /** The CA of the routes' certificate (Traefik's default certificate verifies with none). */
  trust?: Trust;
}

/** Bodies beyond this are not read: `/health` answers three bytes. */
const MAX_BODY = 4096;

export function classifyRouteStatus(status: number, body: string): RouteCheck {
  // selkies' health route (signalling_web.py) answers `OK\n` behind nginx's Basic auth.
  if (status === 200) return body.trim() === 'OK' ? 'ready' : 'no-backend';
  if (status === 401) return 'unauthorized';
  // Traefik: 503 "no available server" with allowEmptyServices, else 404 because the router is dropped while the
  // service has no endpoints (traefik/traefik#9242); 502/504 while the pod is going away. All mean "not routable yet".
  return 'no-backend';
}

export function probeRoute(host: string, user: string, password: string, opts: RouteProbeOptions): Promise<RouteCheck> {
  const origin = new URL(opts.origin ?? `https://${host}`);
  const secure = origin.protocol === 'https:';
  if (!secure && origin.protocol !== 'http:') return Promise.resolve('unreachable');
  const send = secure ? httpsRequest : httpRequest;
  return new Promise<RouteCheck>((resolve) => {
    const req = send(
      {
        host: origin.hostname.replace(/^\[|\]$/g, ''),
        port: origin.port === '' ? undefined : Number(origin.port),
        path: '/health',
        method: 'GET',
        headers: { Host: host, Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, Accept: 'text/plain' },
        // The wildcard certificate is for the session host, not for the ingress address we connect to.
        ...(secure ? { servername: host, ...tlsOptions(opts.trust ?? { kind: 'system' }) } : {}),
        timeout: opts.timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < MAX_BODY) body += chunk;
        });
        res.on('end', () => {
          const pinned = opts.trust ? checkPinned(res.socket as TLSSocket, opts.trust) : null;
          resolve(pinned ? 'unreachable' : classifyRouteStatus(res.statusCode ?? 0, body));
        });
        res.on('error', () => resolve('unreachable'));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`route check of ${host} timed out`)));
    req.on('error', () => resolve('unreachable'));
    req.end();
  });
}
