/**
 * The fault suite (issue 3): the real processes of startStack, seeded faults of every
 * kind injected by the Proxmox and Guacamole simulators at every lifecycle step, and the
 * bridge killed with SIGKILL at random moments and restarted, while desktops go
 * create → RUNNING → stop → STOPPED → start → RUNNING → delete → DELETED. Every verdict
 * comes from what the simulators hold, never from the edge's word.
 *
 * FAULTS_SCALE=full (npm run test:faults) is the evidence run; the short form runs in
 * `npm test`. FAULTS_SEED replays a run's fault and kill schedule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import { EdgeClient } from './support/edge-client';
import { Fleet } from './support/fleet';
import { Infra } from './support/infra';
import { type TrackedDesktop, isReadable } from './support/invariants';
import { VMID_RANGE, findings, formatReport, judgeSettled, runLifecycle } from './support/lifecycle-run';
import { table } from './support/report';
import { faultScale, faultSeed } from './support/scale';
import { setTimeout as sleep } from 'node:timers/promises';

const scale = faultScale();
const SEED = faultSeed();

let stack: Stack;
let edge: EdgeClient;
let infra: Infra;
/** Every desktop this file creates, whichever test made it. */
const everyDesktop = new Set<string>();

beforeAll(async () => {
  stack = await startStack({
    // Small but non-zero task times: a kill can land while a clone holds its lock, a
    // start task runs or the guest is still booting.
    simDelayScale: 0.1,
    // A dead bridge is noticed within seconds (three missed heartbeats at most).
    edgeVars: { LEASE_SECONDS: '6', HEARTBEAT_SECONDS: '2' },
    bridgeEnv: { IP_WAIT_SECONDS: String(scale.ipWaitSeconds), SHUTDOWN_TIMEOUT_SECONDS: '5' },
  });
  edge = new EdgeClient(stack);
  infra = new Infra(stack);
}, 180_000);

afterAll(async () => {
  await infra?.clearFaults().catch(() => undefined);
  await stack?.stop();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe(`fault suite (${scale.name}, seed ${SEED})`, () => {
  it('converges 20 concurrent creates when the bridge is SIGKILLed in the middle and restarted', async () => {
    const fleet = new Fleet(edge, `crash-${SEED}`, everyDesktop);
    const clonesBefore = await infra.clonesStarted();
    const desktops = await fleet.create(20);

    // The middle: some clones have started, most of the work has not finished.
    await until('five clones to start', async () => (await infra.clonesStarted()) - clonesBefore >= 5, 30_000);
    await stack.bridge.stop('SIGKILL');
    await fleet.refresh(desktops);
    const atKill = await infra.snapshot();
    const deskVms = atKill.vms.filter((v) => v.vmid >= VMID_RANGE.min && v.vmid <= VMID_RANGE.max);
    const atKillText = `${Fleet.census(desktops)}; Proxmox had ${deskVms.length} VMs (${deskVms.filter((v) => v.lock === 'clone').length} still cloning, ${deskVms.filter((v) => v.status === 'running').length} running), Guacamole ${atKill.connections.length} connections`;

    await stack.startBridge();
    await stack.waitForBridge(true);
    await fleet.settle(desktops, 'create', 60_000);
    const verdict = await judgeSettled({ edge, infra }, fleet, desktops);
    const snapshot = await infra.snapshot();
    const ids = new Set(desktops.map((d) => `desk-${d.id}`));
    const vms = snapshot.vms.filter((v) => ids.has(v.name));
    const connections = snapshot.connections.filter((c) => ids.has(c.name));

    console.log(
      [
        '',
        table(
          'SIGKILL during 20 concurrent creates',
          ['', 'value'],
          [
            ['at the kill', atKillText],
            ['RUNNING', desktops.filter((d) => d.status === 'RUNNING').length],
            ['VMs desk-<id>', vms.length],
            ['connections desk-<id>', connections.length],
            ['findings', findings(verdict).length],
          ],
        ),
        ...findings(verdict),
      ].join('\n'),
    );
    expect(desktops.map((d) => d.status)).toEqual(Array(20).fill('RUNNING'));
    expect(vms).toHaveLength(20);
    expect(new Set(vms.map((v) => v.vmid)).size).toBe(20);
    expect(connections).toHaveLength(20);
    expect(findings(verdict)).toEqual([]);

    // Nothing of this test may be left for the next one.
    await fleet.act(desktops, 'delete');
    await fleet.settle(desktops, 'delete', 60_000);
    expect(desktops.map((d) => d.status)).toEqual(Array(20).fill('DELETED'));
    expect(findings(await judgeSettled({ edge, infra }, fleet, desktops))).toEqual([]);
  }, 180_000);

  it(
    `drives ${scale.desktops} desktops through their whole life under faults and bridge kills; everything converges`,
    async () => {
      const ctx = { stack, edge, infra, scale, seed: SEED, everyDesktop };
      const run = await runLifecycle(ctx);
      console.log(formatReport(run, ctx));

      expect(run.totalFaults).toBeGreaterThanOrEqual(scale.minFaults);
      expect(run.kills.length).toBeGreaterThan(0);
      expect(run.findings).toEqual([]);
      for (const d of run.failed) expect(isReadable(d.failure ?? null), `${d.id}: ${d.failure}`).toBe(true);
      expect(run.fleet.desktops.filter((d) => d.status !== 'DELETED' && d.status !== 'FAILED')).toEqual([]);
    },
    20 * 60_000,
  );

  it('fails a create whose guest agent never answers, with a reason, and removes everything it made', async () => {
    const fleet = new Fleet(edge, `agent-${SEED}`, everyDesktop);
    await infra.setFaults({ proxmox: { rate: 1, kinds: ['agent_timeout'], seed: SEED } });
    let desktops: TrackedDesktop[];
    try {
      desktops = await fleet.create(2);
      await fleet.settle(desktops, 'create', 45_000);
    } finally {
      await infra.clearFaults();
    }
    for (const d of desktops) {
      expect(d.status).toBe('FAILED');
      expect(d.failure).toMatch(/IP address/);
      expect(isReadable(d.failure ?? null), String(d.failure)).toBe(true);
    }
    expect(findings(await judgeSettled({ edge, infra }, fleet, desktops))).toEqual([]);

    await fleet.act(desktops, 'delete');
    await fleet.settle(desktops, 'delete', 30_000);
    expect(desktops.map((d) => d.status)).toEqual(['DELETED', 'DELETED']);
  }, 120_000);
});
