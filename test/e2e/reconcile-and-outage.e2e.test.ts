/**
 * With the real processes: reconciliation against what the Proxmox and Guacamole
 * simulators really hold, two deployments (say staging and production) sharing one Proxmox
 * and one Guacamole, and a Postgres outage during transitions (nothing lost; the
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

const vmNames = async () => (await pve<{ name?: string }[]>('GET', '/nodes/pve1/qemu')).map((v) => v.name ?? '');

async function connectionNames(): Promise<string[]> {
  const login = await fetch(`${stack.guacamoleUrl}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'guacadmin', password: 'guacadmin' }),
  });
  const { authToken } = (await login.json()) as { authToken: string };
  const res = await fetch(`${stack.guacamoleUrl}/api/session/data/postgresql/connections`, { headers: { 'Guacamole-Token': authToken } });
  return Object.values((await res.json()) as Record<string, { name: string }>).map((c) => c.name);
}

/** A leftover of one deployment: a VM with its marks whose desktop that deployment never had (a crashed bridge's). */
async function leftoverOf(stack: Stack, vmid: number): Promise<string> {
  const ghost = `dkleft${vmid}${stack.siteId.replace(/[^a-z0-9]/g, '')}`.slice(0, 22);
  const deployment = /"deploymentId":"([a-z0-9]+)"/.exec(stack.logs())?.[1];
  expect(deployment, `${stack.siteId}'s deployment id in its bridge's log`).toBeDefined();
  const upid = await pve<string>('POST', '/nodes/pve1/qemu/9000/clone', { newid: String(vmid), name: `desk-${ghost}` });
  await until('the leftover clone', async () => {
    const st = await pve<{ status: string }>('GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`);
    return st.status === 'stopped' ? true : undefined;
  });
  await pve('PUT', `/nodes/pve1/qemu/${vmid}/config`, { tags: `cdaas;desk-${ghost};cdaas-site-${stack.siteId};cdaas-dep-${deployment}` });
  return ghost;
}

const vmsNamed = async (name: string) =>
  (await pve<{ name?: string; vmid: number }[]>('GET', '/nodes/pve1/qemu')).filter((v) => v.name === name);

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
    // A VM with this deployment's marks that no desktop owns (a crashed bridge's leftover), and one named like ours
    // without them (somebody else's), which reconciliation must leave alone.
    const ghost = 'dkghostghostghostghost';
    const stranger = 'dkstrangerstrangerstr';
    const deployment = /"deploymentId":"([a-z0-9]+)"/.exec(stack.logs())?.[1];
    expect(deployment).toBeDefined();
    await pveTask(await pve<string>('POST', '/nodes/pve1/qemu/9000/clone', { newid: '29990', name: `desk-${ghost}` }));
    await pve('PUT', '/nodes/pve1/qemu/29990/config', { tags: `cdaas;desk-${ghost};cdaas-site-${stack.siteId};cdaas-dep-${deployment}` });
    await pveTask(await pve<string>('POST', '/nodes/pve1/qemu/9000/clone', { newid: '29991', name: `desk-${stranger}` }));
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
    expect(await vmsNamed(`desk-${stranger}`)).toHaveLength(1);
    const last = await call<unknown[]>('GET', '/api/v1/admin/reconcile', admin);
    expect(last.body.data).toHaveLength(1);
  });
});

describe('Postgres outage', () => {
  it('keeps lifecycles going while the database is down and catches up when it is back', async () => {
    const tok = await stack.token('outage-bob');
    const admin = await stack.token('root', ['admin']);
    await stack.stopDatabase();
    // A bridge restarted during the outage logs in again: the site's hub keeps its key.
    await stack.bridge.stop('SIGTERM');
    await stack.startBridge();
    await stack.waitForBridge(true, 30_000);
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

describe('two deployments sharing one Proxmox and one Guacamole', () => {
  it('each reconciles its own leftovers and never touches the other’s VMs or connections', async () => {
    // This file's stack is deployment A; B is a second edge, database, site hub and bridge on the same simulators.
    const a = stack;
    const b = await startStack({ edgeVars: { RECONCILE_GRACE_SECONDS: '0' }, sharedSimulatorsOf: a });
    try {
      const desktops: Array<{ stack: Stack; id: string }> = [];
      for (const stack of [a, b]) {
        const call = edgeClient(() => stack.edgeUrl);
        const tok = await stack.token('shared-alice');
        const { id } = (await call<Desktop>('POST', '/api/v1/desktops', tok, { plan: 'BASIC' })).body.data;
        await until(
          `${id} RUNNING`,
          async () => ((await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data.status === 'RUNNING' ? true : undefined),
          {
            timeoutMs: 90_000,
          },
        );
        desktops.push({ stack, id });
      }
      const leftA = await leftoverOf(a, 29980);
      const leftB = await leftoverOf(b, 29981);

      for (const stack of [a, b]) {
        const admin = await stack.token('root', ['admin']);
        const res = await edgeClient(() => stack.edgeUrl)<
          Array<{ orphans: { desktopId: string; removal: string }[]; foreign: number; corrected: unknown[] }>
        >('POST', '/api/v1/admin/reconcile', admin, { siteId: stack.siteId });
        const [report] = res.body.data;
        const own = stack === a ? leftA : leftB;
        // Its own leftover goes; the other deployment's desktop (VM and connection) is counted as foreign, nothing more.
        expect(report?.orphans).toEqual([expect.objectContaining({ desktopId: own, removal: 'sent' })]);
        expect(report?.foreign).toBeGreaterThanOrEqual(2);
        expect(report?.corrected).toEqual([]);
      }

      await until('both leftovers to be removed', async () => {
        const names = await vmNames();
        return names.includes(`desk-${leftA}`) || names.includes(`desk-${leftB}`) ? undefined : true;
      });
      const names = await vmNames();
      const connections = await connectionNames();
      for (const { stack, id } of desktops) {
        expect(names).toContain(`desk-${id}`);
        expect(connections).toContain(`desk-${id}`);
        const tok = await stack.token('shared-alice');
        expect((await edgeClient(() => stack.edgeUrl)<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data.status).toBe('RUNNING');
      }
    } finally {
      await b.stop();
    }
  }, 240_000);
});
