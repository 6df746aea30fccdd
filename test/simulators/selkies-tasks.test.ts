/**
 * The Selkies tasks against the Kubernetes simulator, on what K3s's kubelet does (slow image pulls, admission
 * failures): a failed image pull is retried by the kubelet, so the first ErrImagePull is not final and the session
 * comes up with the pull reported as it goes; a pod the kubelet refuses at admission (UnexpectedAdmissionError) fails
 * at once. The pod is hardened and its namespace gets the desktops' NetworkPolicy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSelkiesDriver } from '../../on-prem-bridge/src/drivers/kubernetes';
import { selkiesTasks } from '../../on-prem-bridge/src/tasks/selkies';
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
