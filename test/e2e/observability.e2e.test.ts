/**
 * Observability with the real processes (edge under wrangler dev, bridge, simulators): one
 * request id from the client's create to the bridge's log lines, the bridge's Prometheus
 * endpoint after the create, and the admin's view of the desktop's use read from Proxmox.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { DesktopMetrics } from '../../src/schemas/bridge-protocol';
import type { Desktop } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

let stack: Stack;
let metricsPort: number;

/** A port free on loopback now, for the bridge's metrics listener. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  metricsPort = await freePort();
  stack = await startStack({ bridgeEnv: { METRICS_LISTEN: `127.0.0.1:${metricsPort}` } });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const call = edgeClient(() => stack.edgeUrl);

describe('observability, end to end', () => {
  it('follows one request id from the create to the bridge, counts the create, and charts the desktop', async () => {
    const tok = await stack.token('e2e-obs');
    const res = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', 'x-request-id': 'e2e-obs-request-1' },
      body: JSON.stringify({ name: 'Observed', plan: 'BASIC' }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBe('e2e-obs-request-1');
    const { id } = ((await res.json()) as { data: Desktop }).data;
    await until('the desktop RUNNING', async () => {
      const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
      if (d.status === 'FAILED') throw new Error(`FAILED: ${d.errorMessage}`);
      return d.status === 'RUNNING' ? d : undefined;
    });

    // The JSON lines about this command, the bridge's and the hub's, carry the id.
    const bridgeLines = stack
      .logs()
      .split('\n')
      .map((line) => line.slice(line.indexOf('{')))
      .filter((line) => line.startsWith('{') && line.includes(`"desktopId":"${id}"`) && line.includes('"commandId"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // The bridge's lines have a level; the hub's outcome line (the echoed id) has none.
    const fromBridge = bridgeLines.filter((l) => 'level' in l);
    expect(fromBridge.map((l) => l.msg)).toEqual(expect.arrayContaining(['command started', 'progress', 'command complete']));
    for (const line of fromBridge) expect(line).toMatchObject({ requestId: 'e2e-obs-request-1', kind: 'create' });
    expect(bridgeLines.filter((l) => !('level' in l) && l.msg === 'command complete')).toContainEqual(
      expect.objectContaining({ requestId: 'e2e-obs-request-1' }),
    );

    const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await scrape.text();
    expect(text).toContain('cdaas_bridge_commands_total{kind="create",outcome="complete"} 1');
    expect(text).toContain('cdaas_bridge_desktops{status="running"} 1');
    expect(text).toContain('cdaas_bridge_edge_connected 1');

    const admin = await stack.token('e2e-obs-admin', ['admin']);
    const usage = (await call<DesktopMetrics>('GET', `/api/v1/admin/desktops/${id}/metrics`, admin)).body.data;
    expect(usage).toMatchObject({ desktopId: id, source: 'proxmox', current: { status: 'running' } });
    expect(usage.series).toHaveLength(70);
    expect(usage.series.at(-1)?.cpu).not.toBeNull();

    const page = await fetch(`${stack.edgeUrl}/api/v1/desktops/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${tok}` } });
    expect(page.status).toBe(202);
  });
});
