/**
 * Rebuild end to end with the real processes (the edge under wrangler dev, the bridge, the Proxmox and Guacamole
 * simulators, Postgres): a desktop launched from an edge template that points at the dev simulator's template with a
 * data disk (9001, `ubuntu-data` to the bridge) gets a mark on its data disk and changes on its system side; the
 * rebuild brings it back RUNNING on a new VM that carries the same data disk with its mark and none of the system
 * changes, the old VM gone, the connection re-pointed. A desktop of the plain template (9000) rebuilds into a fresh
 * VM that keeps nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL } from '../../scripts/lib/local-config';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const PVE_AUTH = { authorization: 'PVEAPIToken=root@pam!dev=11111111-2222-3333-4444-555555555555' };
const call = edgeClient(() => stack.edgeUrl);

type PveConfig = Record<string, string | number>;

async function pve<T>(path: string): Promise<{ status: number; data: T }> {
  const res = await fetch(`${stack.proxmoxUrl}${path}`, { headers: PVE_AUTH });
  return { status: res.status, data: ((await res.json()) as { data: T }).data };
}

const pveConfig = async (node: string, vmid: number) => (await pve<PveConfig>(`/nodes/${node}/qemu/${vmid}/config`)).data;
const vmids = async () => (await pve<{ vmid: number }[]>('/nodes/pve1/qemu')).data.map((v) => v.vmid);

/** A change made on the VM behind the control plane's back (PUT config applies at once). */
async function pveSet(node: string, vmid: number, values: Record<string, string>): Promise<void> {
  const res = await fetch(`${stack.proxmoxUrl}/nodes/${node}/qemu/${vmid}/config`, {
    method: 'PUT',
    headers: { ...PVE_AUTH, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(values).toString(),
  });
  expect(res.status, await res.text()).toBe(200);
}

/** The host the desktop's Guacamole connection points at, read as the Guacamole admin. */
async function connectionHost(connectionId: string): Promise<string | undefined> {
  const login = await fetch(`${stack.guacamoleUrl}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=guacadmin&password=guacadmin',
  });
  const { authToken } = (await login.json()) as { authToken: string };
  const res = await fetch(`${stack.guacamoleUrl}/api/session/data/postgresql/connections/${connectionId}/parameters`, {
    headers: { 'Guacamole-Token': authToken },
  });
  return ((await res.json()) as { hostname?: string }).hostname;
}

async function statusOf(tok: string, id: string, want: Desktop['status']): Promise<Desktop> {
  return until(
    `desktop ${id} ${want}`,
    async () => {
      const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
      if (d.status === 'FAILED' && want !== 'FAILED') throw new Error(`desktop FAILED: ${d.errorMessage}`);
      return d.status === want ? d : undefined;
    },
    { timeoutMs: 90_000 },
  );
}

/** POST rebuild: 202 PROVISIONING at once, then RUNNING again. */
async function rebuild(tok: string, id: string): Promise<Desktop> {
  const res = await call<Desktop>('POST', `/api/v1/desktops/${id}/rebuild`, tok);
  expect(res.status, res.body.message).toBe(202);
  expect(res.body.data.status).toBe('PROVISIONING');
  return statusOf(tok, id, 'RUNNING');
}

describe('rebuild, end to end', () => {
  it('rebuilds a desktop of a template with a data disk: a new VM with the old data disk and its mark, the system changes gone', async () => {
    const admin = await stack.token('e2e-rebuild-admin', ['admin']);
    const template = {
      id: 'e2e-data-disk',
      name: 'Ubuntu with a data disk',
      os: 'Ubuntu 24.04',
      backend: 'proxmox',
      protocol: 'vnc',
      defaultPlan: 'BASIC',
      vmTemplate: LOCAL.dataDiskTemplate,
    };
    const made = await call('POST', '/api/v1/admin/templates', admin, template);
    expect(made.status, made.body.message).toBe(201);

    const tok = await stack.token('e2e-rebuild');
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { templateId: template.id, name: 'Rebuild me' });
    expect(created.status, created.body.message).toBe(202);
    const id = created.body.data.id;
    const running = await statusOf(tok, id, 'RUNNING');
    const node = running.node as string;
    const oldVmid = running.vmId as number;
    const before = await pveConfig(node, oldVmid);
    // Cloned from 9001: its own linked OS disk and a data disk beside it.
    expect(String(before.scsi0)).toBe(`local-lvm:base-9001-disk-0/vm-${oldVmid}-disk-0,size=32G`);
    expect(String(before.scsi1)).toMatch(new RegExp(`^local-lvm:.*vm-${oldVmid}-disk-1.*,size=64G`));

    // The user's mark on the data disk; changes on the system side (the OS disk and the VM's description).
    await pveSet(node, oldVmid, {
      scsi0: `${before.scsi0},serial=os-changed`,
      scsi1: `${before.scsi1},serial=user-data`,
      description: 'changed on the system side',
    });
    const marked = await pveConfig(node, oldVmid);
    expect(marked).toMatchObject({ description: 'changed on the system side' });
    expect(String(marked.scsi1)).toContain('serial=user-data');

    const rebuilt = await rebuild(tok, id);
    const newVmid = rebuilt.vmId as number;
    expect(newVmid).not.toBe(oldVmid);
    expect(rebuilt).toMatchObject({ id, name: 'Rebuild me', node, connectionId: running.connectionId });
    expect(rebuilt.statusMessage).toBe('Desktop rebuilt from its template and ready');

    // The old VM is gone from Proxmox; the template is as it was.
    expect(await vmids()).not.toContain(oldVmid);
    expect((await pve(`/nodes/${node}/qemu/${oldVmid}/config`)).status).toBe(500);
    expect((await pveConfig('pve1', 9001)).scsi1).toBe('local-lvm:base-9001-disk-1,size=64G');

    // The new VM: the old data disk (renamed to the new VMID) with the mark; a fresh OS disk, the bridge's description.
    const after = await pveConfig(node, newVmid);
    expect(after.name).toBe(`desk-${id}`);
    expect(after.scsi1).toBe(`local-lvm:vm-${newVmid}-disk-1,size=64G,serial=user-data`);
    expect(after.scsi0).toBe(`local-lvm:base-9001-disk-0/vm-${newVmid}-disk-0,size=32G`);
    expect(after.description).toBe(before.description);
    expect(Object.keys(after).filter((k) => k.startsWith('unused'))).toEqual([]);
    expect((await pve<{ status: string }>(`/nodes/${node}/qemu/${newVmid}/status/current`)).data.status).toBe('running');

    // Reachable: the same connection, pointed at the new VM's address.
    expect(await connectionHost(running.connectionId as string)).toBe(rebuilt.ipAddress);
    const connect = await call<{ url: string }>('GET', `/api/v1/desktops/${id}/connect`, tok);
    expect(connect.status).toBe(200);
    expect(connect.body.data.url).toMatch(/^https?:\/\//);

    const events = (await call<TransitionRecord[]>('GET', `/api/v1/desktops/${id}/events`, tok)).body.data;
    const at = events.findIndex((e) => e.event === 'rebuild');
    expect(at).toBeGreaterThan(0);
    expect(events.slice(at).map((e) => `${e.from} --${e.event}--> ${e.to}`)).toEqual([
      'RUNNING --rebuild--> PROVISIONING',
      'PROVISIONING --vm_starting--> STARTING',
      'STARTING --waiting_for_ip--> WAITING_FOR_IP',
      'WAITING_FOR_IP --configuring--> CONFIGURING',
      'CONFIGURING --rebuild_completed--> RUNNING',
    ]);
  }, 240_000);

  it('rebuilds a desktop of the plain template (no data disk) into a fresh VM that keeps nothing', async () => {
    const tok = await stack.token('e2e-rebuild-plain');
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { name: 'Plain', plan: 'BASIC' });
    expect(created.status, created.body.message).toBe(202);
    const id = created.body.data.id;
    const running = await statusOf(tok, id, 'RUNNING');
    const node = running.node as string;
    const oldVmid = running.vmId as number;
    const before = await pveConfig(node, oldVmid);
    expect(String(before.scsi0)).toContain('base-9000-disk-0');
    expect(before.scsi1).toBeUndefined();
    await pveSet(node, oldVmid, { scsi0: `${before.scsi0},serial=os-changed`, description: 'changed on the system side' });

    const rebuilt = await rebuild(tok, id);
    const newVmid = rebuilt.vmId as number;
    expect(newVmid).not.toBe(oldVmid);
    expect(await vmids()).not.toContain(oldVmid);
    const after = await pveConfig(node, newVmid);
    expect(after.scsi0).toBe(`local-lvm:base-9000-disk-0/vm-${newVmid}-disk-0,size=32G`);
    expect(after.scsi1).toBeUndefined();
    expect(after.description).toBe(before.description);
    expect((await call('GET', `/api/v1/desktops/${id}/connect`, tok)).status).toBe(200);
    const events = (await call<TransitionRecord[]>('GET', `/api/v1/desktops/${id}/events`, tok)).body.data;
    expect(events.some((e) => e.event === 'rebuild' && e.from === 'RUNNING' && e.to === 'PROVISIONING')).toBe(true);
  }, 240_000);
});
