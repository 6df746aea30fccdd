/**
 * Warm pools end to end with the real processes (the edge, the bridge, the Proxmox and
 * Guacamole simulators, Postgres): an admin makes a pool of one running and one stopped
 * desktop; the site builds them; a user's create is answered RUNNING with a connect link at
 * once, and the Guacamole connection behind it is the member's own; a second create is
 * started from the stopped tier; while the pool is paused a third goes cold and nothing is
 * built; resumed, the pool refills; deleting a claimed desktop destroys its VM; removing the
 * pool deletes its unclaimed members.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import type { PoolView } from '../../src/schemas/pool';
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

async function vmExists(node: string, vmid: number): Promise<boolean> {
  const res = await fetch(`${stack.proxmoxUrl}/nodes/${node}/qemu/${vmid}/status/current`, { headers: PVE_AUTH });
  return res.status === 200;
}

describe('warm pools, end to end', () => {
  it('answers creates from the running tier at once, from the stopped tier with a start, cold when empty, and refills', async () => {
    const admin = await stack.token('e2e-pools-admin', ['admin']);
    const template = { id: 'e2e-pooled', name: 'Pooled', os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc', defaultPlan: 'BASIC' };
    expect((await call('POST', '/api/v1/admin/templates', admin, template)).status).toBe(201);
    const pool = { templateId: template.id, sizing: { running: 1, stopped: 1, cap: 1 } };
    expect((await call('PUT', '/api/v1/admin/pools/e2e', admin, pool)).status).toBe(200);
    const full = () =>
      until(
        'the pool full',
        async () => {
          const v = (await call<PoolView>('GET', '/api/v1/admin/pools/e2e', admin)).body.data;
          const ready = (tier: string) => v.members.filter((m) => m.tier === tier && m.phase === 'ready').length;
          return ready('running') === 1 && ready('stopped') === 1 ? v : undefined;
        },
        { timeoutMs: 180_000 },
      );
    await full();
    // Paused, the pool builds, starts and stops nothing but still hands out ready members: otherwise
    // the replenisher would start the stopped member into the running tier right after the first hit.
    expect((await call('PUT', '/api/v1/admin/pools/e2e', admin, { ...pool, paused: true })).status).toBe(200);

    // A hit: RUNNING in the answer, and the connect link works at once.
    const alice = await stack.token('e2e-pool-alice');
    const hit = await call<Desktop>('POST', '/api/v1/desktops', alice, { templateId: template.id, name: 'Mine' });
    expect(hit.status).toBe(202);
    expect(hit.body.data).toMatchObject({ status: 'RUNNING', claimedFromPool: 'e2e', userId: 'e2e-pool-alice', name: 'Mine' });
    const connect = await call<{ url: string }>('GET', `/api/v1/desktops/${hit.body.data.id}/connect`, alice);
    expect(connect.status).toBe(200);
    expect(connect.body.data.url).toMatch(/^http/);

    // A warm hit: the stopped member is started for bob and comes up RUNNING.
    const bob = await stack.token('e2e-pool-bob');
    const warm = await call<Desktop>('POST', '/api/v1/desktops', bob, { templateId: template.id });
    expect(warm.body.data).toMatchObject({ status: 'STARTING', claimedFromPool: 'e2e' });
    await until(
      'bob’s desktop RUNNING',
      async () => {
        const d = (await call<Desktop>('GET', `/api/v1/desktops/${warm.body.data.id}`, bob)).body.data;
        return d.status === 'RUNNING' ? d : undefined;
      },
      { timeoutMs: 120_000 },
    );

    // Empty and paused: carol's create goes cold, and nothing is built meanwhile.
    const carol = await stack.token('e2e-pool-carol');
    const third = await call<Desktop>('POST', '/api/v1/desktops', carol, { templateId: template.id });
    expect(third.status).toBe(202);
    expect(third.body.data).toMatchObject({ status: 'PENDING', claimedFromPool: null });
    const paused = (await call<PoolView>('GET', '/api/v1/admin/pools/e2e', admin)).body.data;
    expect(paused.members).toEqual([]);
    expect(paused.stats).toMatchObject({ hits: 1, warmHits: 1, misses: 1 });

    // Resumed, it refills both tiers.
    expect((await call('PUT', '/api/v1/admin/pools/e2e', admin, pool)).status).toBe(200);
    await full();

    // Deleting a claimed desktop destroys its VM: it never goes back to the pool.
    const mine = (await call<Desktop>('GET', `/api/v1/desktops/${hit.body.data.id}`, alice)).body.data;
    expect((await call('DELETE', `/api/v1/desktops/${mine.id}`, alice)).status).toBe(202);
    await until('the VM gone', async () => ((await vmExists(mine.node as string, mine.vmId as number)) ? undefined : true));
    const after = (await call<PoolView>('GET', '/api/v1/admin/pools/e2e', admin)).body.data;
    expect(after.members.map((m) => m.desktopId)).not.toContain(mine.id);

    // Removing the pool destroys its unclaimed members.
    expect((await call('DELETE', '/api/v1/admin/pools/e2e', admin)).status).toBe(200);
    for (const m of after.members) {
      await until(`member ${m.desktopId} deleted`, async () => {
        const d = (await call<Desktop>('GET', `/api/v1/desktops/${m.desktopId}`, admin)).body.data;
        return d.status === 'DELETED' ? d : undefined;
      });
    }
  }, 300_000);
});
