/**
 * A desktop's use as Proxmox reports it (qemu-server's status/current, pve-manager's
 * rrddata) from the simulator, read through the bridge's driver and desktop_metrics task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import type { ProxmoxDriver } from '../../on-prem-bridge/src/drivers/types';
import type { TaskDeps } from '../../on-prem-bridge/src/tasks/context';
import { desktopMetrics } from '../../on-prem-bridge/src/tasks/desktop-metrics';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';

const DESKTOP = 'dkusage0001';
const VMID = 42001;

let sim: ProxmoxSimulator;
let pve: ProxmoxDriver;

beforeAll(async () => {
  sim = await startProxmoxSimulator();
  pve = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
  await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: VMID, name: `desk-${DESKTOP}`, full: false }));
  await pve.configureVm('pve1', VMID, { cores: 2, memory: 4096 });
  await pve.waitForTask(await pve.startVm('pve1', VMID));
});
afterAll(() => sim.stop());

describe('Proxmox rrddata and status/current', () => {
  it('answers 70 rows a minute apart for the last hour, values only since the VM started', async () => {
    const { current, rrd } = await pve.getVmUsage('pve1', VMID);
    expect(current).toMatchObject({ status: 'running', cpus: 2, maxmem: 4096 * 1024 ** 2, name: `desk-${DESKTOP}` });
    expect(rrd).toHaveLength(70);
    const times = rrd.map((r) => Number(r.time));
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBe(60);
    expect(Object.keys(rrd[0] ?? {})).toEqual(['time']);
    const latest = rrd.at(-1) ?? {};
    expect(latest).toMatchObject({ maxcpu: 2, maxmem: 4096 * 1024 ** 2 });
    expect(Number(latest.cpu)).toBeGreaterThanOrEqual(0);
    expect(Number(latest.cpu)).toBeLessThanOrEqual(1);
    expect(Number(latest.mem)).toBeLessThan(Number(latest.maxmem));
    for (const key of ['netin', 'netout', 'diskread', 'diskwrite']) expect(Number(latest[key])).toBeGreaterThanOrEqual(0);
  });

  it('refuses a timeframe Proxmox does not know, as parameter verification does', async () => {
    const res = await fetch(`${sim.url}/nodes/pve1/qemu/${VMID}/rrddata?timeframe=minute`, {
      headers: { authorization: `PVEAPIToken=${DEFAULT_TOKEN.id}=${DEFAULT_TOKEN.secret}` },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors?: Record<string, string> }).errors?.timeframe).toBeDefined();
  });

  it('gives the bridge’s desktop_metrics answer in named units, and says so when the VM is gone', async () => {
    const deps = { proxmox: pve } as unknown as TaskDeps;
    const answer = await desktopMetrics(deps, { desktopId: DESKTOP, vmId: VMID, node: 'pve1' });
    if (!answer.ok) throw new Error(answer.error);
    expect(answer.metrics).toMatchObject({ source: 'proxmox', current: { status: 'running', cpus: 2, memoryMaxBytes: 4096 * 1024 ** 2 } });
    expect(answer.metrics.series).toHaveLength(70);
    expect(answer.metrics.series[0]).toMatchObject({ cpu: null, memoryBytes: null });
    expect(answer.metrics.series.at(-1)?.memoryMaxBytes).toBe(4096 * 1024 ** 2);

    const gone = await desktopMetrics(deps, { desktopId: DESKTOP, vmId: 42999, node: 'pve1' });
    expect(gone).toMatchObject({ ok: true, metrics: { source: 'none', series: [], reason: 'VM 42999 no longer exists on pve1' } });
  });
});
