/**
 * What every simulated pod runs: a Selkies desktop image (docker-selkies-egl-desktop's entrypoint and supervisord.conf)
 * — nginx on 8080 with Basic auth on every path, GPUs from `nvidia.com/gpu` limits — and the pod-spec arithmetic the
 * scheduler needs.
 */
import type { Labels } from './objects';
import { parseQuantity } from './quantity';
import type { Container, PodSpec } from './schemas';

export const NVIDIA_GPU = 'nvidia.com/gpu';
/** K3s registers these for the NVIDIA container runtime (K3s docs/advanced.md). */
export const NVIDIA_RUNTIME_CLASSES = new Set(['nvidia', 'nvidia-experimental']);
/** The only port the desktop images serve (nginx on 8080). */
export const DESKTOP_PORT = 8080;

/** Requests of a container, defaulted from limits where unset (the API server's defaulting). */
export function containerRequests(c: Container): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, raw] of Object.entries(c.resources?.limits ?? {})) out[name] = parseQuantity(raw) ?? 0;
  for (const [name, raw] of Object.entries(c.resources?.requests ?? {})) out[name] = parseQuantity(raw) ?? 0;
  return out;
}

export function podRequests(spec: PodSpec | undefined): Record<string, number> {
  const total: Record<string, number> = {};
  for (const c of spec?.containers ?? []) {
    for (const [name, value] of Object.entries(containerRequests(c))) total[name] = (total[name] ?? 0) + value;
  }
  return total;
}

export function gpuLimit(spec: PodSpec | undefined): number {
  return (spec?.containers ?? []).reduce((sum, c) => sum + (parseQuantity(c.resources?.limits?.[NVIDIA_GPU] ?? 0) ?? 0), 0);
}

export function qosClass(spec: PodSpec | undefined): string {
  const containers = spec?.containers ?? [];
  const any = containers.some((c) => Object.keys(c.resources?.limits ?? {}).length + Object.keys(c.resources?.requests ?? {}).length > 0);
  if (!any) return 'BestEffort';
  const guaranteed = containers.every((c) => {
    const limits = c.resources?.limits ?? {};
    const requests = containerRequests(c);
    return ['cpu', 'memory'].every((res) => limits[res] !== undefined && parseQuantity(limits[res]) === requests[res]);
  });
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** The container that serves the desktop: the one exposing 8080, else the first. */
export function desktopContainer(spec: PodSpec | undefined): Container | undefined {
  const containers = spec?.containers ?? [];
  return containers.find((c) => (c.ports ?? []).some((p) => p.containerPort === DESKTOP_PORT)) ?? containers[0];
}

export function probePort(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return (c.ports ?? []).find((p) => p.name === port)?.containerPort;
}

/** selkies-gstreamer-entrypoint.sh: Basic auth is on unless SELKIES_ENABLE_BASIC_AUTH is exactly `false`. */
export function basicAuthEnabled(env: Labels): boolean {
  return env.SELKIES_ENABLE_BASIC_AUTH !== 'false';
}

/**
 * selkies-gstreamer-entrypoint.sh: user `SELKIES_BASIC_AUTH_USER` (default $USER = ubuntu), password `…_PASSWORD`, else
 * PASSWD (image default mypasswd).
 */
export function basicAuthCredentials(env: Labels): { user: string; password: string } {
  return { user: env.SELKIES_BASIC_AUTH_USER || 'ubuntu', password: env.SELKIES_BASIC_AUTH_PASSWORD || env.PASSWD || 'mypasswd' };
}

/**
 * Whether the readiness probe of the desktop image can ever pass: tcpSocket on 8080 does; httpGet on 8080 meets nginx's
 * Basic auth (401, a probe failure) unless auth is off (nginx guards every location); other ports are closed.
 */
export function probeCanPass(c: Container, env: Labels): boolean {
  const probe = c.readinessProbe;
  if (!probe) return true;
  if (probe.exec) return true;
  if (probe.tcpSocket) return probePort(c, probe.tcpSocket.port) === DESKTOP_PORT;
  if (probe.httpGet) return probePort(c, probe.httpGet.port) === DESKTOP_PORT && !basicAuthEnabled(env);
  return false;
}
