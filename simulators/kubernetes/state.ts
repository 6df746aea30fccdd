/**
 * The simulated K3s cluster: an object store with server-filled metadata, and the controllers a desktop session meets:
 * the scheduler (node selector, GPU/CPU/memory capacity with time-slicing, local-path volume node affinity), the
 * local-path provisioner (WaitForFirstConsumer), the kubelet (env from Secrets, image pull, NVIDIA runtime, tcpSocket
 * readiness on 8080), graceful pod deletion, pvc-protection and a minimal Deployment controller. Every step waits on a
 * real timer so a create answers `Pending` and later reads show the progress; 0 ms delays finish within a few ticks.
 *
 * Every pod behaves like a Selkies desktop image: nginx on 8080 with Basic auth on every path.
 */
import type { SimTls } from '../shared/http-server';
import { createHash, randomUUID } from 'node:crypto';
import {
  applyDefaults,
  DEFAULT_GRACE_SECONDS,
  defaultPod,
  foldStringData,
  LOCAL_PATH,
  namespaceBody,
  nodeBody,
  nodeIp,
  PVC_PROTECTION,
} from './defaults';
import { desktopContainer, gpuLimit, NVIDIA_GPU, NVIDIA_RUNTIME_CLASSES, podRequests, probeCanPass, qosClass } from './desktop';
import type { FaultInjector } from './faults';
import {
  admissionForbidden,
  alreadyExists,
  badRequest,
  conflict,
  type FieldError,
  type SimToken,
  invalid,
  methodNotAllowed,
  namespaceNotFound,
  notFound,
  StatusError,
} from './http';
import {
  child,
  clone,
  hashName,
  isRecord,
  type KubeObject,
  keyOf,
  type Labels,
  mergePatch,
  randomSuffix,
  resourceKey,
  rfc3339,
} from './objects';
import { parseQuantity } from './quantity';
import { apiVersionOf, type ResourceInfo, RESOURCES, resourceByKind } from './resources';
import {
  type Container,
  type Deployment,
  decodeError,
  GenericSchema,
  IngressRouteSchema,
  IngressSchema,
  NetworkPolicySchema,
  type ObjectMeta,
  type Pod,
  PodSchema,
  type PodSpec,
  type Pvc,
  PvcSchema,
  SCHEMA_BY_KIND,
  SecretSchema,
  ConfigMapSchema,
  DeploymentSchema,
  ServiceSchema,
} from './schemas';
import { parseFieldSelector, parseLabelSelector } from './selectors';
import {
  checkQuantities,
  checkSecretData,
  podQuantities,
  validateConfigKeys,
  validateDeployment,
  validateIngress,
  validateIngressRoute,
  validateNetworkPolicy,
  validateMeta,
  validatePod,
  validatePvc,
  validateService,
} from './validation';

export interface SimGpu {
  /** Physical GPUs on the node (GFD label nvidia.com/gpu.count). */
  count: number;
  /** Time-slicing replicas per GPU (NVIDIA k8s-device-plugin): allocatable nvidia.com/gpu = count × replicas. */
  replicas: number;
  /** GFD label nvidia.com/gpu.product. */
  product: string;
  /** Device-plugin option `failRequestsGreaterThanOne`: a container asking for more than one shared GPU fails admission. */
  failRequestsGreaterThanOne?: boolean;
}

export interface SimNodeSpec {
  name: string;
  cpu: string;
  memory: string;
  gpu?: SimGpu;
  labels?: Record<string, string>;
  internalIp?: string;
}

export interface KubernetesSimOptions {
  host: string;
  /** 0 = a random free port. */
  port: number;
  /** The cluster-admin bearer token. */
  token: string;
  /** More tokens, e.g. one limited to some namespaces (RBAC → 403 Forbidden elsewhere). */
  tokens: SimToken[];
  /** Namespaces that exist at start; creating in any other one is a 404 (NamespaceLifecycle). */
  namespaces: string[];
  nodes: SimNodeSpec[];
  /** RuntimeClasses K3s created; a pod naming another one is refused at admission. */
  runtimeClasses: string[];
  /** The wildcard domain of the session hosts; only used by main.ts and to describe the route stand-in. */
  routeDomain: string;
  /** Whether Traefik's CRDs (traefik.io/v1alpha1) are installed; without them the IngressRoute paths are 404. */
  ingressRouteCrd: boolean;
  /**
   * Traefik's `allowEmptyServices`: true → a route whose service has no ready pod answers 503 "no available
   * server"; false (Traefik's default) → the router is dropped and the host answers 404 (traefik/traefik#9242).
   */
  allowEmptyServices: boolean;
  /** Until the scheduler binds a pod (or gives up for now). */
  scheduleDelayMs: number;
  /** From binding to the container running (image pull + create + start). */
  containerStartDelayMs: number;
  /** From container start to Ready=True (the readinessProbe on tcp 8080 succeeding). */
  readyDelayMs: number;
  /** How long a deleted, running pod lingers with deletionTimestamp (capped by its own grace period). */
  deletionGraceMs: number;
  /** How often unschedulable pods are tried again (besides cluster events); 0 = only on events. */
  rescheduleIntervalMs: number;
  /**
   * The first pull of an image on a node (the desktop images are several GB: minutes on a cold node); later pods on
   * that node find it cached. 0 = every image is cached everywhere.
   */
  imagePullMs: number;
  /** Bytes the kubelet reports in its "Successfully pulled image" event. */
  imageSizeBytes: number;
  /** The simulator's clock for timestamps (ms epoch); delays always run on real timers. */
  now: () => number;
  /** HTTPS for the API server (and, through SNI, for the routes), as K3s serves it with its own CA. */
  tls?: SimTls;
  /** A `kubernetes.io/tls` secret the operator stored for the session hosts (e.g. by cert-manager): seeded at start. */
  routeTls?: { namespace: string; secretName: string; cert: string; key: string };
}

interface ContainerState {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: { exitCode: number; reason: string; message?: string; startedAt?: string; finishedAt?: string };
}

interface ContainerStatus {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerState;
  lastState: ContainerState;
}

interface PodCondition {
  type: string;
  status: 'True' | 'False';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

interface PodStatus {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  conditions: PodCondition[];
  qosClass: string;
  reason?: string;
  message?: string;
  hostIP?: string;
  hostIPs?: Array<{ ip: string }>;
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  startTime?: string;
  containerStatuses?: ContainerStatus[];
}

interface PodRuntime {
  status: PodStatus;
  /** Env of each container as resolved at its start (later Secret changes do not reach a running container). */
  env: Map<string, Labels>;
  /** Pull attempts left that fail (the image_pull fault: a registry hiccup the kubelet's retries get past). */
  pullFailuresLeft: number | undefined;
  /** The image_missing fault: the registry has no such manifest; the kubelet retries forever. */
  imageMissing: boolean | undefined;
  pullAttempts: number;
  waitingOnConfig: boolean;
  unschedulable: boolean;
}

export interface SimStats {
  requests: number;
  byVerb: Record<string, number>;
  byResource: Record<string, number>;
  schedulingAttempts: number;
  podsScheduled: number;
  podsUnschedulable: number;
  podsStarted: number;
  routeRequests: number;
}

export interface PodBackend {
  pod: KubeObject;
  ready: boolean;
  /** Env of the container serving 8080, as resolved at its start. */
  env: Labels;
}

export class Cluster {
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private readonly pods = new Map<string, PodRuntime>();
  /** Files "written by the user" per PVC uid: the stand-in for the data on the local-path volume. */
  private readonly volumes = new Map<string, Map<string, string>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private rescheduleTimer: NodeJS.Timeout | null = null;
  private periodicTimer: NodeJS.Timeout | null = null;
  private resourceVersion = 1000;
  private podIpCounter = 0;
  /** `<node>|<image>`: what each node has pulled already. */
  private readonly imageCache = new Set<string>();
  private eventCounter = 0;
  private serviceIpCounter = 0;
  stats: SimStats = Cluster.emptyStats();

