/**
 * What an operator sees of the bridge: the edge's request id on every log line and frame
 * about its command, the Prometheus endpoint after a create, and a desktop's recent use
 * answered to the edge's desktop_metrics request.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BridgeToEdge, CompleteFrame, FailFrame } from '../../src/schemas/bridge-protocol';
import { type Bridge, createBridge } from '../../on-prem-bridge/src/bridge';
import { ConfigError, loadConfig } from '../../on-prem-bridge/src/config';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import type { LogFields } from '../../on-prem-bridge/src/logger';
import { type BridgeMetrics, createMetrics, serveMetrics } from '../../on-prem-bridge/src/metrics';
import { FakeEdge } from './support/fake-edge';
import { type Infra, desktopId, makeCommand, makeDeps, makeInfra, memoryLogger } from './support/harness';

const SITE_KEY = 'site-key-for-tests';

let edge: FakeEdge;
let infra: Infra;
let bridge: Bridge | undefined;

beforeEach(async () => {
  edge = await FakeEdge.start({ siteKey: SITE_KEY, heartbeatMs: 40 });
  infra = makeInfra();
});

afterEach(async () => {
  await bridge?.stop(0);
  bridge = undefined;
  await edge.close();
});

function startBridge(metrics?: BridgeMetrics): LogFields[] {
  const logs: LogFields[] = [];
  bridge = createBridge({
    edgeUrl: edge.url,
    siteId: 'local',
    siteKey: SITE_KEY,
    concurrency: 4,
    deps: makeDeps(infra),
    log: memoryLogger(logs),
    linkTiming: { initialBackoffMs: 5, maxBackoffMs: 20 },
    metrics,
  });
  bridge.start();
  return logs;
}

const resultOf =
  (commandId: string) =>
  (f: BridgeToEdge): f is CompleteFrame | FailFrame =>
    (f.type === 'complete' || f.type === 'fail') && f.commandId === commandId;

describe('request ids through the bridge', () => {
  it('puts the command’s request id on every log line about it and echoes it on progress and complete', async () => {
    const logs = startBridge();
    await edge.waitFor((f) => f.type === 'ready');
    const id = desktopId();
    const command = { ...makeCommand('create', id), requestId: 'req-obs-1' };
    edge.command(command);
    const result = await edge.waitFor(resultOf(command.id));

    expect(result).toMatchObject({ type: 'complete', requestId: 'req-obs-1' });
    const progress = edge.framesOf(command.id, 'progress');
    expect(progress.length).toBeGreaterThan(3);
    for (const frame of progress) expect(frame).toMatchObject({ requestId: 'req-obs-1' });
    const lines = logs.filter((l) => l.commandId === command.id && l.msg !== 'command queued');
    expect(lines.map((l) => l.msg)).toContain('command complete');
    for (const line of lines) expect(line.requestId).toBe('req-obs-1');
  });

  it('sends no request id for a command that came without one (an older edge, a clock)', async () => {
    startBridge();
    await edge.waitFor((f) => f.type === 'ready');
    const command = makeCommand('create', desktopId());
    edge.command(command);
    const result = await edge.waitFor(resultOf(command.id));
    expect(result).not.toHaveProperty('requestId');
  });
});

describe('Prometheus metrics', () => {
  const REQUIRED = {
    SITE_KEY: 'k',
    PROXMOX_TOKEN_SECRET: '11111111-2222-3333-4444-555555555555',
    GUACAMOLE_USERNAME: 'guacadmin',
    GUACAMOLE_PASSWORD: 'guacadmin-password',
    BRIDGE_SECRET: 'x'.repeat(32),
  };

  it('listens nowhere unless METRICS_LISTEN names a host:port', () => {
    expect(loadConfig(REQUIRED).metricsListen).toBeNull();
    expect(loadConfig({ ...REQUIRED, METRICS_LISTEN: '127.0.0.1:9464' }).metricsListen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ ...REQUIRED, METRICS_LISTEN: '[::1]:9464' }).metricsListen).toEqual({ host: '::1', port: 9464 });
    for (const bad of ['9464', 'http://127.0.0.1:9464', '127.0.0.1:99999']) {
      expect(() => loadConfig({ ...REQUIRED, METRICS_LISTEN: bad })).toThrow(ConfigError);
    }
  });

  it('counts a create, its duration, a backend error and the desktops by status, scraped over HTTP', async () => {
    const metrics = createMetrics();
    const server = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 });
    try {
      startBridge(metrics);
      await edge.waitFor((f) => f.type === 'ready');
      const ok = makeCommand('create', desktopId());
      edge.command(ok);
      await edge.waitFor(resultOf(ok.id));
      // A second desktop whose clone Proxmox refuses for good.
      infra.proxmox.failNext(
        'cloneVm',
        new InfraError('Proxmox POST /nodes/pve1/qemu/9000/clone: 403 Permission check failed', 'proxmox', 403, false),
      );
      const bad = makeCommand('create', desktopId());
      edge.command(bad);
      expect(await edge.waitFor(resultOf(bad.id))).toMatchObject({ type: 'fail' });

      const address = server.address();
      if (typeof address !== 'object' || address === null) throw new Error('no address');
      const res = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      const text = await res.text();
      expect(text).toContain('# TYPE cdaas_bridge_commands_total counter');
      expect(text).toContain('cdaas_bridge_commands_total{kind="create",outcome="complete"} 1');
      expect(text).toContain('cdaas_bridge_commands_total{kind="create",outcome="fail"} 1');
      expect(text).toContain('# TYPE cdaas_bridge_command_duration_seconds histogram');
      expect(text).toContain('cdaas_bridge_command_duration_seconds_bucket{kind="create",le="+Inf"} 2');
      expect(text).toContain('cdaas_bridge_command_duration_seconds_count{kind="create"} 2');
      expect(text).toContain('cdaas_bridge_backend_errors_total{backend="proxmox",class="auth"} 1');
      expect(text).toContain('cdaas_bridge_desktops{status="running"} 1');
      expect(text).toContain('cdaas_bridge_desktops{status="failed"} 1');
      expect(text).toContain('cdaas_bridge_edge_connected 1');

      expect((await fetch(`http://127.0.0.1:${address.port}/`)).status).toBe(404);
      edge.dropConnection();
      await edge.until(() => !bridge?.link.live);
      expect(metrics.render()).toContain('cdaas_bridge_edge_connected 0');
    } finally {
      server.close();
    }
  });
});

describe('desktop_metrics requests', () => {
  it('answers a desktop’s current use and its last hour from Proxmox, and refuses a VM of another desktop', async () => {
    startBridge();
    await edge.waitFor((f) => f.type === 'ready');
    const id = desktopId();
    const create = makeCommand('create', id);
    edge.command(create);
    const done = await edge.waitFor(resultOf(create.id));
    if (done.type !== 'complete') throw new Error('create failed');
    const vmId = done.facts.vmId as number;

    edge.send({ type: 'request', requestId: 'm1', request: { op: 'desktop_metrics', desktopId: id, vmId, node: 'pve1' } });
    const answer = await edge.waitFor((f) => f.type === 'response' && f.requestId === 'm1');
    expect(answer).toMatchObject({ ok: true, metrics: { desktopId: id, source: 'proxmox', reason: null } });
    if (answer.type !== 'response' || !answer.metrics) throw new Error('no metrics');
    expect(answer.metrics.current).toMatchObject({ status: 'running', cpu: 0.25, cpus: 2, memoryBytes: 1024, memoryMaxBytes: 4096 });
    // The row before the VM ran has no values: nulls, not zeros.
    expect(answer.metrics.series).toEqual([
      expect.objectContaining({ time: '2027-01-15T08:00:00.000Z', cpu: null, memoryBytes: null }),
      expect.objectContaining({ time: '2027-01-15T08:01:00.000Z', cpu: 0.25, netInBytesPerSecond: 10, diskWriteBytesPerSecond: 7 }),
    ]);

    const other = desktopId();
    edge.send({ type: 'request', requestId: 'm2', request: { op: 'desktop_metrics', desktopId: other, vmId, node: 'pve1' } });
    const refused = await edge.waitFor((f) => f.type === 'response' && f.requestId === 'm2');
    expect(refused).toMatchObject({ ok: false, error: expect.stringContaining(`is not desktop ${other}'s`) });
  });
});
