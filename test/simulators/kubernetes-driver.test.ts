/**
 * The bridge's Selkies/Kubernetes driver (built on @kubernetes/client-node) against the simulator: a session
 * from create to ready through its route and back, the user's claim surviving the session, idempotent
 * ensures, GPU exhaustion, and how failures are classified.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSelkiesDriver, type SelkiesDriverOptions } from '../../on-prem-bridge/src/drivers/kubernetes';
import { InfraError, type SelkiesDriver, type SelkiesPodSpec } from '../../on-prem-bridge/src/drivers/types';
import { type KubernetesSimulator, startKubernetesSimulator } from '../../simulators/kubernetes/server';
import { until } from './support/until';

const NS = 'desktops';
const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250101000000';

function driverFor(sim: KubernetesSimulator, extra: Partial<SelkiesDriverOptions> = {}): SelkiesDriver {
  return createSelkiesDriver({
    url: sim.url,
    token: sim.token,
    namespace: NS,
    routeDomain: sim.routeDomain,
    routeOrigin: sim.url,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<InfraError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InfraError)) throw new Error(`expected an InfraError, got ${String(error)}`);
  return error;
}

function podSpec(session: string, overrides: Partial<SelkiesPodSpec> = {}): SelkiesPodSpec {
  return {
    name: `desk-${session}`,
    labels: { 'app.kubernetes.io/instance': session },
    image: IMAGE,
    env: [
      { name: 'PASSWD', secretKeyRef: { name: `desk-${session}`, key: 'password' } },
      { name: 'SELKIES_ENCODER', value: 'nvh264enc' },
    ],
    gpuSlots: 1,
    cpu: 4,
    memoryMi: 8192,
    cpuRequest: 1,
    memoryRequestMi: 2048,
    pvcName: 'home-alice',
    ...overrides,
  };
}

/** Everything a session needs, in the order a task would ensure it. */
async function startSession(k8s: SelkiesDriver, session: string, password: string, overrides: Partial<SelkiesPodSpec> = {}) {
  const name = `desk-${session}`;
  const labels = { 'app.kubernetes.io/instance': session };
  await k8s.ensureSecret(name, { password }, labels);
  await k8s.ensurePvc('home-alice', 20, { 'cdaas.io/user': 'alice' });
  await k8s.ensurePod(podSpec(session, overrides));
  await k8s.ensureService(name, labels, labels);
  const host = k8s.routeHost(session);
  await k8s.ensureRoute(name, host, name, labels);
  return { name, host };
}