  constructor(
    private readonly options: KubernetesSimOptions,
    private readonly faults: FaultInjector,
  ) {
    this.seed();
  }

  static emptyStats(): SimStats {
    return {
      requests: 0,
      byVerb: {},
      byResource: {},
      schedulingAttempts: 0,
      podsScheduled: 0,
      podsUnschedulable: 0,
      podsStarted: 0,
      routeRequests: 0,
    };
  }

  // --- lifecycle of the simulator itself ---------------------------------------------------------

  reset(): void {
    this.dispose();
    this.store.clear();
    this.pods.clear();
    this.volumes.clear();
    this.imageCache.clear();
    this.stats = Cluster.emptyStats();
    this.seed();
  }

  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.rescheduleTimer) clearTimeout(this.rescheduleTimer);
    if (this.periodicTimer) clearInterval(this.periodicTimer);
    this.rescheduleTimer = null;
    this.periodicTimer = null;
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private nextVersion(): string {
    this.resourceVersion += 1;
    return String(this.resourceVersion);
  }

  private allocateServiceIp(): string {
    this.serviceIpCounter += 1;
    return `10.43.${Math.floor(this.serviceIpCounter / 250)}.${(this.serviceIpCounter % 250) + 2}`;
  }

  private now(): string {
    return rfc3339(this.options.now());
  }

  private bucket(r: ResourceInfo): Map<string, KubeObject> {
    const key = resourceKey(r);
    let bucket = this.store.get(key);
    if (!bucket) {
      bucket = new Map();
      this.store.set(key, bucket);
    }
    return bucket;
  }

  /** Stores an object the cluster itself owns (nodes, namespaces, classes, PVs). */
  private put(r: ResourceInfo, namespace: string | undefined, name: string, body: Record<string, unknown>): KubeObject {
    const meta = isRecord(body.metadata) ? body.metadata : {};
    const obj = {
      ...body,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: {
        ...meta,
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: this.nextVersion(),
        creationTimestamp: this.now(),
      },
    } as KubeObject;
    this.bucket(r).set(keyOf(namespace, name), obj);
    return obj;
  }

