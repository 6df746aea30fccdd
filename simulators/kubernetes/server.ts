/**
 * A contract-faithful Kubernetes (K3s) API simulator for Selkies GPU desktops (plain node:http), for tests, local
 * development and benchmarks. It serves the REST paths of kubernetes' api/openapi-spec/v3 a session uses (core v1 pods,
 * services, persistentvolumeclaims, secrets, configmaps, nodes, namespaces, persistentvolumes; apps/v1 deployments;
 * networking.k8s.io/v1 ingresses; traefik.io/v1alpha1 ingressroutes; read-only runtimeclasses and storageclasses) with
 * discovery (as client-node's KubernetesObjectApi reads it), bearer-token auth, Status errors, and the pod / claim
 * lifecycle of state.ts. A request whose Host header is a session host goes to the Traefik stand-in (route.ts) instead
 * of the API.
 *
 * Simulator-only control endpoints, without auth; product code never calls them:
 *   GET    /__sim/stats                          requests, scheduling, route requests, faults by kind, objects by resource
 *   GET    /__sim/objects                        every stored object by resource
 *   POST   /__sim/faults                         {"rate": 0..1, "kinds": [...], "seed"?: n} — see faults.ts
 *   DELETE /__sim/faults                         no more faults
 *   POST   /__sim/reset                          seed objects only, zero stats, the faults of the start options
 *   GET    /__sim/pvcs/<ns>/<name>/files         {"claim", "phase", "files": {path: content}} (409 while not Bound)
 *   PUT    /__sim/pvcs/<ns>/<name>/files         {"path", "content"}: the user writes a file to the volume
 *   GET    /__sim/pods/<ns>/<name>/mounts        {"<mountPath>": {"claimName", "files"}} as the pod sees them
 */
import { type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import { z } from 'zod';
import { selfSignedCert } from '../shared/certificates';
import { listen, readBody, readJson, simulatorServer } from '../shared/http-server';
import { type FaultConfig, FaultConfigSchema, FaultInjector, type FaultKind } from './faults';
import {
  authenticate,
  badRequest,
  conflict,
  forbidden,
  PageNotFound,
  type SimToken,
  StatusError,
  sendJson,
  sendStatus,
  sendText,
  unauthorized,
} from './http';
import { apiVersionOf, discovery, findResource, type ResourceInfo, RESOURCES, SERVER_VERSION } from './resources';
import { handleRoute, hostOnly, isRouteHost, tlsSecretFor } from './route';
import type { KubeObject } from './objects';
import { Cluster, type KubernetesSimOptions, type SimNodeSpec, type SimStats } from './state';

export type { FaultConfig, FaultKind } from './faults';
export type { SimToken } from './http';
export type { KubeObject } from './objects';
export type { KubernetesSimOptions, SimGpu, SimNodeSpec } from './state';

export const DEFAULT_TOKEN = 'dev-token';

export const DEFAULT_NODES: SimNodeSpec[] = [
  { name: 'k3s-gpu-1', cpu: '32', memory: '128Gi', gpu: { count: 2, replicas: 8, product: 'NVIDIA-RTX-A4000' } },
  { name: 'k3s-cpu-1', cpu: '16', memory: '64Gi' },
];

export interface StartOptions extends Partial<Omit<KubernetesSimOptions, 'tokens'>> {
  tokens?: SimToken[];
  faults?: FaultConfig | null;
}

export function defaultOptions(): KubernetesSimOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    token: DEFAULT_TOKEN,
    tokens: [],
    namespaces: ['default', 'kube-system', 'desktops'],
    nodes: DEFAULT_NODES,
    runtimeClasses: ['nvidia', 'nvidia-experimental'],
    routeDomain: 'desk.localhost',
    ingressRouteCrd: true,
    allowEmptyServices: true,
    scheduleDelayMs: 0,
    containerStartDelayMs: 0,
    readyDelayMs: 0,
    deletionGraceMs: 0,
    rescheduleIntervalMs: 1000,
    imagePullMs: 0,
    imageSizeBytes: 3_421_234_567,
    now: Date.now,
  };
}

