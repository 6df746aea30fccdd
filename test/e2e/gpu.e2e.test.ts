/**
 * GPU desktops end to end: a Selkies session on the Kubernetes simulator with its own
 * hostname, TURN credentials and GPU slots; the user's home volume outlives the
 * session and is mounted again by the next one; launches past the GPU slots are refused.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyHomeVolumeName, sessionName } from '../../on-prem-bridge/src/tasks/selkies';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000';
const NS = 'desktops';
let stack: Stack;
let admin: string;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.token('gpu-admin', ['admin']);
  for (const [id, slots] of [
    ['e2e-gpu', 2],
    ['e2e-gpu-whole', 8],
  ] as const) {
    const res = await call('POST', '/api/v1/admin/templates', admin, {
      id,
      name: `GPU ${slots}`,
      os: 'Ubuntu 24.04',
      backend: 'selkies',
      protocol: 'webrtc',
      defaultPlan: 'PREMIUM',
      gpuSlots: slots,
      image: IMAGE,
      storageGb: 20,
    });
    expect(res.status).toBe(201);
  }
  // The bridge reports the simulator's GPUs (2 GPUs × 8 time-slicing replicas).
  await until('the GPU inventory', async () => {
    const occ = await call<{ siteId: string; totals: { slots: number } }[]>('GET', '/api/v1/admin/gpus', admin);
    return occ.body.data.find((s) => s.siteId === stack.siteId)?.totals.slots === 16 ? true : undefined;
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

const call = edgeClient(() => stack.edgeUrl);

const waitFor = (tok: string, id: string, status: Desktop['status']) =>
  until(`${id} ${status}`, async () => {
    const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
    if (d.status === 'FAILED' && status !== 'FAILED') throw new Error(`desktop FAILED: ${d.errorMessage}`);
    return d.status === status ? d : undefined;
  });

/** What Kubernetes has, straight from its API (not the edge's word). */
async function k8s(path: string): Promise<number> {
  const res = await fetch(`${stack.kubernetesUrl}${path}`, { headers: { authorization: 'Bearer dev-token' } });
  await res.body?.cancel();
  return res.status;
}

async function sim<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.kubernetesUrl}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return (await res.json()) as T;
}