  private seed(): void {
    for (const ns of this.options.namespaces) this.put(resourceByKind('Namespace'), undefined, ns, namespaceBody(ns));
    for (const [i, node] of this.options.nodes.entries())
      this.put(resourceByKind('Node'), undefined, node.name, nodeBody(node, i, this.now()));
    for (const name of this.options.runtimeClasses) this.put(resourceByKind('RuntimeClass'), undefined, name, { handler: name });
    const tls = this.options.routeTls;
    if (tls && this.options.namespaces.includes(tls.namespace)) {
      this.put(resourceByKind('Secret'), tls.namespace, tls.secretName, {
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from(tls.cert).toString('base64'), 'tls.key': Buffer.from(tls.key).toString('base64') },
      });
    }
    this.put(resourceByKind('StorageClass'), undefined, LOCAL_PATH, {
      metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'rancher.io/local-path',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: false,
    });
    if (this.options.rescheduleIntervalMs > 0) {
      this.periodicTimer = setInterval(() => this.retryUnschedulable(), this.options.rescheduleIntervalMs);
      this.periodicTimer.unref();
    }
  }

  // --- reads -------------------------------------------------------------------------------------

  exists(r: ResourceInfo, namespace: string | undefined, name: string): boolean {
    return this.bucket(r).has(keyOf(namespace, name));
  }

  namespaceExists(namespace: string): boolean {
    return this.exists(resourceByKind('Namespace'), undefined, namespace);
  }

  /** The stored object itself (not a copy); callers that hand it out clone it. */
  peek(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(r).get(keyOf(namespace, name));
    if (obj && r.kind === 'Deployment') this.refreshDeploymentStatus(obj);
    return obj;
  }

  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const obj = this.peek(r, namespace, name);
    if (!obj) throw notFound(r, name);
    return clone(obj);
  }

  all(r: ResourceInfo, namespace?: string): KubeObject[] {
    const items = [...this.bucket(r).values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace);
    if (r.kind === 'Deployment') for (const d of items) this.refreshDeploymentStatus(d);
    return items.sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)));
  }

  list(r: ResourceInfo, namespace: string | undefined, labelSelector: string | null, fieldSelector: string | null): KubeObject[] {
    const byLabels = parseLabelSelector(labelSelector);
    const involved = (o: Record<string, unknown>, key: string) =>
      isRecord(o.involvedObject) && typeof o.involvedObject[key] === 'string' ? (o.involvedObject[key] as string) : undefined;
    // The fields the API server's event registry supports (pkg/registry/core/event: involvedObject.*, reason, type).
    const eventFields: Record<string, (o: Record<string, unknown>) => string | undefined> = {
      'involvedObject.kind': (o) => involved(o, 'kind'),
      'involvedObject.name': (o) => involved(o, 'name'),
      'involvedObject.namespace': (o) => involved(o, 'namespace'),
      'involvedObject.uid': (o) => involved(o, 'uid'),
      reason: (o) => (typeof o.reason === 'string' ? o.reason : undefined),
      type: (o) => (typeof o.type === 'string' ? o.type : undefined),
    };
    const podFields: Record<string, (o: Record<string, unknown>) => string | undefined> =
      r.kind === 'Event'
        ? eventFields
        : r.kind === 'Pod'
          ? {
              'spec.nodeName': (o: Record<string, unknown>) =>
                isRecord(o.spec) && typeof o.spec.nodeName === 'string' ? o.spec.nodeName : undefined,
              'status.phase': (o: Record<string, unknown>) =>
                isRecord(o.status) && typeof o.status.phase === 'string' ? o.status.phase : undefined,
            }
          : {};
    const byFields = parseFieldSelector(fieldSelector, podFields);
    return this.all(r, namespace)
      .filter((o) => byLabels(o.metadata.labels ?? {}) && byFields(o))
      .map(clone);
  }

  listResourceVersion(): string {
    return String(this.resourceVersion);
  }

  // --- writes ------------------------------------------------------------------------------------

  private decode(r: ResourceInfo, body: unknown): Record<string, unknown> {
    if (!isRecord(body))
      throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: the body is not a JSON object`);
    const schema = SCHEMA_BY_KIND[r.kind] ?? GenericSchema;
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw decodeError(r, body, parsed.error);
    const apiVersion = body.apiVersion;
    if (typeof apiVersion === 'string' && apiVersion !== apiVersionOf(r))
      throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
    if (typeof body.kind === 'string' && body.kind !== r.kind)
      throw badRequest(
        `${r.kind} in version "${r.version}" cannot be handled as a ${body.kind}: the object provided is unrecognized (must be of type ${r.kind})`,
      );
    return clone(body);
  }

  /** 400s for values the decoder rejects, then the 422 field validation. */
  private validate(r: ResourceInfo, obj: Record<string, unknown>): void {
    const meta = (isRecord(obj.metadata) ? obj.metadata : {}) as ObjectMeta;
    const errors: FieldError[] = [];
    validateMeta(r, meta, errors);
    switch (r.kind) {
      case 'Pod': {
        const pod = PodSchema.parse(obj);
        podQuantities(r, pod.spec);
        validatePod(pod, errors);
        break;
      }
      case 'Service':
        validateService(ServiceSchema.parse(obj), errors);
        break;
      case 'PersistentVolumeClaim': {
        const pvc = PvcSchema.parse(obj);
        checkQuantities(r, pvc.spec?.resources?.requests);
        validatePvc(pvc, errors);
        break;
      }
      case 'Secret': {
        const secret = SecretSchema.parse(obj);
        checkSecretData(r, secret);
        validateConfigKeys(secret.data, 'data', errors);
        validateConfigKeys(secret.stringData, 'stringData', errors);
        break;
      }
      case 'ConfigMap':
        validateConfigKeys(ConfigMapSchema.parse(obj).data, 'data', errors);
        break;
      case 'Ingress':
        validateIngress(IngressSchema.parse(obj), errors);
        break;
      case 'IngressRoute':
        validateIngressRoute(IngressRouteSchema.parse(obj), errors);
        break;
      case 'NetworkPolicy':
        validateNetworkPolicy(NetworkPolicySchema.parse(obj), errors);
        break;
      case 'Deployment': {
        const dep = DeploymentSchema.parse(obj);
        podQuantities(r, dep.spec?.template?.spec);
        validateDeployment(dep, errors);
        break;
      }
    }
    if (errors.length > 0) throw invalid(r, meta.name ?? '', errors);
  }

  private checkVerb(r: ResourceInfo, verb: string): void {
    if (!r.verbs.includes(verb)) throw methodNotAllowed();
  }

  create(r: ResourceInfo, namespace: string | undefined, body: unknown): KubeObject {
    this.checkVerb(r, 'create');
    if (namespace !== undefined && !this.namespaceExists(namespace)) throw namespaceNotFound(namespace);
    const obj = this.decode(r, body);
    const meta = child(obj, 'metadata') as ObjectMeta;
    if (namespace !== undefined && meta.namespace !== undefined && meta.namespace !== namespace)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix(5)}`;
    this.validate(r, obj);
    const name = meta.name ?? '';
    if (r.kind === 'Pod') this.admitPod(r, name, obj);
    const existing = this.bucket(r).get(keyOf(namespace, name));
    if (existing) throw alreadyExists(r, name, Boolean(existing.metadata.deletionTimestamp));

    for (const k of [
      'uid',
      'resourceVersion',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'generation',
    ] as const)
      delete meta[k];
    const stored = {
      ...obj,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: {
        ...meta,
        name,
        ...(namespace !== undefined ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: this.nextVersion(),
        ...(r.generation ? { generation: 1 } : {}),
        creationTimestamp: this.now(),
      },
    } as KubeObject;
    applyDefaults(r, stored, {
      allocateServiceIp: () => this.allocateServiceIp(),
      ingressIp: this.options.nodes[0] ? nodeIp(this.options.nodes[0], 0) : undefined,
    });
    this.bucket(r).set(keyOf(namespace, name), stored);
    this.afterCreate(r, stored);
    return clone(stored);
  }

  /** Admission: a pod naming a RuntimeClass that does not exist is refused before it is stored. */
  private admitPod(r: ResourceInfo, name: string, obj: Record<string, unknown>): void {
    const spec = PodSchema.parse(obj).spec;
    const rc = spec?.runtimeClassName;
    if (rc != null && !this.exists(resourceByKind('RuntimeClass'), undefined, rc))
      throw admissionForbidden(r, name, `pod rejected: RuntimeClass "${rc}" not found`);
  }

  private afterCreate(r: ResourceInfo, obj: KubeObject): void {
    switch (r.kind) {
      case 'Pod':
        this.podCreated(obj);
        break;
      case 'Secret':
      case 'ConfigMap':
        this.wakeConfigWaiters();
        break;
      case 'PersistentVolumeClaim':
        this.rescheduleSoon();
        break;
      case 'Deployment':
        this.reconcileDeployment(obj);
        break;
    }
  }

  /** PUT: replaces the object; `status` is kept (it has its own subresource), metadata.resourceVersion is checked. */
  replace(r: ResourceInfo, namespace: string | undefined, name: string, body: unknown): KubeObject {
    this.checkVerb(r, 'update');
    const existing = this.peek(r, namespace, name);
    if (!existing) throw notFound(r, name);
    const obj = this.decode(r, body);
    const meta = child(obj, 'metadata') as ObjectMeta;
    if (meta.name !== undefined && meta.name !== name)
      throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    if (namespace !== undefined && meta.namespace !== undefined && meta.namespace !== namespace)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '' && meta.resourceVersion !== existing.metadata.resourceVersion)
      throw conflict(r, name);
    meta.name = name;
    return this.update(r, existing, obj);
  }

  /** PATCH: application/merge-patch+json and strategic-merge-patch+json (applied as a merge patch). */
  patch(r: ResourceInfo, namespace: string | undefined, name: string, patch: unknown, contentType: string): KubeObject {
    this.checkVerb(r, 'patch');
    const type = contentType.split(';')[0]?.trim() ?? '';
    if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json')
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    const existing = this.peek(r, namespace, name);
    if (!existing) throw notFound(r, name);
    if (!isRecord(patch)) throw badRequest('the patch is not a JSON object');
    const patchedRv = isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (typeof patchedRv === 'string' && patchedRv !== existing.metadata.resourceVersion) throw conflict(r, name);
    const merged = mergePatch(clone(existing), patch);
    return this.update(r, existing, this.decode(r, merged));
  }

  private update(r: ResourceInfo, existing: KubeObject, obj: Record<string, unknown>): KubeObject {
    const name = existing.metadata.name;
    this.validate(r, obj);
    const meta = child(obj, 'metadata') as ObjectMeta;
    this.checkImmutable(r, existing, obj);
    const specChanged = JSON.stringify(obj.spec ?? null) !== JSON.stringify(existing.spec ?? null);
    const next = {
      ...obj,
      apiVersion: apiVersionOf(r),
      kind: r.kind,
      metadata: {
        ...meta,
        name,
        ...(existing.metadata.namespace !== undefined ? { namespace: existing.metadata.namespace } : {}),
        uid: existing.metadata.uid,
        creationTimestamp: existing.metadata.creationTimestamp,
        resourceVersion: this.nextVersion(),
        ...(r.generation ? { generation: (existing.metadata.generation ?? 1) + (specChanged ? 1 : 0) } : {}),
        ...(existing.metadata.deletionTimestamp ? { deletionTimestamp: existing.metadata.deletionTimestamp } : {}),
        ...(existing.metadata.deletionGracePeriodSeconds !== undefined
          ? { deletionGracePeriodSeconds: existing.metadata.deletionGracePeriodSeconds }
          : {}),
      },
    } as KubeObject;
    if ('status' in existing) next.status = existing.status;
    if (r.kind === 'PersistentVolumeClaim') next.metadata.finalizers = [...new Set([...(next.metadata.finalizers ?? []), PVC_PROTECTION])];
    if (r.kind === 'Secret') {
      next.type = existing.type;
      foldStringData(next, SecretSchema.parse(next));
    }
    if (r.kind === 'Pod') {
      defaultPod(next);
      // Binding is the scheduler's (a subresource), not part of what a client PUTs.
      const nodeName = isRecord(existing.spec) ? existing.spec.nodeName : undefined;
      if (nodeName !== undefined) child(next, 'spec').nodeName = nodeName;
    }
    if (r.kind === 'Service') {
      const spec = child(next, 'spec');
      const old = isRecord(existing.spec) ? existing.spec : {};
      spec.clusterIP = old.clusterIP;
      spec.clusterIPs = old.clusterIPs;
    }
    this.bucket(r).set(keyOf(existing.metadata.namespace, name), next);
    if (r.kind === 'Secret' || r.kind === 'ConfigMap') this.wakeConfigWaiters();
    if (r.kind === 'Deployment') this.reconcileDeployment(next);
    return clone(next);
  }

  private checkImmutable(r: ResourceInfo, existing: KubeObject, obj: Record<string, unknown>): void {
    const name = existing.metadata.name;
    if (r.kind === 'Pod') {
      const strip = (spec: unknown) => {
        const copy = clone(isRecord(spec) ? spec : {});
        for (const c of Array.isArray(copy.containers) ? copy.containers : []) if (isRecord(c)) delete c.image;
        return JSON.stringify(copy);
      };
      const next = clone(obj) as KubeObject;
      defaultPod(next);
      const nextSpec = isRecord(next.spec) ? { ...next.spec, nodeName: isRecord(existing.spec) ? existing.spec.nodeName : undefined } : {};
      if (strip(nextSpec) !== strip(existing.spec))
        throw invalid(r, name, [
          {
            type: 'Forbidden',
            field: 'spec',
            detail:
              'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
          },
        ]);
    }
    if (r.kind === 'Service') {
      const ip = isRecord(obj.spec) ? obj.spec.clusterIP : undefined;
      const old = isRecord(existing.spec) ? existing.spec.clusterIP : undefined;
      if (typeof ip === 'string' && ip !== '' && ip !== old)
        throw invalid(r, name, [{ type: 'Invalid', field: 'spec.clusterIP', value: ip, detail: 'field is immutable' }]);
    }
    if (r.kind === 'PersistentVolumeClaim') {
      const next = PvcSchema.parse(obj).spec;
      const old = PvcSchema.parse(existing).spec;
      const without = (s: Pvc['spec']) =>
        JSON.stringify({
          ...s,
          resources: undefined,
          storageClassName: s?.storageClassName ?? LOCAL_PATH,
          volumeMode: s?.volumeMode ?? 'Filesystem',
          volumeName: undefined,
        });
      if (without(next) !== without(old))
        throw invalid(r, name, [
          {
            type: 'Forbidden',
            field: 'spec',
            detail: 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims',
          },
        ]);
      const size = (s: Pvc['spec']) => parseQuantity(s?.resources?.requests?.storage ?? 0) ?? 0;
      if (size(next) !== size(old))
        // local-path has allowVolumeExpansion false.
        throw admissionForbidden(
          r,
          name,
          'only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
        );
    }
    if ((r.kind === 'Secret' || r.kind === 'ConfigMap') && existing.immutable === true) {
      const same = JSON.stringify(obj.data ?? {}) === JSON.stringify(existing.data ?? {}) && obj.stringData === undefined;
      if (!same) throw invalid(r, name, [{ type: 'Forbidden', field: 'data', detail: 'field is immutable when `immutable` is set' }]);
    }
  }

  /**
   * DELETE. Pods bound to a node linger with deletionTimestamp for the grace period; a claim still mounted stays
   * Terminating (pvc-protection); a Deployment's pods go with it (background cascade).
   */
  remove(
    r: ResourceInfo,
    namespace: string | undefined,
    name: string,
    opts: { gracePeriodSeconds?: number; propagationPolicy?: string },
  ): Record<string, unknown> {
    this.checkVerb(r, 'delete');
    const existing = this.peek(r, namespace, name);
    if (!existing) throw notFound(r, name);
    const success = () => ({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, ...(r.group ? { group: r.group } : {}), kind: r.plural, uid: existing.metadata.uid },
    });
    switch (r.kind) {
      case 'Pod':
        return clone(this.deletePod(existing, opts.gracePeriodSeconds));
      case 'PersistentVolumeClaim': {
        if (!existing.metadata.deletionTimestamp) {
          existing.metadata.deletionTimestamp = this.now();
          existing.metadata.deletionGracePeriodSeconds = 0;
          existing.metadata.resourceVersion = this.nextVersion();
        }
        const out = clone(existing);
        this.finalizeClaims();
        return out;
      }
      case 'Deployment': {
        this.bucket(r).delete(keyOf(namespace, name));
        for (const pod of this.ownedPods(existing)) {
          if (opts.propagationPolicy === 'Orphan') delete pod.metadata.ownerReferences;
          else this.deletePod(pod, undefined);
        }
        return r.deleteReturnsObject ? clone(existing) : success();
      }
      default:
        this.bucket(r).delete(keyOf(namespace, name));
        return r.deleteReturnsObject ? clone(existing) : success();
    }
  }

  // --- pods: scheduler and kubelet ------------------------------------------------------------------

  private podKey(pod: KubeObject): string {
    return keyOf(pod.metadata.namespace, pod.metadata.name);
  }

  private podSpec(pod: KubeObject): PodSpec {
    return PodSchema.parse(pod).spec ?? {};
  }

  private podCreated(pod: KubeObject): void {
    const spec = this.podSpec(pod);
    const runtime: PodRuntime = {
      status: { phase: 'Pending', conditions: [], qosClass: qosClass(spec) },
      env: new Map(),
      pullFailuresLeft: undefined,
      imageMissing: undefined,
      pullAttempts: 0,
      waitingOnConfig: false,
      unschedulable: false,
    };
    this.pods.set(this.podKey(pod), runtime);
    pod.status = runtime.status;
    this.later(this.options.scheduleDelayMs, () => this.schedule(pod));
  }

  /** The live pod object for a runtime step, or null when it was deleted or replaced meanwhile. */
  private live(pod: KubeObject): KubeObject | null {
    const current = this.bucket(resourceByKind('Pod')).get(this.podKey(pod));
    return current && current.metadata.uid === pod.metadata.uid ? current : null;
  }

  private touch(pod: KubeObject): void {
    pod.metadata.resourceVersion = this.nextVersion();
  }

  private setCondition(status: PodStatus, type: string, value: 'True' | 'False', reason?: string, message?: string): void {
    const existing = status.conditions.find((c) => c.type === type);
    const condition: PodCondition = {
      type,
      status: value,
      lastProbeTime: null,
      lastTransitionTime: existing && existing.status === value ? existing.lastTransitionTime : this.now(),
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    };
    if (existing) status.conditions.splice(status.conditions.indexOf(existing), 1, condition);
    else status.conditions.push(condition);
  }

  /** Pods holding resources on a node: bound there and not finished (terminating ones still count). */
  private usage(node: string, except?: string): Record<string, number> {
    const used: Record<string, number> = {};
    for (const pod of this.bucket(resourceByKind('Pod')).values()) {
      if (pod.metadata.uid === except) continue;
      const spec = this.podSpec(pod);
      if (spec.nodeName !== node) continue;
      const phase = this.pods.get(this.podKey(pod))?.status.phase;
      if (phase === 'Succeeded' || phase === 'Failed') continue;
      for (const [k, v] of Object.entries(podRequests(spec))) used[k] = (used[k] ?? 0) + v;
    }
    return used;
  }

  private allocatable(node: SimNodeSpec): Record<string, number> {
    const obj = this.peek(resourceByKind('Node'), undefined, node.name);
    const status = obj && isRecord(obj.status) && isRecord(obj.status.allocatable) ? obj.status.allocatable : {};
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(status)) if (typeof v === 'string') out[k] = parseQuantity(v) ?? 0;
    return out;
  }

  private nodeLabels(node: SimNodeSpec): Labels {
    return this.peek(resourceByKind('Node'), undefined, node.name)?.metadata.labels ?? {};
  }

  /** The node a bound local-path claim lives on (node-local volumes). */
  private claimNode(pvc: KubeObject): string | undefined {
    return pvc.metadata.annotations?.['volume.kubernetes.io/selected-node'];
  }

  private claimsOf(pod: KubeObject): string[] {
    return (this.podSpec(pod).volumes ?? [])
      .map((v) => v.persistentVolumeClaim?.claimName)
      .filter((n): n is string => typeof n === 'string');
  }

  /**
   * One scheduling attempt, in the default profile's filter order: NodeAffinity (nodeSelector), NodeResourcesFit,
   * VolumeBinding. The failure text mimics framework.FitError: `0/2 nodes are available: 1 Insufficient nvidia.com/gpu,
   * 1 node(s) didn't match Pod's node affinity/selector. preemption: …` (the scheduler's FailedScheduling text).
   */
  private schedule(podRef: KubeObject): void {
    const pod = this.live(podRef);
    const runtime = pod ? this.pods.get(this.podKey(pod)) : undefined;
    if (!pod || !runtime || pod.metadata.deletionTimestamp) return;
    const spec = this.podSpec(pod);
    if (spec.nodeName) {
      this.kubeletAdmit(pod, runtime, spec.nodeName);
      return;
    }
    this.stats.schedulingAttempts += 1;
    const nodes = this.options.nodes;
    const total = nodes.length;
    const fail = (reasons: Map<string, number>, preemption: Map<string, number>, prefilter?: string) => {
      const render = (m: Map<string, number>) =>
        [...m]
          .map(([reason, n]) => `${n} ${reason}`)
          .sort()
          .join(', ');
      const head = prefilter ? `0/${total} nodes are available: ${prefilter}.` : `0/${total} nodes are available: ${render(reasons)}.`;
      const message = `${head} preemption: 0/${total} nodes are available: ${render(preemption)}.`;
      const wasUnschedulable = runtime.unschedulable;
      runtime.unschedulable = true;
      const prior = runtime.status.conditions.find((c) => c.type === 'PodScheduled');
      if (!wasUnschedulable) this.stats.podsUnschedulable += 1;
      if (prior?.message !== message) {
        this.setCondition(runtime.status, 'PodScheduled', 'False', 'Unschedulable', message);
        this.touch(pod);
      }
    };

    // PreFilter (VolumeBinding): every claim must exist, not be terminating, and have a known class.
    const pvcResource = resourceByKind('PersistentVolumeClaim');
    const claims: KubeObject[] = [];
    for (const claimName of this.claimsOf(pod)) {
      const pvc = this.peek(pvcResource, pod.metadata.namespace, claimName);
      const notHelpful = new Map([['Preemption is not helpful for scheduling', total]]);
      if (!pvc) {
        fail(new Map(), notHelpful, `persistentvolumeclaim "${claimName}" not found`);
        return;
      }
      if (pvc.metadata.deletionTimestamp) {
        fail(new Map(), notHelpful, `persistentvolumeclaim "${claimName}" is being deleted`);
        return;
      }
      const sc = PvcSchema.parse(pvc).spec?.storageClassName ?? LOCAL_PATH;
      if (!this.exists(resourceByKind('StorageClass'), undefined, sc)) {
        fail(new Map(), notHelpful, `storageclass.storage.k8s.io "${sc}" not found`);
        return;
      }
      claims.push(pvc);
    }

    const wanted = podRequests(spec);
    const gpus = gpuLimit(spec);
    const injected = gpus > 0 && this.faults.draw(['unschedulable'], 'cluster') === 'unschedulable';
    const reasons = new Map<string, number>();
    const preemption = new Map<string, number>();
    const count = (m: Map<string, number>, reason: string) => m.set(reason, (m.get(reason) ?? 0) + 1);
    const feasible: Array<{ node: SimNodeSpec; score: number }> = [];
    for (const node of nodes) {
      const labels = this.nodeLabels(node);
      if (Object.entries(spec.nodeSelector ?? {}).some(([k, v]) => labels[k] !== v)) {
        count(reasons, "node(s) didn't match Pod's node affinity/selector");
        count(preemption, 'Preemption is not helpful for scheduling');
        continue;
      }
      const allocatable = this.allocatable(node);
      const used = this.usage(node.name);
      const insufficient = Object.entries(wanted)
        .filter(([res, amount]) => amount > 0 && (used[res] ?? 0) + amount > (allocatable[res] ?? 0))
        .map(([res]) => res);
      if (injected && (allocatable[NVIDIA_GPU] ?? 0) > 0 && !insufficient.includes(NVIDIA_GPU)) insufficient.push(NVIDIA_GPU);
      if (insufficient.length > 0) {
        for (const res of insufficient.sort()) count(reasons, `Insufficient ${res}`);
        count(preemption, 'No preemption victims found for incoming pod');
        continue;
      }
      if (claims.some((pvc) => (this.claimNode(pvc) ?? node.name) !== node.name)) {
        count(reasons, 'node(s) had volume node affinity conflict');
        count(preemption, 'Preemption is not helpful for scheduling');
        continue;
      }
      // LeastAllocated scoring on cpu and memory.
      const fraction = (res: string) => ((used[res] ?? 0) + (wanted[res] ?? 0)) / Math.max(allocatable[res] ?? 1, 1e-9);
      feasible.push({ node, score: 1 - (fraction('cpu') + fraction('memory')) / 2 });
    }
    const chosen = feasible.sort((a, b) => b.score - a.score || a.node.name.localeCompare(b.node.name))[0];
    if (!chosen) {
      fail(reasons, preemption);
      return;
    }
    this.bind(pod, runtime, chosen.node, claims);
  }

  private bind(pod: KubeObject, runtime: PodRuntime, node: SimNodeSpec, claims: KubeObject[]): void {
    const index = this.options.nodes.indexOf(node);
    child(pod, 'spec').nodeName = node.name;
    runtime.unschedulable = false;
    this.stats.podsScheduled += 1;
    this.setCondition(runtime.status, 'PodScheduled', 'True');
    for (const pvc of claims) this.provision(pvc, node.name);
    const ip = nodeIp(node, index);
    runtime.status.hostIP = ip;
    runtime.status.hostIPs = [{ ip }];
    runtime.status.startTime = this.now();
    this.setCondition(runtime.status, 'PodReadyToStartContainers', 'False');
    this.setCondition(runtime.status, 'Initialized', 'True');
    this.setCondition(
      runtime.status,
      'Ready',
      'False',
      'ContainersNotReady',
      `containers with unready status: [${this.containerNames(pod).join(' ')}]`,
    );
    this.setCondition(
      runtime.status,
      'ContainersReady',
      'False',
      'ContainersNotReady',
      `containers with unready status: [${this.containerNames(pod).join(' ')}]`,
    );
    runtime.status.containerStatuses = (this.podSpec(pod).containers ?? []).map((c) => ({
      name: c.name ?? '',
      image: c.image ?? '',
      imageID: '',
      ready: false,
      started: false,
      restartCount: 0,
      state: { waiting: { reason: 'ContainerCreating' } },
      lastState: {},
    }));
    this.touch(pod);
    this.later(this.options.containerStartDelayMs, () => this.startContainers(pod));
  }

  /** A pod created with spec.nodeName skips the scheduler; the kubelet rejects it if the node lacks room. */
  private kubeletAdmit(pod: KubeObject, runtime: PodRuntime, nodeName: string): void {
    const node = this.options.nodes.find((n) => n.name === nodeName);
    if (!node) return; // A pod bound to an unknown node stays Pending forever, as on a real cluster.
    const spec = this.podSpec(pod);
    const allocatable = this.allocatable(node);
    const used = this.usage(node.name, pod.metadata.uid);
    for (const [res, amount] of Object.entries(podRequests(spec))) {
      if (amount > 0 && (used[res] ?? 0) + amount > (allocatable[res] ?? 0)) {
        runtime.status.phase = 'Failed';
        runtime.status.reason = `OutOf${res}`;
        runtime.status.message = `Pod was rejected: Node didn't have enough resource: ${res}, requested: ${amount}, used: ${used[res] ?? 0}, capacity: ${allocatable[res] ?? 0}`;
        this.touch(pod);
        return;
      }
    }
    this.bind(
      pod,
      runtime,
      node,
      this.claimsOf(pod).flatMap((c) => this.peek(resourceByKind('PersistentVolumeClaim'), pod.metadata.namespace, c) ?? []),
    );
  }

  private containerNames(pod: KubeObject): string[] {
    return (this.podSpec(pod).containers ?? []).map((c) => c.name ?? '');
  }

  /**
   * local-path, WaitForFirstConsumer (local-path-provisioner's deploy/local-path-storage.yaml): the claim is
   * provisioned on the node of its first pod.
   */
  private provision(pvc: KubeObject, node: string): void {
    const status = isRecord(pvc.status) ? pvc.status : {};
    if (status.phase === 'Bound') return;
    const spec = PvcSchema.parse(pvc).spec;
    const volumeName = `pvc-${pvc.metadata.uid}`;
    const storage = String(spec?.resources?.requests?.storage ?? '0');
    pvc.metadata.annotations = {
      ...(pvc.metadata.annotations ?? {}),
      'pv.kubernetes.io/bind-completed': 'yes',
      'pv.kubernetes.io/bound-by-controller': 'yes',
      'volume.beta.kubernetes.io/storage-provisioner': 'rancher.io/local-path',
      'volume.kubernetes.io/selected-node': node,
      'volume.kubernetes.io/storage-provisioner': 'rancher.io/local-path',
    };
    child(pvc, 'spec').volumeName = volumeName;
    pvc.status = { phase: 'Bound', accessModes: spec?.accessModes ?? [], capacity: { storage } };
    pvc.metadata.resourceVersion = this.nextVersion();
    const ns = pvc.metadata.namespace ?? '';
    this.put(resourceByKind('PersistentVolume'), undefined, volumeName, {
      metadata: {
        annotations: { 'local.path.provisioner/selected-node': node, 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' },
        finalizers: ['kubernetes.io/pv-protection'],
      },
      spec: {
        accessModes: spec?.accessModes ?? [],
        capacity: { storage },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: pvc.metadata.name, namespace: ns, uid: pvc.metadata.uid },
        hostPath: { path: `/var/lib/rancher/k3s/storage/${volumeName}_${ns}_${pvc.metadata.name}`, type: 'DirectoryOrCreate' },
        nodeAffinity: {
          required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] },
        },
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: LOCAL_PATH,
        volumeMode: spec?.volumeMode ?? 'Filesystem',
      },
      status: { phase: 'Bound' },
    });
    this.volumes.set(pvc.metadata.uid, new Map());
  }

  /** The env a container starts with; a missing Secret/ConfigMap or key is CreateContainerConfigError. */
  private resolveEnv(pod: KubeObject, c: Container): Labels | { error: string } {
    const ns = pod.metadata.namespace ?? '';
    const env: Labels = {};
    for (const e of c.env ?? []) {
      const name = e.name ?? '';
      if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        const secret = this.peek(resourceByKind('Secret'), ns, ref.name ?? '');
        const raw = secret ? SecretSchema.parse(secret).data?.[ref.key ?? ''] : undefined;
        if (raw === undefined) {
          if (ref.optional) continue;
          return { error: secret ? `couldn't find key ${ref.key} in Secret ${ns}/${ref.name}` : `secret "${ref.name}" not found` };
        }
        env[name] = Buffer.from(raw, 'base64').toString('utf8');
      } else if (e.valueFrom?.configMapKeyRef) {
        const ref = e.valueFrom.configMapKeyRef;
        const cm = this.peek(resourceByKind('ConfigMap'), ns, ref.name ?? '');
        const raw = cm ? ConfigMapSchema.parse(cm).data?.[ref.key ?? ''] : undefined;
        if (raw === undefined) {
          if (ref.optional) continue;
          return { error: cm ? `couldn't find key ${ref.key} in ConfigMap ${ns}/${ref.name}` : `configmap "${ref.name}" not found` };
        }
        env[name] = raw;
      } else if (e.valueFrom?.fieldRef) {
        const path = e.valueFrom.fieldRef.fieldPath;
        env[name] = path === 'metadata.name' ? pod.metadata.name : path === 'metadata.namespace' ? ns : (this.podSpec(pod).nodeName ?? '');
      } else env[name] = e.value ?? '';
    }
    return env;
  }

  private startContainers(podRef: KubeObject): void {
    const pod = this.live(podRef);
    const runtime = pod ? this.pods.get(this.podKey(pod)) : undefined;
    if (!pod || !runtime || pod.metadata.deletionTimestamp) return;
    const spec = this.podSpec(pod);
    const statuses = runtime.status.containerStatuses ?? [];
    runtime.waitingOnConfig = false;

    const envs = new Map<string, Labels>();
    for (const [i, c] of (spec.containers ?? []).entries()) {
      const env = this.resolveEnv(pod, c);
      const cs = statuses[i];
      if ('error' in env) {
        if (cs) cs.state = { waiting: { reason: 'CreateContainerConfigError', message: env.error } };
        runtime.waitingOnConfig = true;
      } else envs.set(c.name ?? '', env);
    }
    if (runtime.waitingOnConfig) {
      this.touch(pod);
      return;
    }

    if (!this.pullImages(pod, runtime)) return;

    const index = this.options.nodes.findIndex((n) => n.name === spec.nodeName);
    this.podIpCounter += 1;
    const podIp = `10.42.${Math.max(index, 0)}.${(this.podIpCounter % 250) + 3}`;
    runtime.status.podIP = podIp;
    runtime.status.podIPs = [{ ip: podIp }];
    this.setCondition(runtime.status, 'PodReadyToStartContainers', 'True');
    const started = this.now();

    // Time-slicing with failRequestsGreaterThanOne: more than one replica per container fails admission.
    const node = this.options.nodes[index];
    const tooMany = (spec.containers ?? []).find((c) => (parseQuantity(c.resources?.limits?.[NVIDIA_GPU] ?? 0) ?? 0) > 1);
    if (node?.gpu?.failRequestsGreaterThanOne && tooMany) {
      const n = parseQuantity(tooMany.resources?.limits?.[NVIDIA_GPU] ?? 0) ?? 0;
      runtime.status.phase = 'Failed';
      runtime.status.reason = 'UnexpectedAdmissionError';
      runtime.status.message = `Allocate failed due to rpc error: code = Unknown desc = request for '${NVIDIA_GPU}: ${n}' too large: maximum request size for shared resources is 1, which is unexpected`;
      this.touch(pod);
      this.rescheduleSoon();
      return;
    }

    // On K3s only the `nvidia` runtime class gets the GPU into the container. A real node would start the container
    // under plain runc without a GPU (and the desktop would fall back to software GL); the simulator makes the mistake
    // loud instead, as a StartError with the text of a failed NVIDIA hook, restarted with back-off.
    const runtimeClass = spec.runtimeClassName ?? '';
    const gpuWithoutRuntime = gpuLimit(spec) > 0 && !NVIDIA_RUNTIME_CLASSES.has(runtimeClass);
    for (const [i, c] of (spec.containers ?? []).entries()) {
      const cs = statuses[i];
      if (!cs) continue;
      cs.imageID = `${(c.image ?? '').replace(/:[^/:]+$/, '')}@sha256:${createHash('sha256')
        .update(c.image ?? '')
        .digest('hex')}`;
      cs.containerID = `containerd://${createHash('sha256').update(`${pod.metadata.uid}/${c.name}`).digest('hex')}`;
      if (gpuWithoutRuntime && (parseQuantity(c.resources?.limits?.[NVIDIA_GPU] ?? 0) ?? 0) > 0) {
        cs.restartCount = 1;
        cs.lastState = {
          terminated: {
            exitCode: 128,
            reason: 'StartError',
            message:
              "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error running prestart hook #0: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown",
            startedAt: '1970-01-01T00:00:00Z',
            finishedAt: started,
          },
        };
        cs.state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off 10s restarting failed container=${c.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`,
          },
        };
      } else {
        cs.state = { running: { startedAt: started } };
        cs.started = true;
      }
    }
    runtime.env = envs;
    // The kubelet's phase rule: a restarting (or running) container under restartPolicy Always means Running.
    runtime.status.phase = 'Running';
    this.stats.podsStarted += 1;
    this.touch(pod);
    if (gpuWithoutRuntime) return;

    const passing = (spec.containers ?? []).every((c) => probeCanPass(c, envs.get(c.name ?? '') ?? {}));
    const markReady = () => {
      const current = this.live(pod);
      if (!current || current.metadata.deletionTimestamp) return;
      for (const cs of statuses) cs.ready = true;
      this.setCondition(runtime.status, 'ContainersReady', 'True');
      this.setCondition(runtime.status, 'Ready', 'True');
      this.touch(current);
    };
    if (!passing) return; // Ready stays False, as with a probe that never succeeds.
    const probed = (spec.containers ?? []).some((c) => c.readinessProbe !== undefined);
    if (probed) this.later(this.options.readyDelayMs, markReady);
    else markReady();
  }

  /**
   * The kubelet's image pull (pkg/kubelet/images): `Pulling` → `Pulled` (with the time and size) on success; on a
   * failure ErrImagePull, then ImagePullBackOff with doubling back-off (10 s, 20 s, … here scaled to the
   * container start delay), and another attempt after it. The image_pull fault fails two attempts and then lets the
   * pull through, as a registry hiccup does; image_missing never does. True when the images are there.
   */
  private pullImages(pod: KubeObject, runtime: PodRuntime): boolean {
    const spec = this.podSpec(pod);
    const node = spec.nodeName ?? '';
    const statuses = runtime.status.containerStatuses ?? [];
    const images = [...new Set((spec.containers ?? []).map((c) => c.image ?? ''))];
    const missing = images.filter((image) => !this.imageCache.has(`${node}|${image}`));
    if (missing.length === 0 && runtime.pullAttempts === 0) {
      for (const image of images) this.recordEvent(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
      return true;
    }
    if (missing.length === 0) return true;
    const image = missing[0] ?? '';
    runtime.pullFailuresLeft ??= this.faults.draw(['image_pull'], 'cluster') === 'image_pull' ? 2 : 0;
    runtime.imageMissing ??= this.faults.draw(['image_missing'], 'cluster') === 'image_missing';
    runtime.pullAttempts += 1;
    this.recordEvent(pod, 'Normal', 'Pulling', `Pulling image "${image}"`);
    const started = Date.now();
    const pullMs =
      runtime.pullFailuresLeft > 0 || runtime.imageMissing ? Math.min(this.options.imagePullMs, 1000) : this.options.imagePullMs;
    this.later(pullMs, () => {
      const current = this.live(pod);
      if (!current || current.metadata.deletionTimestamp) return;
      if ((runtime.pullFailuresLeft ?? 0) > 0 || runtime.imageMissing) {
        if (!runtime.imageMissing) runtime.pullFailuresLeft = (runtime.pullFailuresLeft ?? 1) - 1;
        const host = image.split('/')[0] ?? image;
        const why = runtime.imageMissing
          ? `failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`
          : `failed to pull and unpack image "${image}": failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://${host}/v2/": dial tcp: lookup ${host}: i/o timeout`;
        for (const cs of statuses) if (cs.image === image) cs.state = { waiting: { reason: 'ErrImagePull', message: why } };
        this.recordEvent(current, 'Warning', 'Failed', `Failed to pull image "${image}": ${why}`);
        this.recordEvent(current, 'Warning', 'Failed', 'Error: ErrImagePull');
        this.touch(current);
        // ErrImagePull for a moment, then ImagePullBackOff until the next attempt.
        const backOffMs = Math.max(200, this.options.containerStartDelayMs) * 2 ** Math.min(runtime.pullAttempts - 1, 5);
        this.later(Math.max(20, this.options.containerStartDelayMs / 4), () => {
          const again = this.live(pod);
          if (!again || again.metadata.deletionTimestamp) return;
          for (const cs of statuses)
            if (cs.image === image) cs.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } };
          this.recordEvent(again, 'Normal', 'BackOff', `Back-off pulling image "${image}"`);
          this.recordEvent(again, 'Warning', 'Failed', 'Error: ImagePullBackOff');
          this.touch(again);
        });
        this.later(backOffMs, () => this.startContainers(pod));
        return;
      }
      this.imageCache.add(`${node}|${image}`);
      const seconds = ((Date.now() - started) / 1000).toFixed(3);
      this.recordEvent(
        current,
        'Normal',
        'Pulled',
        `Successfully pulled image "${image}" in ${seconds}s (${seconds}s including waiting). Image size: ${this.options.imageSizeBytes} bytes.`,
      );
      for (const cs of statuses) if (cs.image === image) cs.state = { waiting: { reason: 'ContainerCreating' } };
      this.touch(current);
      this.startContainers(pod);
    });
    for (const cs of statuses)
      if (cs.image === image && cs.state.waiting?.reason !== 'ImagePullBackOff') cs.state = { waiting: { reason: 'ContainerCreating' } };
    this.touch(pod);
    return false;
  }

  /** A core/v1 Event about a pod, as the kubelet records it (repeats bump `count` and `lastTimestamp`). */
  private recordEvent(pod: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const r = resourceByKind('Event');
    const ns = pod.metadata.namespace ?? 'default';
    const now = this.now();
    const same = this.all(r, ns).find(
      (e) => isRecord(e.involvedObject) && e.involvedObject.uid === pod.metadata.uid && e.reason === reason && e.message === message,
    );
    if (same) {
      same.count = Number(same.count ?? 1) + 1;
      same.lastTimestamp = now;
      same.metadata.resourceVersion = this.nextVersion();
      return;
    }
    this.eventCounter += 1;
    this.put(r, ns, `${pod.metadata.name}.${(0x180000000 + this.eventCounter).toString(16)}`, {
      involvedObject: {
        kind: 'Pod',
        namespace: ns,
        name: pod.metadata.name,
        uid: pod.metadata.uid,
        apiVersion: 'v1',
        fieldPath: 'spec.containers{desktop}',
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: 'kubelet', host: this.podSpec(pod).nodeName ?? '' },
      reportingComponent: 'kubelet',
      reportingInstance: this.podSpec(pod).nodeName ?? '',
    });
  }

  private wakeConfigWaiters(): void {
    for (const [key, runtime] of this.pods) {
      if (!runtime.waitingOnConfig) continue;
      const pod = this.bucket(resourceByKind('Pod')).get(key);
      if (pod) this.later(0, () => this.startContainers(pod));
    }
  }

  private deletePod(pod: KubeObject, gracePeriodSeconds: number | undefined): KubeObject {
    const runtime = this.pods.get(this.podKey(pod));
    const spec = this.podSpec(pod);
    const terminal = runtime?.status.phase === 'Succeeded' || runtime?.status.phase === 'Failed';
    // Pods never bound to a node, or already finished, are removed at once (no kubelet has to stop them).
    if (!spec.nodeName || terminal || gracePeriodSeconds === 0) {
      this.finishPodDeletion(pod);
      return pod;
    }
    if (!pod.metadata.deletionTimestamp) {
      const grace = gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
      pod.metadata.deletionTimestamp = rfc3339(this.options.now() + grace * 1000);
      pod.metadata.deletionGracePeriodSeconds = grace;
      if (runtime) {
        // The endpoint leaves the Service at once: the route has no ready backend while the pod terminates.
        for (const cs of runtime.status.containerStatuses ?? []) cs.ready = false;
        this.setCondition(runtime.status, 'Ready', 'False', 'PodCompleted');
        this.setCondition(runtime.status, 'ContainersReady', 'False', 'PodCompleted');
      }
      this.touch(pod);
      this.later(Math.min(this.options.deletionGraceMs, grace * 1000), () => {
        if (this.live(pod)) this.finishPodDeletion(pod);
      });
    }
    return pod;
  }

  private finishPodDeletion(pod: KubeObject): void {
    const key = this.podKey(pod);
    this.bucket(resourceByKind('Pod')).delete(key);
    this.pods.delete(key);
    this.finalizeClaims();
    this.rescheduleSoon();
    const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'Deployment');
    if (owner?.name) {
      const dep = this.peek(resourceByKind('Deployment'), pod.metadata.namespace, owner.name);
      if (dep && dep.metadata.uid === owner.uid) this.later(0, () => this.reconcileDeployment(dep));
    }
  }

  /** pvc-protection: a Terminating claim goes once no pod uses it; its volume and data go with it (reclaimPolicy Delete). */
  private finalizeClaims(): void {
    const pvcs = this.bucket(resourceByKind('PersistentVolumeClaim'));
    for (const [key, pvc] of [...pvcs]) {
      if (!pvc.metadata.deletionTimestamp) continue;
      const inUse = [...this.bucket(resourceByKind('Pod')).values()].some(
        (p) => p.metadata.namespace === pvc.metadata.namespace && this.claimsOf(p).includes(pvc.metadata.name),
      );
      if (inUse) continue;
      pvcs.delete(key);
      this.bucket(resourceByKind('PersistentVolume')).delete(keyOf(undefined, `pvc-${pvc.metadata.uid}`));
      this.volumes.delete(pvc.metadata.uid);
    }
  }

  private rescheduleSoon(): void {
    if (this.rescheduleTimer) return;
    this.rescheduleTimer = setTimeout(() => {
      this.rescheduleTimer = null;
      this.retryUnschedulable();
    }, 0);
  }

  private retryUnschedulable(): void {
    for (const [key, runtime] of this.pods) {
      if (!runtime.unschedulable) continue;
      const pod = this.bucket(resourceByKind('Pod')).get(key);
      if (pod) this.schedule(pod);
    }
  }

  // --- Deployments (a minimal ReplicaSet-less controller) -------------------------------------------

  private ownedPods(dep: KubeObject): KubeObject[] {
    return [...this.bucket(resourceByKind('Pod')).values()].filter(
      (p) => p.metadata.namespace === dep.metadata.namespace && p.metadata.ownerReferences?.some((o) => o.uid === dep.metadata.uid),
    );
  }

  private reconcileDeployment(depRef: KubeObject): void {
    const dep = this.peek(resourceByKind('Deployment'), depRef.metadata.namespace, depRef.metadata.name);
    if (!dep || dep.metadata.uid !== depRef.metadata.uid) return;
    const spec: Deployment['spec'] = DeploymentSchema.parse(dep).spec;
    const template = spec?.template ?? {};
    const hash = hashName(template);
    const desired = spec?.replicas ?? 1;
    const active = this.ownedPods(dep).filter((p) => !p.metadata.deletionTimestamp);
    // Recreate semantics for template changes (Recreate releases the RWO volume and the GPU first).
    const stale = active.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    for (const p of stale) this.deletePod(p, undefined);
    const current = active.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    if (stale.length > 0 && this.ownedPods(dep).length > current.length) return; // wait until old pods are gone
    for (const p of current.slice(desired)) this.deletePod(p, undefined);
    for (let i = current.length; i < desired; i++) {
      const body = {
        metadata: {
          ...(template.metadata ?? {}),
          name: `${dep.metadata.name}-${hash}-${randomSuffix(5)}`,
          namespace: dep.metadata.namespace,
          labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name: dep.metadata.name,
              uid: dep.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: clone(template.spec ?? {}),
      };
      try {
        this.create(resourceByKind('Pod'), dep.metadata.namespace, body);
      } catch {
        // An invalid template or a missing RuntimeClass: a real controller records an event and retries; so do we, on the next change.
      }
    }
  }

  private refreshDeploymentStatus(dep: KubeObject): void {
    const pods = this.ownedPods(dep).filter((p) => !p.metadata.deletionTimestamp);
    const ready = pods.filter((p) =>
      this.pods.get(this.podKey(p))?.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    const replicas = DeploymentSchema.parse(dep).spec?.replicas ?? 1;
    dep.status = {
      observedGeneration: dep.metadata.generation ?? 1,
      replicas: pods.length,
      updatedReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(replicas - ready > 0 ? { unavailableReplicas: replicas - ready } : {}),
    };
  }

  // --- the route stand-in and the simulator's own API ---------------------------------------------

  /** Pods selected by a Service, with readiness and the desktop container's env. */
  serviceBackends(namespace: string, serviceName: string): { service: KubeObject; backends: PodBackend[] } | null {
    const service = this.peek(resourceByKind('Service'), namespace, serviceName);
    if (!service) return null;
    const selector = ServiceSchema.parse(service).spec?.selector ?? {};
    if (Object.keys(selector).length === 0) return { service, backends: [] };
    const backends: PodBackend[] = [];
    for (const pod of this.all(resourceByKind('Pod'), namespace)) {
      const labels = pod.metadata.labels ?? {};
      if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) continue;
      const runtime = this.pods.get(this.podKey(pod));
      if (!runtime) continue;
      const ready = !pod.metadata.deletionTimestamp && runtime.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
      const container = desktopContainer(this.podSpec(pod));
      backends.push({ pod, ready, env: runtime.env.get(container?.name ?? '') ?? {} });
    }
    return { service, backends };
  }

  private claim(namespace: string, name: string): KubeObject {
    const pvc = this.peek(resourceByKind('PersistentVolumeClaim'), namespace, name);
    if (!pvc) throw notFound(resourceByKind('PersistentVolumeClaim'), name);
    return pvc;
  }

  /** The files on a claim's volume; null while the claim is not Bound (no volume exists yet). */
  claimFiles(namespace: string, name: string): Record<string, string> | null {
    const files = this.volumes.get(this.claim(namespace, name).metadata.uid);
    return files ? Object.fromEntries(files) : null;
  }

  /** Stands in for the user writing into their home directory; needs a Bound claim (a provisioned volume). */
  writeClaimFile(namespace: string, name: string, path: string, content: string): boolean {
    const files = this.volumes.get(this.claim(namespace, name).metadata.uid);
    if (!files) return false;
    files.set(path, content);
    return true;
  }

  /** What a pod sees: per mount path, the claim and its files (only once the pod runs on the volume's node). */
  podMounts(namespace: string, name: string): Record<string, { claimName: string; files: Record<string, string> }> {
    const pod = this.peek(resourceByKind('Pod'), namespace, name);
    if (!pod) throw notFound(resourceByKind('Pod'), name);
    const spec = this.podSpec(pod);
    const out: Record<string, { claimName: string; files: Record<string, string> }> = {};
    for (const c of spec.containers ?? []) {
      for (const m of c.volumeMounts ?? []) {
        const claimName = spec.volumes?.find((v) => v.name === m.name)?.persistentVolumeClaim?.claimName;
        if (!claimName || !m.mountPath) continue;
        const pvc = this.peek(resourceByKind('PersistentVolumeClaim'), namespace, claimName);
        const files = pvc ? this.volumes.get(pvc.metadata.uid) : undefined;
        if (files) out[m.mountPath] = { claimName, files: Object.fromEntries(files) };
      }
    }
    return out;
  }

  dump(): Record<string, KubeObject[]> {
    const out: Record<string, KubeObject[]> = {};
    for (const r of RESOURCES) {
      const items = this.all(r);
      if (items.length > 0) out[r.group === '' ? r.plural : `${r.plural}.${r.group}`] = items.map(clone);
    }
    return out;
  }

  /** A pod's typed spec (for the route stand-in's description page). */
  podDescription(pod: KubeObject): { image: string; node: string | undefined } {
    const spec: Pod['spec'] = this.podSpec(pod);
    return { image: desktopContainer(spec)?.image ?? '', node: spec?.nodeName };
  }
}
