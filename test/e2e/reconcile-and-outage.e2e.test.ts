/**
 * With the real processes: reconciliation against what the Proxmox and Guacamole
 * simulators really hold, and a Postgres outage during transitions (nothing lost; the
 * write-through catches up when the database is back).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ persistentDatabase: true, edgeVars: { RECONCILE_GRACE_SECONDS: '0' } });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const PVE = { authorization: 'PVEAPIToken=root@pam!dev=11111111-2222-3333-4444-555555555555' };

const call = edgeClient(() => stack.edgeUrl);

const statusOf = async (tok: string, id: string) => (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
const waitFor = (tok: string, id: string, status: Desktop['status']) =>
  until(`${id} ${status}`, async () => {
    const d = await statusOf(tok, id);
    return d.status === status ? d : undefined;
  });

async function pve<T>(method: string, path: string, form?: Record<string, string>): Promise<T> {
  const res = await fetch(`${stack.proxmoxUrl}${path}`, {
    method,
    headers: { ...PVE, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return ((await res.json()) as { data: T }).data;
}

async function pveTask(upid: string): Promise<void> {
  const node = upid.split(':')[1];
  await until('task', async () => {
    const st = await pve<{ status: string }>('GET', `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
    return st.status === 'stopped' ? true : undefined;
  });
}

const vmsNamed = async (name: string) =>
  (await pve<{ name?: string; vmid: number }[]>('GET', '/cluster/resources?type=vm')).filter((v) => v.name === name);

describe('reconciliation, end to end', () => {
  it('fails a RUNNING desktop whose VM was destroyed behind its back, and removes a VM nobody owns', async () => {
    const tok = await stack.token('recon-alice');
    const admin = await stack.token('root', ['admin']);
    const { id } = (await call<Desktop>('POST', '/api/v1/desktops', tok, { plan: 'BASIC' })).body.data;
    const running = await waitFor(tok, id, 'RUNNING');
    // Reconciliation finds settled desktops through Postgres: wait for the write-through
    // (an admin's fleet-wide list is read from the Postgres copy).
    await until('the RUNNING row in Postgres', async () => {
      const l = await call<{ items: Desktop[] }>('GET', '/api/v1/desktops?status=RUNNING&pageSize=100', admin);
      return l.body.data.items.some((d) => d.id === id) ? true : undefined;
    });

    // Someone destroys the VM directly in Proxmox.
    await pveTask(await pve<string>('POST', `/nodes/${running.node}/qemu/${running.vmId}/status/stop`, {}));
    await pveTask(await pve<string>('DELETE', `/nodes/${running.node}/qemu/${running.vmId}`));
    // And someone clones a VM with our naming scheme that no desktop owns.
    const ghost = 'dkghostghostghostghost';
    await pveTask(await pve<string>('POST', '/nodes/pve1/qemu/9000/clone', { newid: '29990', name: `desk-${ghost}` }));
    expect(await vmsNamed(`desk-${ghost}`)).toHaveLength(1);

    const res = await call<
      { siteId: string; orphans: { desktopId: string; removal: string }[]; corrected: { desktopId: string; outcome: string }[] }[]
    >('POST', '/api/v1/admin/reconcile', admin, { siteId: stack.siteId });
    expect(res.status).toBe(200);
    const [report] = res.body.data;
    expect(report?.corrected).toEqual([{ desktopId: id, outcome: 'vm_missing' }]);
    expect(report?.orphans).toEqual([expect.objectContaining({ desktopId: ghost, removal: 'sent' })]);

    const failed = await statusOf(tok, id);
    expect(failed.status).toBe('FAILED');
    expect(failed.errorMessage).toMatch(/VM no longer exists/);
    await until('the orphan VM to be removed', async () => ((await vmsNamed(`desk-${ghost}`)).length === 0 ? true : undefined));
    const last = await call<unknown[]>('GET', '/api/v1/admin/reconcile', admin);
    expect(last.body.data).toHaveLength(1);
  });
});

describe('Postgres outage', () => {
  it('keeps lifecycles going while the database is down and catches up when it is back', async () => {
    const tok = await stack.token('outage-bob');
    const admin = await stack.token('root', ['admin']);
    await stack.stopDatabase();
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { plan: 'STANDARD' });
    expect(created.status).toBe(202);
    const id = created.body.data.id;
    await waitFor(tok, id, 'RUNNING');
    // The user's own lists are read from the Durable Objects: they still answer, and are current.
    const mine = await call<Desktop[]>('GET', '/api/v1/desktops/user/outage-bob', tok);
    expect(mine.status).toBe(200);
    expect(mine.body.data.map((d) => [d.id, d.status])).toEqual([[id, 'RUNNING']]);
    const list = await call<{ items: Desktop[] }>('GET', '/api/v1/desktops?status=RUNNING', tok);
    expect(list.status).toBe(200);
    expect(list.body.data.items.map((d) => d.id)).toEqual([id]);
    // Queries across desktops (an admin's fleet-wide list) need the database: a clear 503, not a 500.
    const fleet = await call<unknown>('GET', '/api/v1/desktops', admin);
    expect(fleet.status).toBe(503);
    expect(fleet.body.message).toMatch(/database is unreachable/);

    await stack.startDatabase();
    const caughtUp = await until(
      'the write-through to catch up',
      async () => {
        const l = await call<{ items: Desktop[] }>('GET', '/api/v1/desktops?pageSize=100', admin);
        const row = l.status === 200 ? l.body.data.items.find((d) => d.id === id) : undefined;
        return row?.status === 'RUNNING' ? row : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(caughtUp.vmId).not.toBeNull();
  }, 120_000);
});
