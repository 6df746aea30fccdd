/**
 * Two deployments of the control plane (say staging and production) on one Proxmox and one
 * Guacamole: each has its own edge, database, site hub and bridge. Each reconciles; neither
 * removes the other's VMs or connections, while each still removes its own leftovers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

let a: Stack;
let b: Stack;
beforeAll(async () => {
  a = await startStack({ edgeVars: { RECONCILE_GRACE_SECONDS: '0' } });
  b = await startStack({ edgeVars: { RECONCILE_GRACE_SECONDS: '0' }, sharedSimulatorsOf: a });
}, 240_000);
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

const PVE = { authorization: 'PVEAPIToken=root@pam!dev=11111111-2222-3333-4444-555555555555' };

async function pve<T>(method: string, path: string, form?: Record<string, string>): Promise<T> {
  const res = await fetch(`${a.proxmoxUrl}${path}`, {
    method,
    headers: { ...PVE, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return ((await res.json()) as { data: T }).data;
}

const vmNames = async () => (await pve<{ name?: string }[]>('GET', '/nodes/pve1/qemu')).map((v) => v.name ?? '');

async function connectionNames(): Promise<string[]> {
  const login = await fetch(`${a.guacamoleUrl}/api/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'guacadmin', password: 'guacadmin' }),
  });
  const { authToken } = (await login.json()) as { authToken: string };
  const res = await fetch(`${a.guacamoleUrl}/api/session/data/postgresql/connections`, { headers: { 'Guacamole-Token': authToken } });
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

describe('two deployments sharing one Proxmox and one Guacamole', () => {
  it('each reconciles its own leftovers and never touches the other’s VMs or connections', async () => {
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
      // Its own leftover goes; the other deployment's desktop and leftover are counted as foreign, nothing more.
      expect(report?.orphans).toEqual([expect.objectContaining({ desktopId: own, removal: 'sent' })]);
      expect(report?.foreign).toBeGreaterThanOrEqual(3);
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
  }, 240_000);
});
