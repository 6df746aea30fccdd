/**
 * The objects the cluster starts with (namespaces, nodes with GPU labels) and the defaulting the API server and K3s's
 * admission plugins apply on create, as pure functions of the object.
 */
import { createHash, randomUUID } from 'node:crypto';
import { NVIDIA_GPU } from './desktop';
import { child, isRecord, type KubeObject, type Labels, stringifyQuantities } from './objects';
import type { ResourceInfo } from './resources';
import { type Secret, SecretSchema } from './schemas';
import type { SimNodeSpec } from './state';

export const PVC_PROTECTION = 'kubernetes.io/pvc-protection';
export const LOCAL_PATH = 'local-path';
export const DEFAULT_GRACE_SECONDS = 30;

export interface DefaultingContext {
  /** The next free ClusterIP (10.43.0.0/16 on K3s). */
  allocateServiceIp(): string;
  /** The address Traefik's ServiceLB publishes for every Ingress. */
  ingressIp: string | undefined;
}

export function namespaceBody(name: string): Record<string, unknown> {
  return {
    metadata: { labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function nodeIp(node: SimNodeSpec, index: number): string {
  return node.internalIp ?? `10.0.0.${11 + index}`;
}

export function nodeBody(node: SimNodeSpec, index: number, now: string): Record<string, unknown> {
  const gpu = node.gpu;
  const resources: Record<string, string> = {
    cpu: node.cpu,
    memory: node.memory,
    pods: '110',
    'ephemeral-storage': '479151816Ki',
    'hugepages-1Gi': '0',
    'hugepages-2Mi': '0',
  };
  if (gpu) resources[NVIDIA_GPU] = String(gpu.count * gpu.replicas);
  const gpuLabels: Labels = gpu
    ? {
        // GPU feature discovery labels; the device plugin advertises count × replicas.
        'nvidia.com/gpu.present': 'true',
        'nvidia.com/gpu.count': String(gpu.count),
        'nvidia.com/gpu.replicas': String(gpu.replicas),
        'nvidia.com/gpu.product': gpu.product,
        'nvidia.com/gpu.sharing-strategy': gpu.replicas > 1 ? 'time-slicing' : 'none',
      }
    : {};
  return {
    metadata: {
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'k3s',
        ...(index === 0 ? { 'node-role.kubernetes.io/control-plane': 'true', 'node-role.kubernetes.io/master': 'true' } : {}),
        ...gpuLabels,
        ...node.labels,
      },
      annotations: { 'k3s.io/internal-ip': nodeIp(node, index), 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { podCIDR: `10.42.${index}.0/24`, podCIDRs: [`10.42.${index}.0/24`], providerID: `k3s://${node.name}` },
    status: {
      capacity: resources,
      allocatable: { ...resources },
      conditions: [
        {
          type: 'MemoryPressure',
          status: 'False',
          reason: 'KubeletHasSufficientMemory',
          message: 'kubelet has sufficient memory available',
        },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
        { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ].map((c) => ({ ...c, lastHeartbeatTime: now, lastTransitionTime: now })),
      addresses: [
        { type: 'InternalIP', address: nodeIp(node, index) },
        { type: 'Hostname', address: node.name },
      ],
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Ubuntu 24.04.3 LTS',
        kernelVersion: '6.8.0-85-generic',
        containerRuntimeVersion: 'containerd://2.1.4-k3s1',
        kubeletVersion: 'v1.33.5+k3s1',
        kubeProxyVersion: 'v1.33.5+k3s1',
        machineID: createHash('md5').update(node.name).digest('hex'),
        systemUUID: randomUUID(),
        bootID: randomUUID(),
      },
    },
  };
}

/** What the API server and K3s's admission plugins fill in on create. */
export function applyDefaults(r: ResourceInfo, obj: KubeObject, ctx: DefaultingContext): void {
  switch (r.kind) {
    case 'Pod':
      defaultPod(obj);
      break;
    case 'Service': {
      const spec = child(obj, 'spec');
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      spec.ipFamilies ??= ['IPv4'];
      spec.ipFamilyPolicy ??= 'SingleStack';
      spec.internalTrafficPolicy ??= 'Cluster';
      if (spec.type !== 'ExternalName' && (spec.clusterIP === undefined || spec.clusterIP === '')) {
        spec.clusterIP = ctx.allocateServiceIp();
        spec.clusterIPs = [spec.clusterIP];
      }
      const ports = Array.isArray(spec.ports) ? spec.ports : [];
      for (const p of ports) {
        if (!isRecord(p)) continue;
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      obj.status = { loadBalancer: {} };
      break;
    }
    case 'PersistentVolumeClaim': {
      const spec = child(obj, 'spec');
      if (isRecord(spec.resources)) stringifyQuantities(spec.resources.requests);
      // The DefaultStorageClass admission plugin fills in K3s's default class (local-path).
      if (spec.storageClassName === undefined || spec.storageClassName === null) spec.storageClassName = LOCAL_PATH;
      spec.volumeMode ??= 'Filesystem';
      // StorageObjectInUseProtection admission: every claim carries the pvc-protection finalizer.
      obj.metadata.finalizers = [...new Set([...(obj.metadata.finalizers ?? []), PVC_PROTECTION])];
      obj.status = { phase: 'Pending' };
      break;
    }
    case 'Secret': {
      const secret = SecretSchema.parse(obj);
      obj.type = secret.type ?? 'Opaque';
      foldStringData(obj, secret);
      break;
    }
    case 'Ingress': {
      // Traefik (ServiceLB) publishes the node addresses as the load balancer of every Ingress.
      obj.status = { loadBalancer: { ingress: ctx.ingressIp ? [{ ip: ctx.ingressIp }] : [] } };
      break;
    }
    case 'Namespace': {
      const defaults = namespaceBody(obj.metadata.name);
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name };
      obj.spec = defaults.spec;
      obj.status = defaults.status;
      break;
    }
    case 'Deployment': {
      const spec = child(obj, 'spec');
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
      obj.status = {};
      break;
    }
  }
}

/** `stringData` is write-only: merged into base64 `data` on every write. */
export function foldStringData(obj: KubeObject, secret: Secret): void {
  const data: Labels = { ...(secret.data ?? {}) };
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = Buffer.from(v, 'utf8').toString('base64');
  obj.data = data;
  delete obj.stringData;
}

export function defaultPod(obj: KubeObject): void {
  const spec = child(obj, 'spec');
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= DEFAULT_GRACE_SECONDS;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= 'default';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  // DefaultTolerationSeconds admission.
  spec.tolerations ??= [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ];
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  for (const c of containers) {
    if (!isRecord(c)) continue;
    const image = typeof c.image === 'string' ? c.image : '';
    const tag = image.includes('@') ? 'digest' : (/:([^/:]+)$/.exec(image)?.[1] ?? 'latest');
    c.imagePullPolicy ??= tag === 'latest' ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    const resources = child(c, 'resources');
    const limits = isRecord(resources.limits) ? resources.limits : undefined;
    if (limits) {
      const requests = child(resources, 'requests');
      for (const [k, v] of Object.entries(limits)) requests[k] ??= v;
    }
    stringifyQuantities(resources.limits);
    stringifyQuantities(resources.requests);
    for (const p of Array.isArray(c.ports) ? c.ports : []) if (isRecord(p)) p.protocol ??= 'TCP';
    if (isRecord(c.readinessProbe)) {
      const probe = c.readinessProbe;
      probe.timeoutSeconds ??= 1;
      probe.periodSeconds ??= 10;
      probe.successThreshold ??= 1;
      probe.failureThreshold ??= 3;
    }
  }
}
