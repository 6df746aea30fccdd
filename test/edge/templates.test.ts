/** Templates as a resource: admins manage them, users launch them. */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import type { Template } from '../../src/schemas/template';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000';
let admin: string;
let bridge: FakeBridge;
const uid = () => crypto.randomUUID().slice(0, 8);

beforeAll(async () => {
  admin = await token('root', { roles: ['admin'] });
  bridge = await FakeBridge.connect('local', await registerSite('local'));
  // GPU templates need GPU slots at the site.
  bridge.send({ type: 'capacity', gpus: [{ id: 'node-a/gpu0', node: 'node-a', model: 'test GPU', slots: 8 }] });
  await vi.waitFor(async () => {
    const occ = await api<{ siteId: string; totals: { slots: number } }[]>('GET', '/api/v1/admin/gpus', { token: admin });
    expect(occ.body?.data.find((s) => s.siteId === 'local')?.totals.slots).toBe(8);
  });
});

async function makeTemplate(over: Record<string, unknown> = {}) {
  const id = `t-${uid()}`;
  const res = await api<Template>('POST', '/api/v1/admin/templates', {
    token: admin,
    body: {
      id,
      name: 'GPU box',
      os: 'Ubuntu 24.04',
      backend: 'selkies',
      protocol: 'webrtc',
      defaultPlan: 'PREMIUM',
      gpuSlots: 2,
      image: IMAGE,
      storageGb: 20,
      idleTimeoutMinutes: 30,
      maxSessionMinutes: 240,
      ...over,
    },
  });
  return { id, res };
}

describe('templates', () => {
  it('lets admins create one and users list and launch it', async () => {
    const { id, res } = await makeTemplate();
    expect(res.status).toBe(201);
    expect(res.body?.data).toMatchObject({ id, backend: 'selkies', protocol: 'webrtc', gpu: true, gpuSlots: 2, retiredAt: null });
    const user = uniqueUser();
    const list = await api<Template[]>('GET', '/api/v1/templates', { token: await token(user) });
    expect(list.body?.data.map((t) => t.id)).toContain(id);

    const created = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { templateId: id, name: 'CAD' } });
    expect(created.status).toBe(202);
    expect(created.body?.data).toMatchObject({
      templateId: id,
      backend: 'selkies',
      protocol: 'webrtc',
      plan: 'PREMIUM',
      cpuCores: 8,
      gpuSlots: 2,
      idleTimeoutMinutes: 30,
      maxSessionMinutes: 240,
    });
    const cmd = await bridge.command(created.body!.data.id, 'create');
    expect(cmd.spec).toMatchObject({
      backend: 'selkies',
      image: IMAGE,
      gpuSlots: 2,
      storageGb: 20,
      protocol: 'webrtc',
      gpu: { node: 'node-a' },
    });
    // The pod relays through the site's TURN server with credentials minted for this session.
    expect(cmd.spec.turn).toMatchObject({ host: '127.0.0.1', port: 3478, username: expect.stringMatching(/^\d+:desk-/) });
  });

  it('lets a user ask for less idle time than the template, not more', async () => {
    const { id } = await makeTemplate({
      backend: 'proxmox',
      protocol: 'rdp',
      gpuSlots: 0,
      image: null,
      storageGb: null,
      defaultPlan: 'BASIC',
    });
    const shorter = await api<Desktop>('POST', '/api/v1/desktops', {
      token: await token(uniqueUser()),
      body: { templateId: id, idleTimeoutMinutes: 10 },
    });
    // Without a name of its own, the desktop is called after its template.
    expect(shorter.body?.data).toMatchObject({ name: 'GPU box', idleTimeoutMinutes: 10, backend: 'proxmox', protocol: 'rdp', gpuSlots: 0 });
    const longer = await api('POST', '/api/v1/desktops', {
      token: await token(uniqueUser()),
      body: { templateId: id, idleTimeoutMinutes: 120 },
    });
    expect(longer.status).toBe(400);
    expect(longer.body?.message).toMatch(/from 1 to 30/);
  });

  it('refuses templates that cannot work, naming the problem', async () => {
    for (const [over, message] of [
      [{ image: null }, /need a pinned image/],
      [{ image: 'ghcr.io/selkies-project/nvidia-egl-desktop:latest' }, /pin the image/],
      [{ backend: 'proxmox', protocol: 'vnc', image: null, gpuSlots: 2 }, /GPU sessions are selkies templates/],
      [{ backend: 'proxmox', protocol: 'webrtc', image: null, gpuSlots: 0 }, /vnc or rdp/],
      [{ gpuSlots: 3 }, /gpuSlots/],
    ] as const) {
      const { res } = await makeTemplate(over);
      expect(res.status, JSON.stringify(over)).toBe(400);
      expect(res.body?.message).toMatch(message);
    }
  });

  it('retires a template: gone from the list, no new launches, existing desktops untouched', async () => {
    const { id } = await makeTemplate();
    const user = uniqueUser();
    const before = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { templateId: id } });
    expect(before.status).toBe(202);
    expect((await api('DELETE', `/api/v1/admin/templates/${id}`, { token: admin })).status).toBe(200);
    const list = await api<Template[]>('GET', '/api/v1/templates', { token: await token(uniqueUser()) });
    expect(list.body?.data.map((t) => t.id)).not.toContain(id);
    const after = await api('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { templateId: id } });
    expect(after.status).toBe(400);
    expect(after.body?.message).toMatch(/Unknown template/);
    expect(
      (await api<Desktop>('GET', `/api/v1/desktops/${before.body!.data.id}`, { token: await token(user) })).body?.data.templateId,
    ).toBe(id);
    // PUT brings it back.
    const again = await api<Template>('PUT', `/api/v1/admin/templates/${id}`, {
      token: admin,
      body: { name: 'GPU box', os: 'Ubuntu 24.04', backend: 'selkies', protocol: 'webrtc', gpuSlots: 2, image: IMAGE },
    });
    expect(again.body?.data.retiredAt).toBeNull();
  });

  it('keeps template management for admins', async () => {
    const res = await api('POST', '/api/v1/admin/templates', { token: await token(uniqueUser()), body: {} });
    expect(res.status).toBe(403);
  });

  it('still accepts the PRD body, with the default VM template', async () => {
    const res = await api<Desktop>('POST', '/api/v1/desktops', {
      token: await token(uniqueUser()),
      body: { name: 'Plain', plan: 'STANDARD' },
    });
    expect(res.body?.data).toMatchObject({ templateId: null, backend: 'proxmox', protocol: 'vnc', gpuSlots: 0 });
  });
});