/** GET through the session's route (the simulator plays Traefik for its hostname). */
function viaRoute(url: string, path: string, user: string, password: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(u.port),
        path,
        headers: { host: u.host, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('GPU desktops', () => {
  it('runs a session at its own URL, keeps the home volume across sessions, and cleans up within 10 s', async () => {
    const user = 'gpu-alice';
    const tok = await stack.token(user);
    const first = await call<Desktop>('POST', '/api/v1/desktops', tok, { templateId: 'e2e-gpu' });
    expect(first.status).toBe(202);
    const running = await waitFor(tok, first.body.data.id, 'RUNNING');
    expect(running.sessionUrl).toBe(`http://${sessionName(running.id)}.desk.localhost:${new URL(stack.kubernetesUrl).port}/`);

    const connect = await call<{
      connectionUrl: string;
      protocol: string;
      credentials: { username: string; password: string };
      iceServers: { urls: string[]; username?: string; credential?: string }[];
    }>('GET', `/api/v1/desktops/${running.id}/connect`, tok);
    expect(connect.status).toBe(200);
    const c = connect.body.data;
    expect(c).toMatchObject({ connectionUrl: running.sessionUrl, protocol: 'webrtc' });
    expect(c.iceServers[1]).toMatchObject({
      urls: expect.arrayContaining([expect.stringMatching(/^turn:127\.0\.0\.1:3478\?transport=udp$/)]),
      username: expect.stringMatching(/^\d+:viewer-/),
    });
    // The session's web client answers through its route with exactly those credentials.
    expect(await viaRoute(c.connectionUrl, '/health', c.credentials.username, c.credentials.password)).toEqual({
      status: 200,
      body: 'OK\n',
    });
    expect((await viaRoute(c.connectionUrl, '/health', c.credentials.username, 'wrong')).status).toBe(401);

    // The GPU pod: runtime class, GPU slots, NVENC, the edge's TURN credentials.
    const podRes = await fetch(`${stack.kubernetesUrl}/api/v1/namespaces/${NS}/pods/${sessionName(running.id)}`, {
      headers: { authorization: 'Bearer dev-token' },
    });
    const podSpec = (
      (await podRes.json()) as {
        spec: {
          runtimeClassName?: string;
          containers: { env: { name: string; value?: string }[]; resources: { limits: Record<string, string> } }[];
        };
      }
    ).spec;
    expect(podSpec?.runtimeClassName).toBe('nvidia');
    expect(podSpec?.containers[0]?.resources.limits['nvidia.com/gpu']).toBe('2');
    const env = Object.fromEntries((podSpec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ SELKIES_ENCODER: 'nvh264enc', SELKIES_TURN_HOST: '127.0.0.1', SELKIES_TURN_PORT: '3478' });
    expect(env.SELKIES_TURN_USERNAME).toMatch(/^\d+:desk-/);

    // The user writes to their home volume: named by a keyed hash, which says nothing of whose it is.
    const firstMounts = await sim<Record<string, { claimName: string }>>('GET', `/__sim/pods/${NS}/${sessionName(running.id)}/mounts`);
    const pvc = firstMounts['/home/ubuntu']?.claimName ?? '';
    expect(pvc).toMatch(/^home-[0-9a-f]{64}$/);
    expect(pvc).not.toBe(legacyHomeVolumeName(user));
    await sim('PUT', `/__sim/pvcs/${NS}/${pvc}/files`, { path: 'Documents/marker.txt', content: 'still here' });

    // Terminate: pod, service and route go within 10 s; the volume stays.
    const t0 = Date.now();
    expect((await call('DELETE', `/api/v1/desktops/${running.id}`, tok)).status).toBe(202);
    await waitFor(tok, running.id, 'DELETED');
    const took = Date.now() - t0;
    expect(took).toBeLessThan(10_000);
    const name = sessionName(running.id);
    expect(await k8s(`/api/v1/namespaces/${NS}/pods/${name}`)).toBe(404);
    expect(await k8s(`/api/v1/namespaces/${NS}/services/${name}`)).toBe(404);
    expect(await k8s(`/apis/networking.k8s.io/v1/namespaces/${NS}/ingresses/${name}`)).toBe(404);
    expect(await k8s(`/apis/traefik.io/v1alpha1/namespaces/${NS}/ingressroutes/${name}`)).toBe(404);
    expect(await k8s(`/api/v1/namespaces/${NS}/persistentvolumeclaims/${pvc}`)).toBe(200);

    // Launch again: the same volume is mounted, with the marker.
    const second = await call<Desktop>('POST', '/api/v1/desktops', tok, { templateId: 'e2e-gpu' });
    const again = await waitFor(tok, second.body.data.id, 'RUNNING');
    expect(again.sessionUrl).not.toBe(running.sessionUrl);
    const mounts = await sim<Record<string, { claimName: string; files: Record<string, string> }>>(
      'GET',
      `/__sim/pods/${NS}/${sessionName(again.id)}/mounts`,
    );
    expect(mounts['/home/ubuntu']).toEqual({ claimName: pvc, files: { 'Documents/marker.txt': 'still here' } });
    await call('DELETE', `/api/v1/desktops/${again.id}`, tok);
    await waitFor(tok, again.id, 'DELETED');
  }, 120_000);

  it('refuses launches past the GPU slots and never over-books a GPU', async () => {
    const launches = await Promise.all(
      ['heavy-1', 'heavy-2', 'heavy-3'].map(async (u) =>
        call<Desktop>('POST', '/api/v1/desktops', await stack.token(u), { templateId: 'e2e-gpu-whole' }),
      ),
    );
    expect(launches.map((l) => l.status).sort()).toEqual([202, 202, 409]);
    expect(launches.find((l) => l.status === 409)?.body.message).toMatch(/No GPU capacity/);
    const occ = await call<{ siteId: string; gpus: { used: number; slots: number }[] }[]>('GET', '/api/v1/admin/gpus', admin);
    const gpus = occ.body.data.find((s) => s.siteId === stack.siteId)?.gpus ?? [];
    expect(gpus.map((g) => g.used)).toEqual([8, 8]);
    for (const g of gpus) expect(g.used).toBeLessThanOrEqual(g.slots);
    // And Kubernetes agrees: both whole-GPU pods are scheduled, none pending for want of a GPU.
    for (const l of launches.filter((x) => x.status === 202)) {
      await waitFor(await stack.token(l.body.data.userId), l.body.data.id, 'RUNNING');
    }
  }, 120_000);
});
