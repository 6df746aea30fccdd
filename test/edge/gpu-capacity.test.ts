/** GPU desktops: slots are booked on one GPU before launch, refused clearly when full, freed when the session ends. */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000';
let admin: string;
let bridge: FakeBridge;

interface Occupancy {
  siteId: string;
  gpus: { gpuId: string; node: string; slots: number; used: number; sessions: { sessionId: string; slots: number }[] }[];
  totals: { slots: number; used: number; free: number };
}

async function occupancy(): Promise<Occupancy> {
  const res = await api<Occupancy[]>('GET', '/api/v1/admin/gpus', { token: admin });
  const local = res.body?.data.find((s) => s.siteId === 'local');
  if (!local) throw new Error('no occupancy for site local');
  return local;
}

async function template(slots: number): Promise<string> {
  const id = `gpu-${slots}-${crypto.randomUUID().slice(0, 6)}`;
  const res = await api('POST', '/api/v1/admin/templates', {
    token: admin,
    body: { id, name: `GPU ${slots}`, os: 'Ubuntu 24.04', backend: 'selkies', protocol: 'webrtc', gpuSlots: slots, image: IMAGE },
  });
  expect(res.status).toBe(201);
  return id;
}

beforeAll(async () => {
  admin = await token('root', { roles: ['admin'] });
  bridge = await FakeBridge.connect('local', await registerSite('local'));
  bridge.send({
    type: 'capacity',
    gpus: [
      { id: 'k3s-gpu-1/gpu0', node: 'k3s-gpu-1', model: 'NVIDIA RTX A4000', slots: 8 },
      { id: 'k3s-gpu-1/gpu1', node: 'k3s-gpu-1', model: 'NVIDIA RTX A4000', slots: 8 },
    ],
  });
  await vi.waitFor(async () => expect((await occupancy()).totals.slots).toBe(16));
});

describe('GPU capacity', () => {
  it('books slots on one GPU per session, refuses the launch that does not fit, and frees slots when a session ends', async () => {
    const whole = await template(8);
    const launch = async () => api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { templateId: whole } });
    const first = await launch();
    const second = await launch();
    expect([first.status, second.status]).toEqual([202, 202]);
    const cmd = await bridge.command(first.body!.data.id, 'create');
    expect(cmd.spec.gpu).toMatchObject({ node: 'k3s-gpu-1' });
    expect(cmd.spec.gpuSlots).toBe(8);

    const third = await launch();
    expect(third.status).toBe(409);
    expect(third.body?.error?.code).toBe('GPU_CAPACITY');
    expect(third.body?.message).toMatch(/^No GPU capacity: all GPUs at site 'local' are busy \(16 of 16 slots in use\)/);
    const occ = await occupancy();
    expect(occ.gpus.map((g) => g.used)).toEqual([8, 8]);
    for (const g of occ.gpus) expect(g.used).toBeLessThanOrEqual(g.slots);
    // The refused launch left nothing behind: no desktop and no quota slot taken.
    // Bookings are per run (create or start): `<desktop id>/<run id>`.
    expect(occ.gpus.flatMap((g) => g.sessions.map((s) => s.sessionId.split('/')[0])).sort()).toEqual(
      [first.body!.data.id, second.body!.data.id].sort(),
    );

    // The first session ends (deleted before it ever ran): its GPU is free for the next launch.
    await api('DELETE', `/api/v1/desktops/${first.body!.data.id}`, { token: admin });
    const teardown = await bridge.command(first.body!.data.id, 'delete');
    bridge.complete(teardown);
    await vi.waitFor(async () => expect((await occupancy()).totals.used).toBe(8));
    expect((await launch()).status).toBe(202);
  });

  it('does not refuse a launch for the slots of a desktop that is DELETED but whose release has not run yet', async () => {
    const whole = await template(8);
    const launch = async () => api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { templateId: whole } });
    // Fill the site, whatever ran before.
    while ((await occupancy()).totals.free >= 8) expect((await launch()).status).toBe(202);
    const ended = (await occupancy()).gpus[0]?.sessions[0]?.sessionId.split('/')[0] ?? '';
    await api('DELETE', `/api/v1/desktops/${ended}`, { token: admin });
    bridge.complete(await bridge.command(ended, 'delete'));
    await vi.waitFor(async () => expect((await occupancy()).totals.used).toBe(8));
    // As if the DELETED desktop's outbox had not reached the hub yet: its booking still holds the GPU.
    await runInDurableObject(env.SITE_HUB.getByName('local'), (_o, state) => {
      const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'gpu'`).one();
      const gpu = JSON.parse(row.value) as { gpus: { id: string }[]; bookings: Record<string, { gpuId: string; slots: number }> };
      const taken = new Set(Object.values(gpu.bookings).map((b) => b.gpuId));
      const free = gpu.gpus.find((g) => !taken.has(g.id));
      if (!free) throw new Error('no free GPU to hold');
      gpu.bookings[ended] = { gpuId: free.id, slots: 8 };
      state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'gpu'`, JSON.stringify(gpu));
    });
    expect((await occupancy()).totals.used).toBe(16);
    const next = await launch();
    expect(next.status).toBe(202);
    const occ = await occupancy();
    expect(occ.totals.used).toBe(16);
    expect(occ.gpus.flatMap((g) => g.sessions.map((x) => x.sessionId.split('/')[0]))).not.toContain(ended);
  });
});
