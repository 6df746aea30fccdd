/**
 * The Kubernetes simulator's contract (K3s with NVIDIA time-slicing, the REST API a session uses), over plain HTTP:
 * server-filled metadata, Status errors, the pod lifecycle with GPU time-slicing, local-path claims, graceful deletion,
 * selectors, discovery, the Traefik stand-in and deterministic faults.
 */
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FaultConfig, type KubernetesSimulator, startKubernetesSimulator } from '../../simulators/kubernetes/server';
import { until } from './support/until';

const NS = 'desktops';
const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250101000000';

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

function client(sim: KubernetesSimulator, token: string | null = sim.token) {
  return async (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Reply> => {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = contentType;
    const res = await fetch(`${sim.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON (e.g. "404 page not found").
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}

function gpuPod(
  name: string,
  opts: {
    gpus?: number;
    claim?: string;
    node?: string;
    runtimeClass?: string | null;
    env?: unknown[];
    labels?: Record<string, string>;
  } = {},
) {
  const gpus = opts.gpus ?? 1;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: opts.labels ?? { 'app.kubernetes.io/instance': name } },
    spec: {
      ...(opts.runtimeClass === null ? {} : { runtimeClassName: opts.runtimeClass ?? 'nvidia' }),
      ...(opts.node ? { nodeSelector: { 'kubernetes.io/hostname': opts.node } } : {}),
      containers: [
        {
          name: 'desktop',
          image: IMAGE,
          env: opts.env ?? [],
          ports: [{ name: 'http', containerPort: 8080 }],
          resources: {
            limits: { ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}), cpu: 2, memory: '4Gi' },
            requests: { cpu: '500m', memory: '1Gi' },
          },
          readinessProbe: { tcpSocket: { port: 8080 } },
          volumeMounts: opts.claim ? [{ name: 'home', mountPath: '/home/ubuntu' }] : [],
        },
      ],
      volumes: opts.claim ? [{ name: 'home', persistentVolumeClaim: { claimName: opts.claim } }] : [],
    },
  };
}

const claim = (name: string) => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } } },
});

const podPath = (name = '') => `/api/v1/namespaces/${NS}/pods${name ? `/${name}` : ''}`;
const pvcPath = (name = '') => `/api/v1/namespaces/${NS}/persistentvolumeclaims${name ? `/${name}` : ''}`;

type Condition = { type: string; status: string; reason?: string; message?: string };
const conditions = (pod: Record<string, unknown>) =>
  ((pod.status as { conditions?: Condition[] } | undefined)?.conditions ?? []) as Condition[];
const condition = (pod: Record<string, unknown>, type: string) => conditions(pod).find((c) => c.type === type);

describe('Kubernetes simulator', () => {
  let sim: KubernetesSimulator;
  let k: ReturnType<typeof client>;
  beforeAll(async () => {
    sim = await startKubernetesSimulator({
      tokens: [{ token: 'ns-token', user: 'system:serviceaccount:desktops:bridge', namespaces: [NS] }],
    });
    k = client(sim);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  const podOf = async (name: string) => (await k('GET', podPath(name))).body;
  const readyPod = (name: string) => until(async () => condition(await podOf(name), 'Ready')?.status === 'True');

  describe('objects and errors', () => {
    it('answers a create with 201 and server-filled metadata, quantities as strings', async () => {
      const res = await k('POST', podPath(), gpuPod('desk-s1'));
      expect(res.status).toBe(201);
      const meta = res.body.metadata as Record<string, unknown>;
      expect(meta).toMatchObject({ name: 'desk-s1', namespace: NS });
      expect(meta.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(meta.resourceVersion).toMatch(/^\d+$/);
      expect(meta.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(res.body.status).toMatchObject({ phase: 'Pending' });
      const container = ((res.body.spec as { containers: Array<{ resources: unknown }> }).containers[0] ?? {}) as { resources: unknown };
      // Requests default from limits for what was not requested; every quantity is a string.
      expect(container.resources).toEqual({
        limits: { 'nvidia.com/gpu': '1', cpu: '2', memory: '4Gi' },
        requests: { 'nvidia.com/gpu': '1', cpu: '500m', memory: '1Gi' },
      });

      const deployment = await k('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
        metadata: { name: 'web' },
        spec: {
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: IMAGE }] } },
        },
      });
      expect(deployment.status).toBe(201);
      expect(deployment.body.metadata).toMatchObject({ generation: 1, namespace: NS });
      expect(deployment.body.apiVersion).toBe('apps/v1');
    });

    it('refuses a second create with 409 AlreadyExists in the Status shape', async () => {
      await k('POST', podPath(), gpuPod('desk-s1'));
      const res = await k('POST', podPath(), gpuPod('desk-s1'));
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'pods "desk-s1" already exists',
        reason: 'AlreadyExists',
        details: { name: 'desk-s1', kind: 'pods' },
        code: 409,
      });
    });

    it('answers a missing object with 404 NotFound, naming the group for non-core resources', async () => {
      expect((await k('GET', podPath('nope'))).body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'pods "nope" not found',
        reason: 'NotFound',
        details: { name: 'nope', kind: 'pods' },
        code: 404,
      });
      const ing = await k('DELETE', `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/nope`);
      expect(ing.status).toBe(404);
      expect(ing.body).toMatchObject({
        message: 'ingresses.networking.k8s.io "nope" not found',
        details: { group: 'networking.k8s.io', kind: 'ingresses' },
      });
      const noNs = await k('POST', '/api/v1/namespaces/elsewhere/pods', gpuPod('x'));
      expect(noNs.body).toMatchObject({ code: 404, reason: 'NotFound', message: 'namespaces "elsewhere" not found' });
    });

    it('answers invalid objects with 422 Invalid and details.causes', async () => {
      const ingress = await k('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
        metadata: { name: 'desk-s1' },
        spec: {
          rules: [
            {
              host: 's1.desk.localhost',
              http: { paths: [{ path: '/', backend: { service: { name: 'desk-s1', port: { number: 8080 } } } }] },
            },
          ],
        },
      });
      expect(ingress.status).toBe(422);
      expect(ingress.body).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        reason: 'Invalid',
        code: 422,
        message:
          'Ingress.networking.k8s.io "desk-s1" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified',
        details: {
          name: 'desk-s1',
          group: 'networking.k8s.io',
          kind: 'Ingress',
          causes: [
            {
              reason: 'FieldValueRequired',
              message: 'Required value: pathType must be specified',
              field: 'spec.rules[0].http.paths[0].pathType',
            },
          ],
        },
      });

      const pod = gpuPod('Bad_Name');
      pod.spec.containers[0] = { ...pod.spec.containers[0], image: '' } as (typeof pod.spec.containers)[0];
      const res = await k('POST', podPath(), pod);
      expect(res.status).toBe(422);
      expect(res.body.message).toMatch(
        /^Pod "Bad_Name" is invalid: \[metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
      );
      const causes = (res.body.details as { causes: Array<{ field: string; reason: string }> }).causes;
      expect(causes.map((c) => [c.field, c.reason])).toEqual([
        ['metadata.name', 'FieldValueInvalid'],
        ['spec.containers[0].image', 'FieldValueRequired'],
      ]);
    });

    it('answers a wrongly typed field with the decoder 400 and a bad quantity with the quantity 400', async () => {
      const typed = await k('POST', pvcPath(), { ...claim('home-a'), spec: { accessModes: 'ReadWriteOnce' } });
      expect(typed.body).toMatchObject({ code: 400, reason: 'BadRequest' });
      expect(typed.body.message).toContain('cannot unmarshal string into Go struct field PersistentVolumeClaim.spec.accessModes');
      const quantity = await k('POST', pvcPath(), {
        ...claim('home-a'),
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: 'lots' } } },
      });
      expect(quantity.body).toMatchObject({ code: 400, reason: 'BadRequest' });
      expect(quantity.body.message).toContain(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
      );
    });

    it('wants a bearer token (401) and enforces namespace-limited tokens (403)', async () => {
      for (const token of [null, 'wrong']) {
        const res = await client(sim, token)('GET', podPath());
        expect(res.status).toBe(401);
        expect(res.body).toEqual({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'Unauthorized',
          reason: 'Unauthorized',
          code: 401,
        });
      }
      const limited = client(sim, 'ns-token');
      expect((await limited('POST', podPath(), gpuPod('desk-s1'))).status).toBe(201);
      expect((await limited('GET', '/api/v1/nodes')).status).toBe(200);
      const other = await limited('GET', '/api/v1/namespaces/default/pods/x');
      expect(other.body).toMatchObject({
        code: 403,
        reason: 'Forbidden',
        message:
          'pods "x" is forbidden: User "system:serviceaccount:desktops:bridge" cannot get resource "pods" in API group "" in the namespace "default"',
      });
    });

    it('turns stringData into base64 data and keeps it write-only', async () => {
      const res = await k('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'desk-s1' }, stringData: { password: 'pa55' } });
      expect(res.body).toMatchObject({ type: 'Opaque', data: { password: Buffer.from('pa55').toString('base64') } });
      expect(res.body.stringData).toBeUndefined();
      const deleted = await k('DELETE', `/api/v1/namespaces/${NS}/secrets/desk-s1`);
      // The OpenAPI spec returns a Status for secrets, the object for pods/services/claims.
      expect(deleted.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'desk-s1', kind: 'secrets' } });
    });

    it('checks resourceVersion on PUT (409 Conflict) and applies merge patches', async () => {
      const created = await k('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'cfg' }, data: { a: '1' } });
      const stale = { ...created.body, data: { a: '2' } };
      expect((await k('PUT', `/api/v1/namespaces/${NS}/configmaps/cfg`, stale)).status).toBe(200);
      const conflict = await k('PUT', `/api/v1/namespaces/${NS}/configmaps/cfg`, { ...stale, data: { a: '3' } });
      expect(conflict.body).toMatchObject({
        code: 409,
        reason: 'Conflict',
        message:
          'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your changes to the latest version and try again',
      });
      const patched = await k('PATCH', `/api/v1/namespaces/${NS}/configmaps/cfg`, { data: { b: '4' } }, 'application/merge-patch+json');
      expect(patched.body.data).toEqual({ a: '2', b: '4' });
    });

    it('lists by label selector', async () => {
      for (const [name, labels] of [
        ['a', { app: 'desk', tier: 'gpu' }],
        ['b', { app: 'desk', tier: 'cpu' }],
        ['c', { app: 'other' }],
      ] as const)
        await k('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name, labels } });
      const names = async (selector: string) => {
        const res = await k('GET', `/api/v1/namespaces/${NS}/configmaps?labelSelector=${encodeURIComponent(selector)}`);
        expect(res.body.kind).toBe('ConfigMapList');
        return (res.body.items as Array<{ metadata: { name: string } }>).map((i) => i.metadata.name);
      };
      expect(await names('app=desk')).toEqual(['a', 'b']);
      expect(await names('app=desk,tier=gpu')).toEqual(['a']);
      expect(await names('app==desk,tier!=gpu')).toEqual(['b']);
      expect(await names('tier in (cpu,gpu)')).toEqual(['a', 'b']);
      expect(await names('!tier')).toEqual(['c']);
      expect((await k('GET', `/api/v1/namespaces/${NS}/configmaps?labelSelector=${encodeURIComponent('a=(')}`)).status).toBe(400);
    });

    it('serves discovery for client-node (KubernetesObjectApi) and hides Traefik when its CRDs are absent', async () => {
      expect((await k('GET', '/api')).body).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
      const core = (await k('GET', '/api/v1')).body.resources as Array<{ name: string; kind: string; namespaced: boolean }>;
      expect(core).toContainEqual(expect.objectContaining({ name: 'pods', kind: 'Pod', namespaced: true }));
      const groups = ((await k('GET', '/apis')).body.groups as Array<{ name: string }>).map((g) => g.name);
      expect(groups).toEqual(expect.arrayContaining(['apps', 'networking.k8s.io', 'traefik.io']));
      expect((await k('GET', '/apis/traefik.io/v1alpha1')).body).toMatchObject({
        groupVersion: 'traefik.io/v1alpha1',
        resources: [{ name: 'ingressroutes', kind: 'IngressRoute' }],
      });

      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'sim', server: sim.url, skipTLSVerify: true }],
        users: [{ name: 'u', token: sim.token }],
        contexts: [{ name: 'c', cluster: 'sim', user: 'u', namespace: NS }],
        currentContext: 'c',
      });
      const objects = KubernetesObjectApi.makeApiClient(kc);
      const route = {
        apiVersion: 'traefik.io/v1alpha1',
        kind: 'IngressRoute',
        metadata: { name: 'desk-s1', namespace: NS },
        spec: { routes: [{ match: 'Host(`s1.desk.localhost`)', kind: 'Rule', services: [{ name: 'desk-s1', port: 8080 }] }] },
      };
      await objects.create(route);
      expect(
        (await objects.read({ apiVersion: route.apiVersion, kind: route.kind, metadata: { name: 'desk-s1', namespace: NS } })).metadata
          ?.uid,
      ).toBeDefined();

      const bare = await startKubernetesSimulator({ ingressRouteCrd: false });
      try {
        const kb = client(bare);
        expect(((await kb('GET', '/apis')).body.groups as Array<{ name: string }>).map((g) => g.name)).not.toContain('traefik.io');
        const missing = await kb('POST', `/apis/traefik.io/v1alpha1/namespaces/${NS}/ingressroutes`, route);
        expect([missing.status, missing.text]).toEqual([404, '404 page not found\n']);
      } finally {
        await bare.stop();
      }
    });
  });

  describe('pods and GPUs', () => {
    it('advertises GPU nodes with time-slicing labels and count × replicas allocatable', async () => {
      const node = (await k('GET', '/api/v1/nodes/k3s-gpu-1')).body as {
        metadata: { labels: Record<string, string> };
        status: Record<string, Record<string, string>>;
      };
      expect(node.metadata.labels).toMatchObject({
        'nvidia.com/gpu.count': '2',
        'nvidia.com/gpu.replicas': '8',
        'nvidia.com/gpu.product': 'NVIDIA-RTX-A4000',
        'nvidia.com/gpu.sharing-strategy': 'time-slicing',
        'kubernetes.io/hostname': 'k3s-gpu-1',
      });
      expect(node.status.capacity?.['nvidia.com/gpu']).toBe('16');
      expect(node.status.allocatable?.['nvidia.com/gpu']).toBe('16');
      const cpuNode = (await k('GET', '/api/v1/nodes/k3s-cpu-1')).body as { status: { allocatable: Record<string, string> } };
      expect(cpuNode.status.allocatable['nvidia.com/gpu']).toBeUndefined();
    });

    it('takes a pod from Pending through Running to Ready', async () => {
      const slow = await startKubernetesSimulator({ scheduleDelayMs: 20, containerStartDelayMs: 20, readyDelayMs: 40 });
      try {
        const ks = client(slow);
        const created = await ks('POST', podPath(), gpuPod('desk-s1'));
        expect(created.body.status).toEqual({ phase: 'Pending', conditions: [], qosClass: 'Burstable' });
        const running = await until(async () => {
          const pod = (await ks('GET', podPath('desk-s1'))).body;
          return (pod.status as { phase: string }).phase === 'Running' ? pod : null;
        });
        expect(running.spec).toMatchObject({ nodeName: 'k3s-gpu-1' });
        expect(condition(running, 'PodScheduled')?.status).toBe('True');
        expect(condition(running, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' });
        const ready = await until(async () => {
          const pod = (await ks('GET', podPath('desk-s1'))).body;
          return condition(pod, 'Ready')?.status === 'True' ? pod : null;
        });
        expect(ready.status).toMatchObject({ phase: 'Running', podIP: expect.stringMatching(/^10\.42\.0\.\d+$/), hostIP: '10.0.0.11' });
      } finally {
        await slow.stop();
      }
    });

    it('leaves a pod Pending with Unschedulable when the GPU slots are exhausted, and schedules it when one frees up', async () => {
      await k('POST', podPath(), gpuPod('full-1', { gpus: 8 }));
      await k('POST', podPath(), gpuPod('full-2', { gpus: 8 }));
      await k('POST', podPath(), gpuPod('waiting', { gpus: 1 }));
      const scheduled = await until(async () => condition(await podOf('waiting'), 'PodScheduled'));
      expect(scheduled).toMatchObject({
        status: 'False',
        reason: 'Unschedulable',
        message:
          '0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.',
      });
      expect((await podOf('waiting')).status).toMatchObject({ phase: 'Pending' });

      await k('POST', podPath(), gpuPod('pinned', { gpus: 1, node: 'k3s-gpu-1' }));
      expect(await until(async () => condition(await podOf('pinned'), 'PodScheduled')?.message)).toBe(
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
      );

      await k('DELETE', podPath('full-1'));
      await until(async () => condition(await podOf('waiting'), 'Ready')?.status === 'True');
      expect((await podOf('waiting')).spec).toMatchObject({ nodeName: 'k3s-gpu-1' });
    });

    it('fails to start a GPU container without runtimeClassName nvidia, and refuses an unknown runtime class', async () => {
      await k('POST', podPath(), gpuPod('no-runtime', { runtimeClass: null }));
      const status = await until(async () => {
        const s = (await podOf('no-runtime')).status as { containerStatuses?: Array<Record<string, unknown>> };
        return s.containerStatuses?.[0]?.state &&
          'waiting' in (s.containerStatuses[0].state as object) &&
          (s.containerStatuses[0].state as { waiting: { reason: string } }).waiting.reason === 'CrashLoopBackOff'
          ? s
          : null;
      });
      expect(status).toMatchObject({
        phase: 'Running',
        containerStatuses: [{ ready: false, restartCount: 1, lastState: { terminated: { reason: 'StartError' } } }],
      });
      expect(JSON.stringify(status)).toContain('nvidia-container-cli');
      expect(condition(await podOf('no-runtime'), 'Ready')?.status).toBe('False');

      const rejected = await k('POST', podPath(), gpuPod('typo', { runtimeClass: 'nvida' }));
      expect(rejected.body).toMatchObject({
        code: 403,
        reason: 'Forbidden',
        message: 'pods "typo" is forbidden: pod rejected: RuntimeClass "nvida" not found',
      });
    });

    it('waits with CreateContainerConfigError for a missing Secret, then starts with its value', async () => {
      const env = [{ name: 'PASSWD', valueFrom: { secretKeyRef: { name: 'desk-s1', key: 'password' } } }];
      await k('POST', podPath(), gpuPod('desk-s1', { env }));
      const waiting = await until(async () => {
        const s = (await podOf('desk-s1')).status as {
          containerStatuses?: Array<{ state: { waiting?: { reason: string; message: string } } }>;
        };
        return s.containerStatuses?.[0]?.state.waiting?.reason === 'CreateContainerConfigError'
          ? s.containerStatuses[0].state.waiting
          : null;
      });
      expect(waiting.message).toBe('secret "desk-s1" not found');
      await k('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'desk-s1' }, stringData: { password: 'pa55' } });
      await readyPod('desk-s1');
    });

    it('deletes a running pod gracefully (deletionTimestamp, then 404) and refuses a same-named create meanwhile', async () => {
      const graceful = await startKubernetesSimulator({ deletionGraceMs: 150 });
      try {
        const kg = client(graceful);
        await kg('POST', podPath(), gpuPod('desk-s1'));
        await until(async () => condition((await kg('GET', podPath('desk-s1'))).body, 'Ready')?.status === 'True');
        const deleted = await kg('DELETE', podPath('desk-s1'));
        expect(deleted.status).toBe(200);
        expect(deleted.body.kind).toBe('Pod');
        expect(deleted.body.metadata).toMatchObject({ deletionTimestamp: expect.any(String), deletionGracePeriodSeconds: 30 });
        const lingering = await kg('GET', podPath('desk-s1'));
        expect(lingering.status).toBe(200);
        expect(condition(lingering.body, 'Ready')?.status).toBe('False');
        const again = await kg('POST', podPath(), gpuPod('desk-s1'));
        expect(again.body).toMatchObject({
          code: 409,
          reason: 'AlreadyExists',
          message: 'object is being deleted: pods "desk-s1" already exists',
        });
        await until(async () => (await kg('GET', podPath('desk-s1'))).status === 404);

        // A pod no node ever took is removed at once.
        await kg('POST', podPath(), gpuPod('never', { gpus: 99 }));
        expect((await kg('DELETE', podPath('never'))).status).toBe(200);
        expect((await kg('GET', podPath('never'))).status).toBe(404);
      } finally {
        await graceful.stop();
      }
    });
  });

  describe('claims (local-path)', () => {
    it('keeps a claim Pending until a consuming pod is scheduled, then binds it on that node', async () => {
      await k('POST', pvcPath(), claim('home-alice'));
      expect((await k('GET', pvcPath('home-alice'))).body.status).toEqual({ phase: 'Pending' });
      expect((await k('GET', pvcPath('home-alice'))).body.spec).toMatchObject({ storageClassName: 'local-path' });
      const early = await fetch(`${sim.url}/__sim/pvcs/${NS}/home-alice/files`, {
        method: 'PUT',
        body: JSON.stringify({ path: 'x', content: 'y' }),
      });
      expect(early.status).toBe(409);

      await k('POST', podPath(), gpuPod('desk-s1', { claim: 'home-alice' }));
      const pvc = await until(async () => {
        const body = (await k('GET', pvcPath('home-alice'))).body;
        return (body.status as { phase: string }).phase === 'Bound' ? body : null;
      });
      expect(pvc.metadata).toMatchObject({
        annotations: { 'volume.kubernetes.io/selected-node': 'k3s-gpu-1' },
        finalizers: ['kubernetes.io/pvc-protection'],
      });
      expect(pvc.status).toEqual({ phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '20Gi' } });
      const volumeName = (pvc.spec as { volumeName: string }).volumeName;
      expect((await k('GET', `/api/v1/persistentvolumes/${volumeName}`)).body.spec).toMatchObject({
        persistentVolumeReclaimPolicy: 'Delete',
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['k3s-gpu-1'] }] }],
          },
        },
      });
    });

    it('keeps the data across pods, sends later pods to the volume’s node, and never deletes a claim with its pod', async () => {
      await k('POST', pvcPath(), claim('home-alice'));
      await k('POST', podPath(), gpuPod('desk-1', { claim: 'home-alice' }));
      await readyPod('desk-1');
      const write = await fetch(`${sim.url}/__sim/pvcs/${NS}/home-alice/files`, {
        method: 'PUT',
        body: JSON.stringify({ path: 'marker.txt', content: 'hello' }),
      });
      expect(write.status).toBe(200);
      await k('DELETE', podPath('desk-1'));
      await until(async () => (await k('GET', podPath('desk-1'))).status === 404);
      expect((await k('GET', pvcPath('home-alice'))).body.status).toMatchObject({ phase: 'Bound' });

      // A CPU-only pod would prefer the emptier CPU node; the volume pins it to the GPU node.
      await k('POST', podPath(), gpuPod('desk-2', { claim: 'home-alice', gpus: 0 }));
      await readyPod('desk-2');
      expect((await podOf('desk-2')).spec).toMatchObject({ nodeName: 'k3s-gpu-1' });
      const mounts = (await (await fetch(`${sim.url}/__sim/pods/${NS}/desk-2/mounts`)).json()) as Record<string, unknown>;
      expect(mounts).toEqual({ '/home/ubuntu': { claimName: 'home-alice', files: { 'marker.txt': 'hello' } } });

      await k('POST', podPath(), gpuPod('desk-3', { claim: 'home-alice', gpus: 0, node: 'k3s-cpu-1' }));
      expect(await until(async () => condition(await podOf('desk-3'), 'PodScheduled')?.message)).toBe(
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
      );
    });

    it('keeps a deleted claim Terminating while a pod uses it, then removes it with its data', async () => {
      await k('POST', pvcPath(), claim('home-bob'));
      await k('POST', podPath(), gpuPod('desk-b', { claim: 'home-bob' }));
      await readyPod('desk-b');
      sim.writeClaimFile(NS, 'home-bob', 'notes.txt', 'x');
      const deleted = await k('DELETE', pvcPath('home-bob'));
      expect(deleted.body.metadata).toMatchObject({ deletionTimestamp: expect.any(String) });
      expect((await k('GET', pvcPath('home-bob'))).status).toBe(200);
      await k('DELETE', podPath('desk-b'));
      await until(async () => (await k('GET', pvcPath('home-bob'))).status === 404);
      expect(Object.keys(sim.objects())).not.toContain('persistentvolumes');
    });
  });

  describe('route stand-in (Traefik + the desktop’s nginx)', () => {
    async function session(name: string, opts: { ingressRoute?: boolean; password?: string } = {}) {
      await k('POST', `/api/v1/namespaces/${NS}/secrets`, { metadata: { name }, stringData: { password: opts.password ?? 'pa55' } });
      await k('POST', podPath(), gpuPod(name, { env: [{ name: 'PASSWD', valueFrom: { secretKeyRef: { name, key: 'password' } } }] }));
      await k('POST', `/api/v1/namespaces/${NS}/services`, {
        metadata: { name },
        spec: { selector: { 'app.kubernetes.io/instance': name }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
      });
      const host = `${name}.desk.localhost`;
      if (opts.ingressRoute)
        await k('POST', `/apis/traefik.io/v1alpha1/namespaces/${NS}/ingressroutes`, {
          metadata: { name },
          spec: { routes: [{ match: `Host(\`${host}\`)`, kind: 'Rule', services: [{ name, port: 8080 }] }] },
        });
      else
        await k('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
          metadata: { name },
          spec: {
            rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name, port: { number: 8080 } } } }] } }],
          },
        });
      return host;
    }

    it('answers /health 200 OK with the pod’s credentials and 401 with WWW-Authenticate otherwise', async () => {
      const host = await session('s1');
      await readyPod('s1');
      expect(await sim.requestRoute(host, '/health', { user: 'ubuntu', password: 'pa55' })).toMatchObject({ status: 200, body: 'OK\n' });
      const wrong = await sim.requestRoute(host, '/health', { user: 'ubuntu', password: 'nope' });
      expect(wrong.status).toBe(401);
      expect(wrong.headers['www-authenticate']).toBe('Basic realm="Selkies"');
      expect((await sim.requestRoute(host, '/health')).status).toBe(401);
      const page = await sim.requestRoute(host, '/', { user: 'ubuntu', password: 'pa55' });
      expect(page.status).toBe(200);
      expect(page.body).toContain('Selkies desktop s1');
    });

    it('routes IngressRoute hosts too', async () => {
      const host = await session('s2', { ingressRoute: true });
      await readyPod('s2');
      expect((await sim.requestRoute(host, '/health', { user: 'ubuntu', password: 'pa55' })).status).toBe(200);
    });

    it('answers 503 "no available server" until a backend is ready, 404 for unknown hosts (or with allowEmptyServices off)', async () => {
      const slow = await startKubernetesSimulator({ readyDelayMs: 10_000, allowEmptyServices: false });
      try {
        expect(await slow.requestRoute('nobody.desk.localhost')).toMatchObject({ status: 404, body: '404 page not found\n' });
      } finally {
        await slow.stop();
      }
      const delayed = await startKubernetesSimulator({ readyDelayMs: 10_000 });
      try {
        const kd = client(delayed);
        await kd('POST', podPath(), gpuPod('s3'));
        await kd('POST', `/api/v1/namespaces/${NS}/services`, {
          metadata: { name: 's3' },
          spec: { selector: { 'app.kubernetes.io/instance': 's3' }, ports: [{ port: 8080 }] },
        });
        await kd('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses`, {
          metadata: { name: 's3' },
          spec: {
            rules: [
              {
                host: 's3.desk.localhost',
                http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 's3', port: { number: 8080 } } } }] },
              },
            ],
          },
        });
        expect(await delayed.requestRoute('s3.desk.localhost', '/health', { user: 'ubuntu', password: 'mypasswd' })).toMatchObject({
          status: 503,
          body: 'no available server\n',
        });
      } finally {
        await delayed.stop();
      }
    });
  });

  describe('faults', () => {
    async function statuses(sim: KubernetesSimulator, n: number): Promise<number[]> {
      const kf = client(sim);
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await kf('GET', podPath())).status);
      return out;
    }

    it('injects the same faults for the same seed and request order', async () => {
      const config: FaultConfig = { rate: 0.4, kinds: ['http_500', 'too_many_requests'], seed: 42 };
      sim.setFaults(config);
      const first = await statuses(sim, 30);
      sim.setFaults(config);
      expect(await statuses(sim, 30)).toEqual(first);
      expect(first).toContain(200);
      expect(first.some((s) => s === 500 || s === 429)).toBe(true);
      expect(sim.stats().faults).toBeDefined();
    });

    it('shapes injected failures like the API server', async () => {
      sim.setFaults({ rate: 1, kinds: ['http_500'] });
      expect((await k('GET', podPath())).body).toMatchObject({
        code: 500,
        reason: 'InternalError',
        message: 'Internal error occurred: etcdserver: leader changed',
      });
      sim.setFaults({ rate: 1, kinds: ['too_many_requests'] });
      const throttled = await k('GET', podPath());
      expect([throttled.status, throttled.headers.get('retry-after'), throttled.body.reason]).toEqual([429, '1', 'TooManyRequests']);
      sim.setFaults({ rate: 1, kinds: ['timeout_504'] });
      expect((await k('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'landed' } })).status).toBe(504);
      sim.setFaults(null);
      expect((await k('GET', `/api/v1/namespaces/${NS}/configmaps/landed`)).status).toBe(200);
    });

    it('makes GPU pods unschedulable and image pulls fail on demand', async () => {
      sim.setFaults({ rate: 1, kinds: ['unschedulable'] });
      await k('POST', podPath(), gpuPod('starved'));
      expect(await until(async () => condition(await podOf('starved'), 'PodScheduled')?.message)).toContain('Insufficient nvidia.com/gpu');

      sim.setFaults({ rate: 1, kinds: ['image_missing'] });
      await k('POST', podPath(), gpuPod('unpulled', { gpus: 0 }));
      const reason = async () =>
        ((await podOf('unpulled')).status as { containerStatuses?: Array<{ state: { waiting?: { reason: string } } }> })
          .containerStatuses?.[0]?.state.waiting?.reason;
      await until(async () => (await reason()) === 'ImagePullBackOff');
      expect((await podOf('unpulled')).status).toMatchObject({ phase: 'Pending' });
    });

    it('is driven over /__sim too', async () => {
      const set = await fetch(`${sim.url}/__sim/faults`, {
        method: 'POST',
        body: JSON.stringify({ rate: 1, kinds: ['http_500'], seed: 3 }),
      });
      expect(set.status).toBe(200);
      expect((await k('GET', podPath())).status).toBe(500);
      await fetch(`${sim.url}/__sim/faults`, { method: 'DELETE' });
      expect((await k('GET', podPath())).status).toBe(200);
      const stats = (await (await fetch(`${sim.url}/__sim/stats`)).json()) as { faults: Record<string, number>; requests: number };
      expect(stats.faults.http_500).toBe(1);
      expect(stats.requests).toBeGreaterThanOrEqual(2);
      expect((await fetch(`${sim.url}/__sim/faults`, { method: 'POST', body: '{"rate":2}' })).status).toBe(400);
      const objects = (await (await fetch(`${sim.url}/__sim/objects`)).json()) as Record<string, unknown[]>;
      expect(objects.nodes).toHaveLength(2);
    });
  });
});
