/**
 * The API resources the simulator serves (the REST paths of kubernetes' api/openapi-spec/v3) and the discovery
 * documents client-node's KubernetesObjectApi reads (`GET /api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`) to map
 * a kind to its plural.
 */

export interface ResourceInfo {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  /** What DELETE answers (the OpenAPI response type): the deleted object, or a `Status` Success. */
  deleteReturnsObject: boolean;
  /** metadata.generation is kept (bumped on spec changes) for kinds with a spec/status split that controllers observe. */
  generation: boolean;
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const RO = ['get', 'list', 'watch'];

export const RESOURCES: ResourceInfo[] = [
  {
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    verbs: RW,
    shortNames: ['po'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    verbs: RW,
    shortNames: ['svc'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'persistentvolumeclaims',
    singular: 'persistentvolumeclaim',
    kind: 'PersistentVolumeClaim',
    namespaced: true,
    verbs: RW,
    shortNames: ['pvc'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    verbs: RW,
    deleteReturnsObject: false,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    verbs: RW,
    shortNames: ['cm'],
    deleteReturnsObject: false,
    generation: false,
  },
  // Cluster-scoped and read-only here: the simulator's nodes come from its options, PVs from the local-path provisioner.
  {
    group: '',
    version: 'v1',
    plural: 'nodes',
    singular: 'node',
    kind: 'Node',
    namespaced: false,
    verbs: RO,
    shortNames: ['no'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'persistentvolumes',
    singular: 'persistentvolume',
    kind: 'PersistentVolume',
    namespaced: false,
    verbs: RO,
    shortNames: ['pv'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    verbs: ['create', 'get', 'list', 'watch'],
    shortNames: ['ns'],
    deleteReturnsObject: true,
    generation: false,
  },
  {
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    verbs: RW,
    shortNames: ['deploy'],
    deleteReturnsObject: false,
    generation: true,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingresses',
    singular: 'ingress',
    kind: 'Ingress',
    namespaced: true,
    verbs: RW,
    shortNames: ['ing'],
    deleteReturnsObject: false,
    generation: true,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
    singular: 'networkpolicy',
    kind: 'NetworkPolicy',
    namespaced: true,
    verbs: RW,
    shortNames: ['netpol'],
    deleteReturnsObject: false,
    generation: true,
  },
  // What the kubelet, the scheduler and controllers report (core/v1 Event); clients list them by involvedObject.
  {
    group: '',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    verbs: RW,
    shortNames: ['ev'],
    deleteReturnsObject: false,
    generation: false,
  },
  {
    group: 'traefik.io',
    version: 'v1alpha1',
    plural: 'ingressroutes',
    singular: 'ingressroute',
    kind: 'IngressRoute',
    namespaced: true,
    verbs: RW,
    deleteReturnsObject: true,
    generation: true,
  },
  // What K3s installs (the nvidia runtime class, local-path); read-only so a client can check before relying on them.
  {
    group: 'node.k8s.io',
    version: 'v1',
    plural: 'runtimeclasses',
    singular: 'runtimeclass',
    kind: 'RuntimeClass',
    namespaced: false,
    verbs: RO,
    deleteReturnsObject: false,
    generation: false,
  },
  {
    group: 'storage.k8s.io',
    version: 'v1',
    plural: 'storageclasses',
    singular: 'storageclass',
    kind: 'StorageClass',
    namespaced: false,
    verbs: RO,
    shortNames: ['sc'],
    deleteReturnsObject: false,
    generation: false,
  },
];

export function apiVersionOf(r: ResourceInfo): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function resourceByKind(kind: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new Error(`no resource of kind ${kind}`);
  return r;
}

export const SERVER_VERSION = {
  major: '1',
  minor: '33',
  // K3s ≥ 1.32 ships Traefik v3 (its docs/networking/networking-services.md), whose CRDs are in traefik.io only.
  gitVersion: 'v1.33.5+k3s1',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-10-01T00:00:00Z',
  goVersion: 'go1.24.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function groupsWith(enabled: (r: ResourceInfo) => boolean): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (r.group === '' || !enabled(r)) continue;
    const versions = groups.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    groups.set(r.group, versions);
  }
  return groups;
}

function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: list, preferredVersion: list[0] };
}

/**
 * The discovery document for a path, or null when the path is not a discovery path. `enabled` hides a
 * group (the IngressRoute CRD on a cluster without Traefik's CRDs).
 */
export function discovery(path: string, enabled: (r: ResourceInfo) => boolean): Record<string, unknown> | null {
  if (path === '/api')
    return {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '10.0.0.10:6443' }],
    };
  if (path === '/apis') {
    const groups = [...groupsWith(enabled)].map(([name, versions]) => apiGroup(name, versions));
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }
  const resourceList = (group: string, version: string) => {
    const resources = RESOURCES.filter((r) => r.group === group && r.version === version && enabled(r));
    if (resources.length === 0) return null;
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? version : `${group}/${version}`,
      resources: resources.map((r) => ({
        name: r.plural,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: r.verbs,
        ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      })),
    };
  };
  if (path === '/api/v1') return resourceList('', 'v1');
  const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!m) return null;
  const group = m[1] ?? '';
  const versions = groupsWith(enabled).get(group);
  if (!versions) return null;
  if (m[2] === undefined) return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, versions) };
  return resourceList(group, m[2]);
}
