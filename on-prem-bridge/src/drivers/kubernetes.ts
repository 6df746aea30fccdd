/**
 * The bridge's Kubernetes driver for Selkies GPU desktops on K3s: a thin typed client over `@kubernetes/client-node`
 * 2.x. It creates, reads and deletes the per-session objects (a Secret, a Pod, a Service, an Ingress or Traefik
 * IngressRoute, the user's PVC) in one namespace and checks a session through its route. Every failure leaves as an
 * InfraError (system 'kubernetes') whose `retryable` says whether trying again can help; idempotent ensure-methods
 * treat 409 AlreadyExists as "exists", deletes treat 404 as done.
 */
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  createConfiguration,
  KubeConfig,
  NetworkingV1Api,
  type PromiseHttpLibrary,
  ResponseContext,
  type RequestContext,
  ServerConfiguration,
  VersionApi,
  type V1Node,
  type V1Pod,
  type V1PersistentVolumeClaim,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { hasStatus, toInfraError } from './kubernetes-errors';
import {
  INGRESS_ROUTES,
  ingressManifest,
  ingressRouteManifest,
  MANAGED_BY,
  NETWORK_POLICY,
  networkPolicyManifest,
  podManifest,
  pvcManifest,
  type RouteOptions,
  secretManifest,
  serviceManifest,
  TRAEFIK_GROUP,
  TRAEFIK_VERSION,
} from './kubernetes-manifests';
import { probeRoute } from './kubernetes-route';
import type { Trust } from '../tls-trust';
import { type GpuNode, InfraError, type SelkiesDriver, type SelkiesPodState, type SelkiesPvcState } from './types';

export interface SelkiesDriverOptions {
  /** The API server, e.g. `https://k3s.lan:6443` (plain http only for the simulator). */
  url: string;
  /** A service-account bearer token with rights on `namespace` (and get/list on nodes for listGpuNodes). */
  token: string;
  namespace: string;
  /** Wildcard domain of the session hosts: `<name>.<routeDomain>` (one host per session: the web client needs the root). */
  routeDomain: string;
  /** Where the ingress listens, if the session hosts do not resolve from the bridge; default `https://<host>`. */
  routeOrigin?: string;
  /** Traefik IngressRoute (traefik.io/v1alpha1) instead of a networking.k8s.io/v1 Ingress. */
  useIngressRoute?: boolean;
  /** Traefik entry points of the routes (default `websecure`). */
  routeEntryPoints?: string[];
  /** Secret holding the wildcard certificate; routes get a TLS section naming it. */
  routeTlsSecretName?: string;
  /** How the route check verifies the ingress's certificate (its CA); default the system's CAs. */
  routeTrust?: Trust;
  /** The cluster CA (base64 PEM, as `certificate-authority-data` in a kubeconfig). */
  caData?: string;
  /** Replaces the HTTP transport of API calls (tests; a custom dispatcher). It then owns TLS: caData is not applied. */
  fetch?: typeof fetch;
  /** Per API request and per route check, default 15 s. */
  timeoutMs?: number;
}

/** Status reason of a create that met an existing object (409). */
const ALREADY_EXISTS = 'AlreadyExists';
/** Optimistic-concurrency retries of a Secret update before giving up with a retryable error. */
const MAX_UPDATE_ATTEMPTS = 3;

/** An HTTP transport over a caller-supplied fetch, for client-node's generated APIs. */
function fetchTransport(fetchImpl: typeof fetch): PromiseHttpLibrary {
  return {
    async send(request: RequestContext): Promise<ResponseContext> {
      const body = request.getBody();
      if (body !== undefined && typeof body !== 'string') throw new Error('only JSON request bodies are supported by the fetch transport');
      const res = await fetchImpl(request.getUrl(), {
        method: request.getHttpMethod(),
        headers: request.getHeaders(),
        body,
        signal: request.getSignal(),
      });
      const headers: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        headers[name] = value;
      });
      return new ResponseContext(res.status, headers, {
        text: () => res.text(),
        binary: async () => Buffer.from(await res.arrayBuffer()),
        stream: () => res.body,
      });
    },
  };
}

/** client-node's PromiseMiddleware (not exported by the package root). */
interface Middleware {
  pre(context: RequestContext): Promise<RequestContext>;
  post(context: ResponseContext): Promise<ResponseContext>;
}

/** Every request gets its own deadline: client-node has none of its own. */
function deadline(timeoutMs: number): Middleware {
  return {
    pre: async (context) => {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      return context;
    },
    post: async (response) => response,
  };
}

function labelOf(node: V1Node, key: string): string | undefined {
  return node.metadata?.labels?.[key];
}

