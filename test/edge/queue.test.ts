/** Commands wait in the jobs queue while a site's bridge is offline, and fail the desktop when they cannot be delivered. */
import { env } from 'cloudflare:workers';
import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import type { JobMessage } from '../../src/schemas/jobs';
import worker from '../../workers/index';
import { retryDelaySeconds } from '../../workers/queues/jobs';
import { seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token } from './helpers';

const seedQueued = (siteId: string) => seedDesktop(siteId, 'queue-user');

function jobFor(d: Desktop, commandId: string): JobMessage {
  return {
    siteId: d.siteId,
    command: {
      id: commandId,
      desktopId: d.id,
      kind: 'create',
      issuedAt: d.createdAt,
      spec: {
        desktopId: d.id,
        userId: d.userId,
        name: d.name,
        plan: d.plan,
        cpuCores: d.cpuCores,
        memoryMb: d.memoryMb,
        protocol: d.protocol,
      },
    },
  };
}

describe('jobs queue', () => {
  it('drops commands the desktop no longer wants, and malformed messages', async () => {
    const d = await seedQueued('offline-site');
    const ctx = createExecutionContext();
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    const batch = createMessageBatch<JobMessage>('cdaas-jobs', [
      { id: 'm1', timestamp: new Date(), attempts: 1, body: jobFor(d, 'cmd-unknown') },
      {
        id: 'm2',
        timestamp: new Date(),
        attempts: 1,
        body: { siteId: 'offline-site', command: { broken: true } } as unknown as JobMessage,
      },
    ]);
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    // A command the desktop no longer wants is dropped; a malformed one too.
    expect(result.explicitAcks.sort()).toEqual(['m1', 'm2']);
    expect(await stub.isActiveCommand('cmd-unknown')).toBe(false);
  });

  it('asks for redelivery later while the bridge is offline', async () => {
    const d = await seedQueued('offline-site');
    const commandId = await findActiveCommand(d);
    const batch = createMessageBatch<JobMessage>('cdaas-jobs', [
      { id: 'm1', timestamp: new Date(), attempts: 1, body: jobFor(d, commandId) },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    // (The test helper records that a message was retried, not its delay; the delay is pinned below.)
    expect(result.retryMessages).toEqual([{ msgId: 'm1' }]);
    expect(result.explicitAcks).toEqual([]);
  });

  it('does not vouch for desktops of a site whose bridge is offline', async () => {
    const d = await seedQueued('offline-site');
    const res = await api<{ status: string; siteBridge: string }>('GET', `/api/v1/desktops/${d.id}/status`, {
      token: await token('queue-user'),
    });
    expect(res.body?.data).toMatchObject({ status: 'PENDING', siteBridge: 'offline' });
  });

  it('backs off exponentially up to a cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelaySeconds(n, 2, 60))).toEqual([2, 4, 8, 16, 32, 60, 60, 60]);
  });

  it('fails the desktop with the reason when the command is dead-lettered', async () => {
    const d = await seedQueued('offline-site');
    const commandId = await findActiveCommand(d);
    const batch = createMessageBatch<JobMessage>('cdaas-jobs-dlq', [
      { id: 'dead', timestamp: new Date(), attempts: 1, body: jobFor(d, commandId) },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(['dead']);
    const failed = await env.DESKTOP_SESSION.getByName(d.id).get();
    expect(failed?.status).toBe('FAILED');
    expect(failed?.errorMessage).toBe(
      "The on-prem bridge of site 'offline-site' is offline: the create command could not be delivered after 9 attempts",
    );
  });

  it('delivers queued commands once the bridge connects', async () => {
    const key = await registerSite('late-site');
    const d = await seedQueued('late-site');
    // The real queue is already retrying; the command arrives after the bridge shows up.
    const bridge = await FakeBridge.connect('late-site', key);
    const cmd = await bridge.command(d.id, 'create');
    expect(cmd.spec.cpuCores).toBe(2);
  });

  it('hands in-flight commands out again when the link drops', async () => {
    const key = await registerSite('flaky-site');
    const first = await FakeBridge.connect('flaky-site', key);
    const d = await seedQueued('flaky-site');
    const cmd = await first.command(d.id, 'create');
    first.send({ type: 'accepted', commandId: cmd.id, desktopId: d.id });
    await first.close();
    await vi.waitFor(async () => expect((await env.SITE_HUB.getByName('flaky-site').status()).connected).toBe(false));
    const second = await FakeBridge.connect('flaky-site', key);
    const again = await second.command(d.id, 'create');
    expect(again.id).toBe(cmd.id);
  });
});

/** The desktop's active command id, read from what its create put on the queue. */
async function findActiveCommand(d: Desktop): Promise<string> {
  return runInDurableObject(env.DESKTOP_SESSION.getByName(d.id), (_o, state) => {
    const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one();
    return (JSON.parse(row.value) as { activeCommand: { id: string } }).activeCommand.id;
  });
}