export interface RouteResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface KubernetesSimulator {
  /** The API server URL, e.g. http://127.0.0.1:6443 (also the route's origin: send the session host as Host). */
  url: string;
  port: number;
  token: string;
  routeDomain: string;
  stop(): Promise<void>;
  /** Every stored object by resource (`pods`, `ingresses.networking.k8s.io`, …). */
  objects(): Record<string, KubeObject[]>;
  /** A stored object by kind, or undefined. */
  object(kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Files on a claim's volume (null while the claim is not Bound). */
  claimFiles(namespace: string, name: string): Record<string, string> | null;
  writeClaimFile(namespace: string, name: string, path: string, content: string): boolean;
  podMounts(namespace: string, name: string): Record<string, { claimName: string; files: Record<string, string> }>;
  /** GET through the Traefik stand-in with `Host: <host>` (fetch cannot set Host, so this uses node:http). */
  requestRoute(host: string, path?: string, auth?: { user: string; password: string }): Promise<RouteResponse>;
  stats(): SimStats & { faults: Partial<Record<FaultKind, number>>; objects: Record<string, number> };
  setFaults(config: FaultConfig | null): void;
  /** Back to the seed objects (nodes, namespaces, classes), zero stats, the faults of the options. */
  reset(): void;
}

interface ApiTarget {
  r: ResourceInfo;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

/** `/api/v1/...` or `/apis/<group>/<version>/...` → resource, namespace, name; null when no resource matches. */
function parseApiPath(path: string, enabled: (r: ResourceInfo) => boolean): ApiTarget | null {
  const segments = path
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api') {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis') {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  } else return null;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  if (!plural || extra.length > 0) return null;
  const r = findResource(group, version, plural);
  if (!r || !enabled(r)) return null;
  // A namespaced resource has no cluster-level object paths (only the all-namespaces list).
  if (r.namespaced && namespace === undefined && name !== undefined) return null;
  if (!r.namespaced && namespace !== undefined) return null;
  if (subresource !== undefined && subresource !== 'status') return null;
  return { r, namespace, name, subresource };
}

function verbOf(method: string, target: ApiTarget): string {
  if (method === 'GET') return target.name === undefined ? 'list' : 'get';
  if (method === 'POST') return 'create';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (method === 'DELETE') return target.name === undefined ? 'deletecollection' : 'delete';
  return method.toLowerCase();
}

/** RBAC as the tokens of the options grant it: namespace-limited Roles, read-only bindings, denied resources. */
function authorize(caller: SimToken, target: ApiTarget, verb: string): void {
  if (caller.deny?.includes(`${verb} ${target.r.plural}`)) throw forbidden(target.r, caller.user, verb, target.namespace, target.name);
  const read = verb === 'get' || verb === 'list';
  const limited = caller.namespaces !== undefined;
  const allowed =
    (!caller.readOnly || read) &&
    (!limited || (target.namespace !== undefined ? (caller.namespaces ?? []).includes(target.namespace) : !target.r.namespaced && read));
  if (!allowed) throw forbidden(target.r, caller.user, verb, target.namespace, target.name);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`couldn't get version/kind; json parse error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function numberParam(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw badRequest(`invalid value for gracePeriodSeconds: ${value}`);
  return n;
}

const FileWriteSchema = z.object({ path: z.string().min(1), content: z.string() });

export async function startKubernetesSimulator(overrides: StartOptions = {}): Promise<KubernetesSimulator> {
  const { faults: initialFaults = null, ...rest } = overrides;
  const options: KubernetesSimOptions = { ...defaultOptions(), ...rest };
  const tokens: SimToken[] = [{ token: options.token, user: 'system:admin' }, ...options.tokens];
  const faults = new FaultInjector();
  faults.configure(initialFaults);
  const cluster = new Cluster(options, faults);
  const enabled = (r: ResourceInfo) => r.group !== 'traefik.io' || options.ingressRouteCrd;
  const localHosts = new Set(['127.0.0.1', 'localhost', '[::1]', options.host.toLowerCase()]);

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    cluster.stats.requests += 1;
    const caller = authenticate(req, tokens);
    if (!caller) throw unauthorized();
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/version' && method === 'GET') return sendJson(res, 200, SERVER_VERSION);
    if (['/healthz', '/livez', '/readyz'].includes(path)) return sendText(res, 200, 'ok');
    // authorization.k8s.io SelfSubjectAccessReview: "may I?", answered from the same rules as the requests themselves.
    if (path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' && method === 'POST') {
      const body = parseJson(await readBody(req)) as { spec?: { resourceAttributes?: Record<string, string> } } | undefined;
      const attrs = body?.spec?.resourceAttributes ?? {};
      const r = RESOURCES.find((x) => x.plural === attrs.resource && x.group === (attrs.group ?? ''));
      let allowed = false;
      let reason = '';
      if (r && enabled(r)) {
        try {
          authorize(
            caller,
            { r, namespace: attrs.namespace || undefined, name: attrs.name || undefined, subresource: undefined },
            attrs.verb ?? '',
          );
          allowed = r.verbs.includes(attrs.verb ?? '');
          reason = allowed ? 'RBAC: allowed by ClusterRoleBinding' : '';
        } catch {
          allowed = false;
        }
      }
      return sendJson(res, 201, {
        kind: 'SelfSubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: { resourceAttributes: attrs },
        status: { allowed, ...(reason ? { reason } : {}) },
      });
    }
    const doc = method === 'GET' ? discovery(path, enabled) : null;
    if (doc) return sendJson(res, 200, doc);
    const target = parseApiPath(path, enabled);
    if (!target) throw new PageNotFound();

    const verb = verbOf(method, target);
    cluster.stats.byVerb[verb] = (cluster.stats.byVerb[verb] ?? 0) + 1;
    cluster.stats.byResource[target.r.plural] = (cluster.stats.byResource[target.r.plural] ?? 0) + 1;
    authorize(caller, target, verb);

    const applicable: FaultKind[] = ['http_500', 'too_many_requests'];
    if (method !== 'GET') applicable.push('timeout_504');
    if (method === 'PUT' || method === 'PATCH') applicable.push('conflict_409');
    const fault = faults.draw(applicable);
    if (fault === 'http_500')
      throw new StatusError(500, 'InternalError', 'Internal error occurred: etcdserver: leader changed', {
        causes: [{ message: 'etcdserver: leader changed' }],
      });
    if (fault === 'too_many_requests')
      throw new StatusError(
        429,
        'TooManyRequests',
        'Too many requests, please try again later.',
        { retryAfterSeconds: 1 },
        { 'Retry-After': '1' },
      );
    if (fault === 'conflict_409' && target.name !== undefined) throw conflict(target.r, target.name);

    // Refused rather than ignored: an ignored dry run would really write.
    if (url.searchParams.has('dryRun')) throw badRequest('dryRun is not implemented by the Kubernetes simulator');
    const body = method === 'GET' ? undefined : parseJson(await readBody(req));
    const { r, namespace, name } = target;
    const run = (): { status: number; body: unknown } => {
      if (method === 'GET' && name === undefined) {
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
          throw badRequest('watch is not implemented by the Kubernetes simulator; poll with GET instead');
        const items = cluster.list(r, namespace, url.searchParams.get('labelSelector'), url.searchParams.get('fieldSelector'));
        // Built-in kinds list their items without apiVersion/kind; custom resources keep them.
        const builtIn = r.group !== 'traefik.io';
        return {
          status: 200,
          body: {
            kind: `${r.kind}List`,
            apiVersion: apiVersionOf(r),
            metadata: { resourceVersion: cluster.listResourceVersion() },
            items: builtIn ? items.map(({ apiVersion: _v, kind: _k, ...item }) => item) : items,
          },
        };
      }
      if (method === 'GET' && name !== undefined) return { status: 200, body: cluster.get(r, namespace, name) };
      if (method === 'POST' && name === undefined) return { status: 201, body: cluster.create(r, namespace, body) };
      if (method === 'PUT' && name !== undefined) return { status: 200, body: cluster.replace(r, namespace, name, body) };
      if (method === 'PATCH' && name !== undefined)
        return { status: 200, body: cluster.patch(r, namespace, name, body, req.headers['content-type'] ?? '') };
      const deleteOptions = (body ?? {}) as { gracePeriodSeconds?: unknown; propagationPolicy?: unknown };
      const opts = {
        gracePeriodSeconds:
          numberParam(url.searchParams.get('gracePeriodSeconds')) ??
          (typeof deleteOptions.gracePeriodSeconds === 'number' ? deleteOptions.gracePeriodSeconds : undefined),
        propagationPolicy:
          url.searchParams.get('propagationPolicy') ??
          (typeof deleteOptions.propagationPolicy === 'string' ? deleteOptions.propagationPolicy : undefined),
      };
      if (method === 'DELETE' && name !== undefined) return { status: 200, body: cluster.remove(r, namespace, name, opts) };
      if (method === 'DELETE') {
        const items = cluster.list(r, namespace, url.searchParams.get('labelSelector'), url.searchParams.get('fieldSelector'));
        const deleted = items.map((item) => cluster.remove(r, namespace ?? item.metadata.namespace, item.metadata.name, opts));
        return { status: 200, body: { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: {}, items: deleted } };
      }
      throw new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    };
    const result = run();
    // The write happened; only its answer is lost (kube-apiserver's request timeout, e.g. a slow etcd).
    if (fault === 'timeout_504')
      throw new StatusError(504, 'Timeout', 'Timeout: request did not complete within requested timeout - context deadline exceeded', {});
    sendJson(res, result.status, result.body);
  }

  async function control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const key = `${method} ${url.pathname}`;
    if (key === 'GET /__sim/stats') return sendJson(res, 200, simulator.stats());
    if (key === 'GET /__sim/objects') return sendJson(res, 200, simulator.objects());
    if (key === 'POST /__sim/reset') {
      simulator.reset();
      return sendJson(res, 200, { reset: true });
    }
    if (key === 'DELETE /__sim/faults') {
      simulator.setFaults(null);
      return sendJson(res, 200, { faults: null });
    }
    if (key === 'POST /__sim/faults') {
      const body = await readJson(req);
      const parsed = FaultConfigSchema.safeParse(body);
      if (!parsed.success) return sendJson(res, 400, { error: parsed.error.message });
      simulator.setFaults(parsed.data);
      return sendJson(res, 200, { faults: parsed.data });
    }
    const files = /^\/__sim\/pvcs\/([^/]+)\/([^/]+)\/files$/.exec(url.pathname);
    if (files) {
      const ns = decodeURIComponent(files[1] ?? '');
      const name = decodeURIComponent(files[2] ?? '');
      const pvc = cluster.peek(RESOURCES.find((r) => r.kind === 'PersistentVolumeClaim') as ResourceInfo, ns, name);
      if (!pvc) return sendJson(res, 404, { error: `persistentvolumeclaims "${name}" not found` });
      const phase = (pvc.status as { phase?: string } | undefined)?.phase ?? 'Pending';
      if (method === 'GET') {
        const content = cluster.claimFiles(ns, name);
        if (content === null) return sendJson(res, 409, { error: `claim ${ns}/${name} is ${phase}: no volume yet`, phase });
        return sendJson(res, 200, { claim: `${ns}/${name}`, phase, files: content });
      }
      if (method === 'PUT' || method === 'POST') {
        const body = await readJson(req);
        const parsed = FileWriteSchema.safeParse(body);
        if (!parsed.success) return sendJson(res, 400, { error: parsed.error.message });
        if (!cluster.writeClaimFile(ns, name, parsed.data.path, parsed.data.content))
          return sendJson(res, 409, { error: `claim ${ns}/${name} is ${phase}: no volume yet`, phase });
        return sendJson(res, 200, { claim: `${ns}/${name}`, phase, files: cluster.claimFiles(ns, name) });
      }
    }
    const mounts = /^\/__sim\/pods\/([^/]+)\/([^/]+)\/mounts$/.exec(url.pathname);
    if (mounts && method === 'GET')
      return sendJson(res, 200, cluster.podMounts(decodeURIComponent(mounts[1] ?? ''), decodeURIComponent(mounts[2] ?? '')));
    sendJson(res, 404, { error: `no simulator endpoint ${key}` });
  }

  const server = simulatorServer(
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://simulator');
      const host = hostOnly(req.headers.host);
      const routeRequest =
        !localHosts.has(host) && (host.endsWith(`.${options.routeDomain}`) || isRouteHost(cluster, host, options.ingressRouteCrd));
      if (routeRequest)
        return handleRoute(cluster, req, res, host, {
          withIngressRoutes: options.ingressRouteCrd,
          allowEmptyServices: options.allowEmptyServices,
        });
      return url.pathname.startsWith('/__sim/') ? control(req, res, url) : api(req, res, url);
    },
    (res, e) => {
      if (e instanceof StatusError) sendStatus(res, e);
      else if (e instanceof PageNotFound) sendText(res, 404, '404 page not found\n');
      else sendStatus(res, new StatusError(500, 'InternalError', `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`));
    },
  );
  const isRouteName = (host: string) =>
    !localHosts.has(host) && (host.endsWith(`.${options.routeDomain}`) || isRouteHost(cluster, host, options.ingressRouteCrd));
  // Traefik's websecure entry point: the certificate of the route's TLS secret when one matches, else its default.
  const traefikDefault = options.tls ? await selfSignedCert('TRAEFIK DEFAULT CERT') : undefined;
  const defaultContext = traefikDefault ? createSecureContext({ cert: traefikDefault.cert, key: traefikDefault.key }) : undefined;
  const contexts = new Map<string, SecureContext>();
  const routeContext = (servername: string): SecureContext | undefined => {
    const host = servername.toLowerCase();
    if (!isRouteName(host)) return undefined;
    const ref = tlsSecretFor(cluster, host, options.ingressRouteCrd);
    const secret = ref ? cluster.peek(RESOURCES.find((r) => r.kind === 'Secret') as ResourceInfo, ref.namespace, ref.name) : undefined;
    const data = (secret?.data ?? {}) as Record<string, string>;
    const cert = data['tls.crt'];
    const key = data['tls.key'];
    if (!secret || !cert || !key) return defaultContext;
    const cacheKey = `${secret.metadata.uid}/${secret.metadata.resourceVersion}`;
    let context = contexts.get(cacheKey);
    if (!context) {
      try {
        context = createSecureContext({ cert: Buffer.from(cert, 'base64'), key: Buffer.from(key, 'base64') });
      } catch {
        // Traefik logs an unusable certificate and serves its default one.
        return defaultContext;
      }
      contexts.set(cacheKey, context);
    }
    return context;
  };
  const listening = await listen(
    server,
    options.host,
    options.port,
    options.tls ? { ...options.tls, contextFor: routeContext } : undefined,
  );
  const port = listening.port;
  const url = `${listening.scheme}://${options.host}:${port}`;

  const simulator: KubernetesSimulator = {
    url,
    port,
    token: options.token,
    routeDomain: options.routeDomain,
    async stop() {
      cluster.dispose();
      await listening.close();
    },
    objects: () => cluster.dump(),
    object: (kind, namespace, name) => {
      const r = RESOURCES.find((x) => x.kind === kind);
      const obj = r ? cluster.peek(r, namespace, name) : undefined;
      return obj ? structuredClone(obj) : undefined;
    },
    claimFiles: (namespace, name) => cluster.claimFiles(namespace, name),
    writeClaimFile: (namespace, name, path, content) => cluster.writeClaimFile(namespace, name, path, content),
    podMounts: (namespace, name) => cluster.podMounts(namespace, name),
    requestRoute: (host, path = '/health', auth) =>
      new Promise<RouteResponse>((resolve, reject) => {
        const headers: Record<string, string> = { Host: host };
        if (auth) headers.Authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
        const req = httpRequest({ host: options.host, port, path, method: 'GET', headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
    stats: () => ({
      ...cluster.stats,
      faults: Object.fromEntries(faults.counts),
      objects: Object.fromEntries(Object.entries(cluster.dump()).map(([k, v]) => [k, v.length])),
    }),
    setFaults: (config) => faults.configure(config),
    reset: () => {
      cluster.reset();
      faults.clearCounts();
      faults.configure(initialFaults);
    },
  };
  return simulator;
}
