/**
 * The Selkies tasks against the Kubernetes simulator, on what K3s's kubelet does (slow image pulls, admission
 * failures): a failed image pull is retried by the kubelet, so the first ErrImagePull is not final and the session
 * comes up with the pull reported as it goes; a pod the kubelet refuses at admission (UnexpectedAdmissionError) fails
 * at once. The pod is hardened and its namespace gets the desktops' NetworkPolicy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSelkiesDriver } from '../../on-prem-bridge/src/drivers/kubernetes';
import { homeVolumeName, selkiesTasks } from '../../on-prem-bridge/src/tasks/selkies';
import { type KubernetesSimulator, startKubernetesSimulator } from '../../simulators/kubernetes/server';
import { failureOf, makeDeps, makeInfra, makeSpec, recordingContext } from '../bridge/support/harness';

const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250101000000';
let sim: KubernetesSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

function tasksFor(s: KubernetesSimulator, pullDeadlineMs = 30_000) {
  const driver = createSelkiesDriver({ url: s.url, token: s.token, namespace: 'desktops', routeDomain: s.routeDomain, routeOrigin: s.url });
  const deps = makeDeps(makeInfra());
  return selkiesTasks({
    ...deps,
    selkies: { driver, publicScheme: 'http', publicPort: s.port, blockedCidrs: ['10.42.0.0/16'], pullDeadlineMs },
  });
}

const spec = (id: string, gpuSlots = 1) =>
  makeSpec(id, {
    backend: 'selkies',
    protocol: 'webrtc',
    image: IMAGE,
    gpuSlots: gpuSlots as 1,
    gpu: { gpuId: 'k3s-gpu-1/gpu0', node: 'k3s-gpu-1' },
    turn: { host: '127.0.0.1', port: 3478, username: 'u', credential: 'c', expiresAt: new Date(Date.now() + 3600_000).toISOString() },
  });

describe('Selkies sessions on the kubelet as it is', () => {
  it('comes up through a failed image pull that the kubelet retries, reporting the pull', async () => {
    sim = await startKubernetesSimulator({ containerStartDelayMs: 10, imagePullMs: 30, faults: { rate: 1, kinds: ['image_pull'] } });
    const ctx = recordingContext();
    await tasksFor(sim).create(spec('deskpull0001'), ctx.ctx);
    expect(ctx.progress.some((p) => /^pulling image .*the kubelet retries after/.test(p.message))).toBe(true);
    const pod = sim.object('Pod', 'desktops', 'desk-deskpull0001') as unknown as {
      spec: Record<string, unknown>;
      metadata: { labels: Record<string, string> };
    };
    expect(pod.spec).toMatchObject({
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true },
      containers: [{ securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
    });
    expect(pod.metadata.labels).toMatchObject({ 'cdaas/site': 'test', 'cdaas/deployment': 'dep0test' });
    expect(sim.object('NetworkPolicy', 'desktops', 'cdaas-desktops')).toMatchObject({
      spec: {
        policyTypes: ['Ingress', 'Egress'],
        egress: [expect.anything(), { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.42.0.0/16'] } }] }],
      },
    });
  });

  it('gives up on an image that never comes at the pull deadline, and removes the pod', async () => {
    sim = await startKubernetesSimulator({ containerStartDelayMs: 10, faults: { rate: 1, kinds: ['image_missing'] } });
    const failure = await failureOf(tasksFor(sim, 300).create(spec('deskmiss0001'), recordingContext().ctx));
    expect(failure.message).toMatch(/^The image .* could not be pulled within 300 ms: (ErrImagePull|ImagePullBackOff)/);
    expect(failure.message).toMatch(/its pod, service and route were removed$/);
  });

  it('fails at once when the kubelet refuses the pod at admission', async () => {
    sim = await startKubernetesSimulator({
      nodes: [
        {
          name: 'k3s-gpu-1',
          cpu: '32',
          memory: '128Gi',
          gpu: { count: 1, replicas: 8, product: 'NVIDIA-RTX-A4000', failRequestsGreaterThanOne: true },
        },
      ],
    });
    const started = Date.now();
    const failure = await failureOf(tasksFor(sim).create(spec('deskadmt0001', 2), recordingContext().ctx));
    expect(failure.message).toMatch(/^The kubelet refused the session's pod: UnexpectedAdmissionError: Allocate failed/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('a warm pool’s Selkies member, claimed', () => {
  const POOL_SPEC = (id: string, node: string) =>
    makeSpec(id, {
      backend: 'selkies',
      protocol: 'webrtc',
      image: IMAGE,
      gpuSlots: 1,
      gpu: { gpuId: `${node}/gpu0`, node },
      turn: { host: '127.0.0.1', port: 3478, username: 'u', credential: 'c', expiresAt: new Date(Date.now() + 3600_000).toISOString() },
    });
  type Pod = {
    metadata: { uid: string };
    spec: { nodeName: string; volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }> };
  };
  const eventsOf = (s: KubernetesSimulator, uid: string) =>
    (s.objects().events ?? [])
      .filter((e) => (e as unknown as { involvedObject: { uid: string } }).involvedObject.uid === uid)
      .map((e) => `${(e as unknown as { reason: string }).reason}: ${(e as unknown as { message: string }).message}`);

  it('re-homes the member’s pod: the claimer’s home mounted on the member’s node, the image not pulled again', async () => {
    const PULL_MS = 1500;
    sim = await startKubernetesSimulator({
      nodes: [
        { name: 'k3s-gpu-1', cpu: '32', memory: '128Gi', gpu: { count: 1, replicas: 8, product: 'NVIDIA-RTX-A4000' } },
        { name: 'k3s-gpu-2', cpu: '32', memory: '128Gi', gpu: { count: 1, replicas: 8, product: 'NVIDIA-RTX-A4000' } },
      ],
      imagePullMs: PULL_MS,
      containerStartDelayMs: 20,
      readyDelayMs: 20,
      deletionGraceMs: 50,
    });
    const tasks = tasksFor(sim);
    const name = 'desk-deskpool0001';

    // The pool builds its member: nobody's, a throwaway home, the image pulled on a cold node.
    const member = { ...POOL_SPEC('deskpool0001', 'k3s-gpu-2'), userId: 'pool:p1', scratchHome: true };
    let started = Date.now();
    await tasks.create(member, recordingContext().ctx);
    const built = Date.now() - started;
    expect(built).toBeGreaterThanOrEqual(PULL_MS);
    const warm = sim.object('Pod', 'desktops', name) as unknown as Pod;
    expect(warm.spec.nodeName).toBe('k3s-gpu-2');
    expect(warm.spec.volumes.find((v) => v.name === 'home')).toEqual({ name: 'home', emptyDir: {} });
    expect(sim.objects().persistentvolumeclaims ?? []).toEqual([]);
    expect(eventsOf(sim, warm.metadata.uid).some((e) => e.startsWith('Pulling:'))).toBe(true);

    // Kubernetes does not let a running pod take another volume: the claim cannot just hand this pod over.
    const patched = await fetch(`${sim.url}/api/v1/namespaces/desktops/pods/${name}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({
        spec: {
          volumes: [
            { name: 'home', persistentVolumeClaim: { claimName: 'home-bob' } },
            { name: 'dshm', emptyDir: { medium: 'Memory' } },
          ],
        },
      }),
    });
    expect(patched.status).toBe(422);
    expect(await patched.text()).toMatch(/pod updates may not change fields other than/);

    // Bob claims it: the edge's start names bob, the member's node and its GPU booking, and no throwaway home.
    const claim = { ...POOL_SPEC('deskpool0001', 'k3s-gpu-2'), userId: 'bob', node: 'k3s-gpu-2' };
    const ctx = recordingContext();
    started = Date.now();
    const facts = await tasks.start(claim, ctx.ctx);
    const claimed = Date.now() - started;
    expect(claimed).toBeLessThan(PULL_MS);
    expect(facts).toMatchObject({ node: 'k3s-gpu-2', sessionUrl: expect.stringContaining('desk-deskpool0001') });
    expect(
      ctx.progress.some((p) => /^replacing the pod desk-deskpool0001 with one that mounts the user’s home on k3s-gpu-2/.test(p.message)),
    ).toBe(true);

    const home = homeVolumeName(makeDeps(makeInfra()).settings.bridgeSecret, undefined, 'bob');
    const rehomed = sim.object('Pod', 'desktops', name) as unknown as Pod;
    expect(rehomed.metadata.uid).not.toBe(warm.metadata.uid);
    expect(rehomed.spec.nodeName).toBe('k3s-gpu-2');
    expect(rehomed.spec.volumes.find((v) => v.name === 'home')).toEqual({ name: 'home', persistentVolumeClaim: { claimName: home } });
    const events = eventsOf(sim, rehomed.metadata.uid);
    expect(events).toContain(`Pulled: Container image "${IMAGE}" already present on machine`);
    expect(events.some((e) => e.startsWith('Pulling:'))).toBe(false);
    // Bob's home now lives on that node (local-path), for his next sessions too.
    expect(sim.object('PersistentVolumeClaim', 'desktops', home)).toMatchObject({
      status: { phase: 'Bound' },
      metadata: { annotations: { 'volume.kubernetes.io/selected-node': 'k3s-gpu-2' } },
    });
  });

  it('refuses at once a claim whose user’s home lives on another node than the member’s GPU', async () => {
    sim = await startKubernetesSimulator({
      nodes: [
        { name: 'k3s-gpu-1', cpu: '32', memory: '128Gi', gpu: { count: 1, replicas: 8, product: 'NVIDIA-RTX-A4000' } },
        { name: 'k3s-gpu-2', cpu: '32', memory: '128Gi', gpu: { count: 1, replicas: 8, product: 'NVIDIA-RTX-A4000' } },
      ],
    });
    const tasks = tasksFor(sim);
    // Carol's home was made by an earlier session on k3s-gpu-1.
    await tasks.create({ ...POOL_SPEC('deskcarol001', 'k3s-gpu-1'), userId: 'carol' }, recordingContext().ctx);
    await tasks.delete({ ...POOL_SPEC('deskcarol001', 'k3s-gpu-1'), userId: 'carol' }, recordingContext().ctx);
    await tasks.create({ ...POOL_SPEC('deskpool0002', 'k3s-gpu-2'), userId: 'pool:p1', scratchHome: true }, recordingContext().ctx);
    const started = Date.now();
    const failure = await failureOf(
      tasks.start({ ...POOL_SPEC('deskpool0002', 'k3s-gpu-2'), userId: 'carol', node: 'k3s-gpu-2' }, recordingContext().ctx),
    );
    expect(failure.message).toMatch(/home volume lives on node k3s-gpu-1 .*GPU is booked on k3s-gpu-2/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