function intOr(value: string | undefined, fallback: number): number {
  const n = value === undefined ? Number.NaN : Number.parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/**
 * NVIDIA's device plugin with time-slicing: allocatable nvidia.com/gpu = GPUs × time-slicing replicas; GFD labels carry
 * count, replicas and model.
 */
function toGpuNode(node: V1Node): GpuNode | null {
  const slots = Number.parseInt(node.status?.allocatable?.['nvidia.com/gpu'] ?? '0', 10);
  if (!Number.isFinite(slots) || slots <= 0) return null;
  const slotsPerGpu = intOr(labelOf(node, 'nvidia.com/gpu.replicas'), 1);
  return {
    node: node.metadata?.name ?? '',
    gpus: intOr(labelOf(node, 'nvidia.com/gpu.count'), Math.max(1, Math.floor(slots / slotsPerGpu))),
    slotsPerGpu,
    allocatableSlots: slots,
    model: labelOf(node, 'nvidia.com/gpu.product') ?? 'unknown',
    ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
  };
}

const PHASES = new Set(['Pending', 'Running', 'Succeeded', 'Failed']);
/** Waiting reasons that are progress, not trouble. */
const NORMAL_WAITING = new Set(['ContainerCreating', 'PodInitializing']);

function toPodState(pod: V1Pod): SelkiesPodState {
  const status = pod.status;
  const phase = status?.phase && PHASES.has(status.phase) ? (status.phase as SelkiesPodState['phase']) : 'Unknown';
  const scheduled = status?.conditions?.find((c) => c.type === 'PodScheduled');
  const statuses = status?.containerStatuses ?? [];
  const desktop = statuses.find((c) => c.name === 'desktop') ?? statuses[0];
  let containerReason: string | null = null;
  let containerMessage: string | null = null;
  const waiting = desktop?.state?.waiting;
  if (waiting?.reason && !NORMAL_WAITING.has(waiting.reason)) {
    containerReason = waiting.reason;
    // CrashLoopBackOff only says "back-off …"; the cause is the last termination (e.g. a StartError of the NVIDIA hook).
    containerMessage = desktop?.lastState?.terminated?.message ?? waiting.message ?? null;
  } else if (desktop?.state?.terminated) {
    containerReason = desktop.state.terminated.reason ?? 'Terminated';
    containerMessage = desktop.state.terminated.message ?? null;
  } else if (phase === 'Failed') {
    // Kubelet admission failures (OutOfnvidia.com/gpu, UnexpectedAdmissionError) leave the reason on the pod.
    containerReason = status?.reason ?? null;
    containerMessage = status?.message ?? null;
  }
  return {
    phase,
    ready: status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    node: pod.spec?.nodeName ?? null,
    deleting: Boolean(pod.metadata?.deletionTimestamp),
    homeClaim: pod.spec?.volumes?.find((v) => v.name === 'home')?.persistentVolumeClaim?.claimName ?? null,
    schedulingMessage: scheduled?.status === 'False' ? (scheduled.message ?? scheduled.reason ?? 'Unschedulable') : null,
    containerReason,
    containerMessage,
  };
}

function toPvcState(pvc: V1PersistentVolumeClaim): SelkiesPvcState {
  const phase = pvc.status?.phase === 'Bound' || pvc.status?.phase === 'Lost' ? pvc.status.phase : 'Pending';
  return {
    phase,
    // local-path volumes are node-bound; the selected node is where the user's next session must run.
    node: pvc.metadata?.annotations?.['volume.kubernetes.io/selected-node'] ?? null,
    deleting: Boolean(pvc.metadata?.deletionTimestamp),
    storage: pvc.spec?.resources?.requests?.storage ?? pvc.status?.capacity?.storage ?? '',
  };
}

function sameStrings(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

export function createSelkiesDriver(opts: SelkiesDriverOptions): SelkiesDriver {
  const { namespace } = opts;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const routeOptions: RouteOptions = { entryPoints: opts.routeEntryPoints ?? ['websecure'], tlsSecretName: opts.routeTlsSecretName };

  const kc = new KubeConfig();
  kc.loadFromOptions({
    // client-node refuses an http:// server unless skipTLSVerify is set; there is no TLS to verify then.
    clusters: [{ name: 'cluster', server: opts.url, skipTLSVerify: opts.url.startsWith('http:'), caData: opts.caData }],
    users: [{ name: 'bridge', token: opts.token }],
    contexts: [{ name: 'bridge', cluster: 'cluster', user: 'bridge', namespace }],
    currentContext: 'bridge',
  });
  // What kc.makeApiClient builds, plus a per-request deadline and an optional transport.
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(opts.url.replace(/\/+$/, ''), {}),
    authMethods: { default: kc },
    ...(opts.fetch ? { httpApi: wrapHttpLibrary(fetchTransport(opts.fetch)) } : {}),
    promiseMiddleware: [deadline(timeoutMs)],
  });
  const core = new CoreV1Api(configuration);
  const networking = new NetworkingV1Api(configuration);
  const custom = new CustomObjectsApi(configuration);
  const authz = new AuthorizationV1Api(configuration);

  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toInfraError(e, what);
    }
  }

  /** Create, or `exists` when the name is taken (409 AlreadyExists); anything else throws. */
  async function ensure(what: string, create: () => Promise<unknown>): Promise<'created' | 'exists'> {
    try {
      await create();
      return 'created';
    } catch (e) {
      if (hasStatus(e, 409, ALREADY_EXISTS)) return 'exists';
      throw toInfraError(e, what);
    }
  }

  /** Read, or null on 404. */
  async function read<T>(what: string, get: () => Promise<T>): Promise<T | null> {
    try {
      return await get();
    } catch (e) {
      if (hasStatus(e, 404)) return null;
      throw toInfraError(e, what);
    }
  }

  /** Delete; a missing object is already deleted. */
  async function remove(what: string, del: () => Promise<unknown>): Promise<void> {
    try {
      await del();
    } catch (e) {
      if (hasStatus(e, 404)) return;
      throw toInfraError(e, what);
    }
  }

  return {
    async listGpuNodes() {
      const nodes = await call('list nodes', () => core.listNode());
      return nodes.items.map(toGpuNode).filter((n): n is GpuNode => n !== null);
    },

    async ensureSecret(name, data, labels) {
      const what = `ensure secret ${namespace}/${name}`;
      const outcome = await ensure(what, () => core.createNamespacedSecret({ namespace, body: secretManifest(name, data, labels) }));
      if (outcome === 'created') return 'created';
      const wantedLabels = { ...labels, ...MANAGED_BY };
      for (let attempt = 1; ; attempt++) {
        const current = await call(what, () => core.readNamespacedSecret({ name, namespace }));
        const currentData = Object.fromEntries(
          Object.entries(current.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        );
        if (sameStrings(currentData, data) && sameStrings(current.metadata?.labels ?? {}, wantedLabels)) return 'unchanged';
        const body = secretManifest(name, data, labels);
        // The resourceVersion makes the replace conditional: a concurrent writer turns it into 409 Conflict.
        body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
        try {
          await core.replaceNamespacedSecret({ name, namespace, body });
          return 'updated';
        } catch (e) {
          if (!hasStatus(e, 409, 'Conflict') || attempt >= MAX_UPDATE_ATTEMPTS) throw toInfraError(e, what);
        }
      }
    },

    ensurePvc: (name, storageGi, labels) =>
      ensure(`ensure pvc ${namespace}/${name}`, () =>
        core.createNamespacedPersistentVolumeClaim({ namespace, body: pvcManifest(name, storageGi, labels) }),
      ),

    async ensurePod(spec) {
      const what = `ensure pod ${namespace}/${spec.name}`;
      const outcome = await ensure(what, () => core.createNamespacedPod({ namespace, body: podManifest(spec) }));
      if (outcome === 'created') return outcome;
      // Deletion is graceful (the pod lingers with a deletionTimestamp). A pod of that name that is terminating will
      // vanish: not "exists".
      const existing = await read(what, () => core.readNamespacedPod({ name: spec.name, namespace }));
      if (existing === null || existing.metadata?.deletionTimestamp)
        throw new InfraError(`kubernetes ${what}: a pod of that name is still terminating`, 'kubernetes', 409, true);
      return 'exists';
    },

    ensureService: (name, selector, labels) =>
      ensure(`ensure service ${namespace}/${name}`, () =>
        core.createNamespacedService({ namespace, body: serviceManifest(name, selector, labels) }),
      ),

    ensureRoute(name, host, serviceName, labels) {
      if (opts.useIngressRoute)
        return ensure(`ensure ingressroute ${namespace}/${name}`, () =>
          custom.createNamespacedCustomObject({
            group: TRAEFIK_GROUP,
            version: TRAEFIK_VERSION,
            namespace,
            plural: INGRESS_ROUTES,
            body: ingressRouteManifest(name, host, serviceName, labels, routeOptions),
          }),
        );
      return ensure(`ensure ingress ${namespace}/${name}`, () =>
        networking.createNamespacedIngress({ namespace, body: ingressManifest(name, host, serviceName, labels, routeOptions) }),
      );
    },

    async getPod(name) {
      const pod = await read(`get pod ${namespace}/${name}`, () => core.readNamespacedPod({ name, namespace }));
      return pod ? toPodState(pod) : null;
    },

    async getPvc(name) {
      const pvc = await read(`get pvc ${namespace}/${name}`, () => core.readNamespacedPersistentVolumeClaim({ name, namespace }));
      return pvc ? toPvcState(pvc) : null;
    },

    deletePod: (name, options) =>
      remove(`delete pod ${namespace}/${name}`, () =>
        core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: options?.gracePeriodSeconds }),
      ),
    deleteService: (name) => remove(`delete service ${namespace}/${name}`, () => core.deleteNamespacedService({ name, namespace })),
    deleteRoute(name) {
      if (opts.useIngressRoute)
        return remove(`delete ingressroute ${namespace}/${name}`, () =>
          custom.deleteNamespacedCustomObject({ group: TRAEFIK_GROUP, version: TRAEFIK_VERSION, namespace, plural: INGRESS_ROUTES, name }),
        );
      return remove(`delete ingress ${namespace}/${name}`, () => networking.deleteNamespacedIngress({ name, namespace }));
    },
    deleteSecret: (name) => remove(`delete secret ${namespace}/${name}`, () => core.deleteNamespacedSecret({ name, namespace })),
    deletePvc: (name) => remove(`delete pvc ${namespace}/${name}`, () => core.deleteNamespacedPersistentVolumeClaim({ name, namespace })),

    routeHost: (name) => `${name}.${opts.routeDomain}`,

    checkRoute: (host, user, password) => probeRoute(host, user, password, { origin: opts.routeOrigin, timeoutMs, trust: opts.routeTrust }),

    async probe(checks) {
      const version = await call('read the version', () => new VersionApi(configuration).getCode());
      const denied: string[] = [];
      for (const c of checks) {
        const review = await call(`review ${c.verb} ${c.resource}`, () =>
          authz.createSelfSubjectAccessReview({
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: {
                resourceAttributes: { verb: c.verb, resource: c.resource, group: c.group ?? '', ...(c.namespaced ? { namespace } : {}) },
              },
            },
          }),
        );
        if (!review.status?.allowed) denied.push(`${c.verb} ${c.group ? `${c.resource}.${c.group}` : c.resource}`);
      }
      return { gitVersion: version.gitVersion, denied };
    },

    ensureNetworkPolicy: (blockedCidrs) =>
      ensure(`ensure networkpolicy ${namespace}/${NETWORK_POLICY}`, () =>
        networking.createNamespacedNetworkPolicy({ namespace, body: networkPolicyManifest(blockedCidrs) }),
      ),

    async listSessions(labels) {
      const labelSelector = Object.entries({ ...labels, ...MANAGED_BY })
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const [pods, services, secrets] = await Promise.all([
        call('list pods', () => core.listNamespacedPod({ namespace, labelSelector })),
        call('list services', () => core.listNamespacedService({ namespace, labelSelector })),
        call('list secrets', () => core.listNamespacedSecret({ namespace, labelSelector })),
      ]);
      const sessions = new Map<string, { desktopId: string; phase: string | null; node: string | null; gpuSlots: number }>();
      const note = (objLabels: Record<string, string> | undefined) => {
        const id = objLabels?.['cdaas/desktop'];
        if (!id) return null;
        const entry = sessions.get(id) ?? { desktopId: id, phase: null, node: null, gpuSlots: 0 };
        sessions.set(id, entry);
        return entry;
      };
      for (const pod of pods.items) {
        const entry = note(pod.metadata?.labels);
        if (!entry) continue;
        entry.phase = pod.status?.phase ?? 'Unknown';
        entry.node = pod.spec?.nodeName ?? null;
        entry.gpuSlots = (pod.spec?.containers ?? []).reduce(
          (n, c) => n + Number.parseInt(String(c.resources?.limits?.['nvidia.com/gpu'] ?? '0'), 10),
          0,
        );
      }
      for (const svc of services.items) note(svc.metadata?.labels);
      for (const secret of secrets.items) note(secret.metadata?.labels);
      return [...sessions.values()];
    },

    async podEvents(name) {
      const list = await call(`list events of pod ${namespace}/${name}`, () =>
        core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}` }),
      );
      return list.items
        .map((e) => ({
          reason: e.reason ?? '',
          message: e.message ?? '',
          type: e.type ?? 'Normal',
          at: String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? ''),
        }))
        .sort((a, b) => a.at.localeCompare(b.at));
    },
  };
}