describe('Selkies driver', () => {
  let sim: KubernetesSimulator;
  let k8s: SelkiesDriver;
  beforeAll(async () => {
    sim = await startKubernetesSimulator({
      tokens: [{ token: 'other-ns', user: 'system:serviceaccount:elsewhere:bridge', namespaces: ['default'] }],
    });
    k8s = driverFor(sim);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('lists GPU nodes from the device plugin and GFD labels', async () => {
    expect(await k8s.listGpuNodes()).toEqual([
      { node: 'k3s-gpu-1', gpus: 2, slotsPerGpu: 8, allocatableSlots: 16, model: 'NVIDIA-RTX-A4000', ready: true },
    ]);
  });

  it('runs a session to ready through its route, keeps the claim when the session goes, and mounts it again', async () => {
    const { name, host } = await startSession(k8s, 's1', 'pa55');
    expect(host).toBe('s1.desk.localhost');
    const pod = await until(async () => {
      const p = await k8s.getPod(name);
      return p?.ready ? p : null;
    });
    expect(pod).toEqual({
      phase: 'Running',
      ready: true,
      node: 'k3s-gpu-1',
      deleting: false,
      homeClaim: 'home-alice',
      schedulingMessage: null,
      containerReason: null,
      containerMessage: null,
    });
    expect(await k8s.checkRoute(host, 'ubuntu', 'pa55')).toBe('ready');
    expect(await k8s.checkRoute(host, 'ubuntu', 'wrong')).toBe('unauthorized');

    // The manifest as the Kubernetes API takes it.
    const stored = sim.object('Pod', NS, name);
    expect(stored?.metadata.labels).toEqual({ 'app.kubernetes.io/instance': 's1', 'app.kubernetes.io/managed-by': 'cdaas' });
    expect(stored?.spec).toMatchObject({
      runtimeClassName: 'nvidia',
      containers: [
        {
          resources: { limits: { 'nvidia.com/gpu': '1', cpu: '4', memory: '8192Mi' }, requests: { cpu: '1', memory: '2048Mi' } },
          readinessProbe: { tcpSocket: { port: 8080 } },
          volumeMounts: [
            { name: 'home', mountPath: '/home/ubuntu' },
            { name: 'dshm', mountPath: '/dev/shm' },
          ],
        },
      ],
      volumes: [
        { name: 'home', persistentVolumeClaim: { claimName: 'home-alice' } },
        { name: 'dshm', emptyDir: { medium: 'Memory' } },
      ],
    });

    const pvc = await k8s.getPvc('home-alice');
    expect(pvc).toEqual({ phase: 'Bound', node: 'k3s-gpu-1', deleting: false, storage: '20Gi' });
    expect(sim.writeClaimFile(NS, 'home-alice', 'Desktop/marker.txt', 'alice was here')).toBe(true);

    await k8s.deletePod(name);
    await k8s.deleteService(name);
    await k8s.deleteRoute(name);
    await k8s.deleteSecret(name);
    await until(async () => (await k8s.getPod(name)) === null);
    expect(await k8s.checkRoute(host, 'ubuntu', 'pa55')).toBe('no-backend');
    expect(await k8s.getPvc('home-alice')).toEqual(pvc);

    // The next session goes where the volume lives and finds the user's files.
    const again = await startSession(k8s, 's2', 'n3w', { pvcName: 'home-alice', nodeName: pvc?.node ?? undefined });
    await until(async () => (await k8s.getPod(again.name))?.ready);
    expect(await k8s.checkRoute(again.host, 'ubuntu', 'n3w')).toBe('ready');
    expect(sim.podMounts(NS, again.name)).toEqual({
      '/home/ubuntu': { claimName: 'home-alice', files: { 'Desktop/marker.txt': 'alice was here' } },
    });
  });

  it('is idempotent: repeated ensures find what exists, a changed secret is replaced', async () => {
    const labels = { 'app.kubernetes.io/instance': 's1' };
    expect(await k8s.ensureSecret('desk-s1', { password: 'a' }, labels)).toBe('created');
    expect(await k8s.ensureSecret('desk-s1', { password: 'a' }, labels)).toBe('unchanged');
    expect(await k8s.ensureSecret('desk-s1', { password: 'b' }, labels)).toBe('updated');
    expect(await k8s.ensurePvc('home-alice', 20, {})).toBe('created');
    expect(await k8s.ensurePvc('home-alice', 20, {})).toBe('exists');
    expect(await k8s.ensurePod(podSpec('s1'))).toBe('created');
    expect(await k8s.ensurePod(podSpec('s1'))).toBe('exists');
    expect(await k8s.ensureService('desk-s1', labels)).toBe('created');
    expect(await k8s.ensureService('desk-s1', labels)).toBe('exists');
    expect(await k8s.ensureRoute('desk-s1', 's1.desk.localhost', 'desk-s1')).toBe('created');
    expect(await k8s.ensureRoute('desk-s1', 's1.desk.localhost', 'desk-s1')).toBe('exists');
    const counts = sim.stats().objects;
    expect([counts.secrets, counts.persistentvolumeclaims, counts.pods, counts.services, counts['ingresses.networking.k8s.io']]).toEqual([
      1, 1, 1, 1, 1,
    ]);
    expect(sim.object('Secret', NS, 'desk-s1')?.data).toEqual({ password: Buffer.from('b').toString('base64') });

    // Deleting twice is fine; reading what is gone is null.
    await k8s.deleteSecret('desk-s1');
    await k8s.deleteSecret('desk-s1');
    await k8s.deleteRoute('nope');
    await k8s.deletePod('nope');
    expect(await k8s.getPod('nope')).toBeNull();
    expect(await k8s.getPvc('nope')).toBeNull();
  });

  it('refuses to call a terminating pod "exists" (retryable), and succeeds once it is gone', async () => {
    const graceful = await startKubernetesSimulator({ deletionGraceMs: 100 });
    try {
      const g = driverFor(graceful);
      await g.ensurePvc('home-alice', 20, {});
      await g.ensurePod(podSpec('s1'));
      await until(async () => (await g.getPod('desk-s1'))?.node);
      await g.deletePod('desk-s1');
      expect(await g.getPod('desk-s1')).toMatchObject({ deleting: true, ready: false });
      const error = await failure(g.ensurePod(podSpec('s1')));
      expect([error.status, error.retryable]).toEqual([409, true]);
      await until(async () => (await g.getPod('desk-s1')) === null);
      expect(await g.ensurePod(podSpec('s1'))).toBe('created');
    } finally {
      await graceful.stop();
    }
  });

  it('surfaces GPU exhaustion as the scheduler’s Unschedulable message', async () => {
    await k8s.ensurePvc('home-alice', 20, {});
    await k8s.ensurePod(podSpec('big', { gpuSlots: 16 }));
    await until(async () => (await k8s.getPod('desk-big'))?.node);
    await k8s.ensurePod(podSpec('late', { gpuSlots: 1 }));
    const pending = await until(async () => {
      const p = await k8s.getPod('desk-late');
      return p?.schedulingMessage ? p : null;
    });
    expect(pending).toMatchObject({ phase: 'Pending', ready: false, node: null });
    expect(pending.schedulingMessage).toMatch(/^0\/2 nodes are available: .*Insufficient nvidia\.com\/gpu/);
  });

  it('builds a GPU-less pod without runtime class or GPU limit, and reports container trouble', async () => {
    await k8s.ensurePvc('home-alice', 20, {});
    await k8s.ensurePod(podSpec('cpu', { gpuSlots: 0 }));
    const stored = sim.object('Pod', NS, 'desk-cpu');
    expect(stored?.spec).not.toHaveProperty('runtimeClassName');
    expect(stored?.spec).toMatchObject({ containers: [{ resources: { limits: { cpu: '4', memory: '8192Mi' } } }] });
    expect(JSON.stringify(stored?.spec)).not.toContain('nvidia.com/gpu');
    // Its Secret does not exist yet: the kubelet waits.
    const waiting = await until(async () => {
      const p = await k8s.getPod('desk-cpu');
      return p?.containerReason ? p : null;
    });
    expect(waiting).toMatchObject({ containerReason: 'CreateContainerConfigError', containerMessage: 'secret "desk-cpu" not found' });
    await k8s.ensureSecret('desk-cpu', { password: 'x' }, {});
    await until(async () => (await k8s.getPod('desk-cpu'))?.ready);

    // An image no node has pulled yet, from a registry that does not have it.
    sim.setFaults({ rate: 1, kinds: ['image_missing'] });
    await k8s.ensureSecret('desk-img', { password: 'x' }, {});
    await k8s.ensurePod({ ...podSpec('img'), image: `${IMAGE}-missing` });
    const pulling = await until(async () => {
      const p = await k8s.getPod('desk-img');
      return p?.containerReason ? p : null;
    });
    expect(pulling.containerReason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
    expect(pulling.containerMessage).toContain(IMAGE);
  });

  it('routes through a Traefik IngressRoute when asked to', async () => {
    const viaCrd = driverFor(sim, { useIngressRoute: true, routeTlsSecretName: 'desk-wildcard-tls' });
    const { name, host } = await startSession(viaCrd, 's1', 'pa55');
    await until(async () => (await viaCrd.getPod(name))?.ready);
    expect(await viaCrd.checkRoute(host, 'ubuntu', 'pa55')).toBe('ready');
    expect(sim.object('IngressRoute', NS, name)).toMatchObject({
      spec: {
        routes: [{ match: 'Host(`s1.desk.localhost`)', kind: 'Rule', services: [{ name, port: 8080 }] }],
        tls: { secretName: 'desk-wildcard-tls' },
      },
    });
    await viaCrd.deleteRoute(name);
    expect(sim.object('IngressRoute', NS, name)).toBeUndefined();
    expect(await viaCrd.checkRoute(host, 'ubuntu', 'pa55')).toBe('no-backend');
  });

  describe('error classification', () => {
    it('makes 401, 403 and 422 permanent', async () => {
      const badToken = await failure(driverFor(sim, { token: 'wrong' }).getPod('x'));
      expect([badToken.system, badToken.status, badToken.retryable]).toEqual(['kubernetes', 401, false]);
      const otherNs = await failure(driverFor(sim, { token: 'other-ns' }).getPod('x'));
      expect([otherNs.status, otherNs.retryable]).toEqual([403, false]);
      expect(otherNs.message).toContain('cannot get resource "pods"');
      const invalid = await failure(k8s.ensureService('Not_A_Name', { a: 'b' }));
      expect([invalid.status, invalid.retryable]).toEqual([422, false]);
      expect(invalid.message).toContain('Service "Not_A_Name" is invalid');
    });

    it('makes 5xx and 429 retryable', async () => {
      sim.setFaults({ rate: 1, kinds: ['http_500'] });
      const e500 = await failure(k8s.getPod('x'));
      expect([e500.status, e500.retryable]).toEqual([500, true]);
      expect(e500.message).toContain('etcdserver: leader changed');
      sim.setFaults({ rate: 1, kinds: ['too_many_requests'] });
      const e429 = await failure(k8s.listGpuNodes());
      expect([e429.status, e429.retryable]).toEqual([429, true]);
    });

    it('recovers from a create whose answer was lost (504): the retry finds its own object', async () => {
      sim.setFaults({ rate: 1, kinds: ['timeout_504'] });
      const lost = await failure(k8s.ensurePvc('home-alice', 20, {}));
      expect([lost.status, lost.retryable]).toEqual([504, true]);
      sim.setFaults(null);
      expect(await k8s.ensurePvc('home-alice', 20, {})).toBe('exists');
    });

    it('gives up on a secret update after repeated conflicts, retryably', async () => {
      await k8s.ensureSecret('desk-s1', { password: 'a' }, {});
      sim.setFaults({ rate: 1, kinds: ['conflict_409'] });
      const conflict = await failure(k8s.ensureSecret('desk-s1', { password: 'b' }, {}));
      expect([conflict.status, conflict.retryable]).toEqual([409, true]);
      expect(conflict.message).toContain('Conflict');
    });

    it('makes network failures and time-outs retryable (status 0)', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const refused = await failure(driverFor(sim, { url: `http://127.0.0.1:${port}` }).getPod('x'));
      expect([refused.status, refused.retryable]).toEqual([0, true]);
      expect(await driverFor(sim, { routeOrigin: `http://127.0.0.1:${port}` }).checkRoute('s1.desk.localhost', 'u', 'p')).toBe(
        'unreachable',
      );

      const silent = createServer(() => {
        // Never answers.
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
      try {
        const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
        const slow = await failure(driverFor(sim, { url, timeoutMs: 100 }).getPod('x'));
        expect([slow.status, slow.retryable]).toEqual([0, true]);
        expect(await driverFor(sim, { routeOrigin: url, timeoutMs: 100 }).checkRoute('s1.desk.localhost', 'u', 'p')).toBe('unreachable');
      } finally {
        silent.closeAllConnections();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    it('sends API calls through a supplied fetch', async () => {
      const seen: string[] = [];
      const counting: typeof fetch = (input, init) => {
        seen.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      };
      const viaFetch = driverFor(sim, { fetch: counting });
      expect(await viaFetch.ensurePvc('home-alice', 5, {})).toBe('created');
      expect(await viaFetch.ensurePvc('home-alice', 5, {})).toBe('exists');
      expect(await viaFetch.getPvc('home-alice')).toMatchObject({ phase: 'Pending', storage: '5Gi' });
      expect(seen).toEqual([
        `POST /api/v1/namespaces/${NS}/persistentvolumeclaims`,
        `POST /api/v1/namespaces/${NS}/persistentvolumeclaims`,
        `GET /api/v1/namespaces/${NS}/persistentvolumeclaims/home-alice`,
      ]);
      const down = await failure(driverFor(sim, { fetch: () => Promise.reject(new TypeError('fetch failed')) }).getPod('x'));
      expect([down.status, down.retryable]).toEqual([0, true]);
    });
  });
});
