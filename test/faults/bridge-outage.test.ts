/**
 * A bridge that stays down longer than a step's watchdog (FAULTS_SCALE=full only: it
 * needs a stack of its own with short watchdogs and realistic clone times).
 *
 * The desktop must end FAILED with the watchdog's reason, and what the interrupted
 * create had built must still be removed once a bridge is back: the edge's cancel
 * reaches no one while the site is offline, so the desktop queues a teardown (the
 * idempotent delete task) that whichever bridge comes back runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import { EdgeClient } from './support/edge-client';
import { Fleet } from './support/fleet';
import { Infra } from './support/infra';
import { isReadable } from './support/invariants';
import { findings, judgeSettled } from './support/lifecycle-run';
import { faultScale } from './support/scale';
import { setTimeout as sleep } from 'node:timers/promises';

const full = faultScale().name === 'full';
const WATCHDOG_SECONDS = { PENDING: 120, PROVISIONING: 4, STARTING: 4, WAITING_FOR_IP: 4, CONFIGURING: 4, STOPPING: 60 };

describe.runIf(full)('a bridge down for longer than a watchdog', () => {
  let stack: Stack;
  let edge: EdgeClient;
  let infra: Infra;

  beforeAll(async () => {
    stack = await startStack({
      // Realistic task times: the clone (3 s) is still running when the bridge dies.
      simDelayScale: 1,
      edgeVars: { LEASE_SECONDS: '6', HEARTBEAT_SECONDS: '2', WATCHDOG_SECONDS: JSON.stringify(WATCHDOG_SECONDS) },
    });
    edge = new EdgeClient(stack);
    infra = new Infra(stack);
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('fails the desktop with the reason, and removes what the interrupted create built once a bridge is back', async () => {
    const fleet = new Fleet(edge, 'outage');
    const [desktop] = await fleet.create(1);
    if (!desktop) throw new Error('no desktop');
    const deadline = Date.now() + 30_000;
    while (desktop.status !== 'PROVISIONING' && Date.now() < deadline) {
      await fleet.refresh([desktop]);
      await sleep(50);
    }
    await stack.bridge.stop('SIGKILL');
    await fleet.settle([desktop], 'create', 30_000);
    expect(desktop.status).toBe('FAILED');
    expect(desktop.failure).toMatch(/^Timed out after 4 s in PROVISIONING \(.+\) while the bridge of site '.+' was offline$/);
    expect(isReadable(desktop.failure ?? null)).toBe(true);

    await stack.startBridge();
    await stack.waitForBridge(true);
    expect(findings(await judgeSettled({ edge, infra }, fleet, [desktop], 20_000))).toEqual([]);
  }, 120_000);
});
