/**
 * The edge's half of observability: the request id a client sends (or the edge makes) is
 * answered in X-Request-Id and travels on the command through the queue and the SiteHub
 * to the bridge; an admin reads a desktop's recent use through its site's bridge.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command, DesktopMetrics } from '../../src/schemas/bridge-protocol';
import type { Desktop } from '../../src/schemas/desktop';
import { SELKIES_METRICS_REASON, nothingToRead } from '../../src/routes/admin-metrics';
import { DesktopUsage, sparklinePaths } from '../../src/ui/admin/desktop-usage';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;

beforeAll(async () => {
  bridge = await FakeBridge.connect('local', await registerSite('local'));
});

const create = async (user: string, headers: Record<string, string> = {}) =>
  api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { name: 'Obs', plan: 'BASIC' }, headers });

describe('request ids end to end', () => {
  it('answers the client’s X-Request-Id and carries it on the create and the stop commands the bridge gets', async () => {
    const user = uniqueUser();
    const logged = vi.spyOn(console, 'log');
    const res = await create(user, { 'x-request-id': 'client-req-0001' });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBe('client-req-0001');
    const desktop = res.body!.data;
    const command = await bridge.command(desktop.id, 'create');
    expect(command.requestId).toBe('client-req-0001');

    await bridge.runCreate(command, { vmId: 41000, ipAddress: '10.41.0.1', connectionId: '41' });
    await expect
      .poll(async () => (await api<Desktop>('GET', `/api/v1/desktops/${desktop.id}`, { token: await token(user) })).body?.data.status)
      .toBe('RUNNING');
    // The hub's logs of the dispatch and of the outcome (which the bridge echoed) carry the id.
    const lines = logged.mock.calls.map(([line]) => String(line)).filter((line) => line.includes(command.id));
    logged.mockRestore();
    expect(lines.map((line) => JSON.parse(line))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'command dispatched', requestId: 'client-req-0001' }),
        expect.objectContaining({ msg: 'command complete', requestId: 'client-req-0001' }),
      ]),
    );
    const stop = await api('POST', `/api/v1/desktops/${desktop.id}/stop`, {
      token: await token(user),
      headers: { 'x-request-id': 'client-req-0002' },
    });
    expect(stop.headers.get('x-request-id')).toBe('client-req-0002');
    expect((await bridge.command(desktop.id, 'stop')).requestId).toBe('client-req-0002');
  });

  it('makes its own id for a request without one, or with one that is not well formed, and uses that id on the command', async () => {
    for (const sent of [undefined, 'has spaces and ; semicolons', 'x'.repeat(65)]) {
      const res = await create(uniqueUser(), sent === undefined ? {} : { 'x-request-id': sent });
      const answered = res.headers.get('x-request-id');
      expect(answered).toMatch(/^[0-9a-f-]{36}$/);
      const command: Command = await bridge.command(res.body!.data.id, 'create');
      expect(command.requestId).toBe(answered);
    }
  });
});

describe('GET /api/v1/admin/desktops/{id}/metrics', () => {
  it('asks the site’s bridge for a running desktop’s use, naming its VM, and answers what the bridge read', async () => {
    const d = await bridge.runningDesktop(uniqueUser());
    const admin = await token('ops', { roles: ['admin'] });
    const pending = api<DesktopMetrics>('GET', `/api/v1/admin/desktops/${d.id}/metrics`, { token: admin });
    const ask = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'desktop_metrics' && f.request.desktopId === d.id);
    if (ask.type !== 'request') throw new Error('unreachable');
    expect(ask.request).toEqual({ op: 'desktop_metrics', desktopId: d.id, vmId: 31000, node: 'pve1' });
    const metrics: DesktopMetrics = {
      desktopId: d.id,
      source: 'proxmox',
      reason: null,
      takenAt: '2026-12-05T05:00:00.000Z',
      current: {
        status: 'running',
        cpu: 0.1,
        cpus: 2,
        memoryBytes: 1e9,
        memoryMaxBytes: 4e9,
        uptimeSeconds: 120,
        netInBytes: 5,
        netOutBytes: 6,
        diskReadBytes: 7,
        diskWriteBytes: 8,
      },
      series: [
        {
          time: '2026-12-05T04:59:00.000Z',
          cpu: 0.1,
          memoryBytes: 1e9,
          memoryMaxBytes: 4e9,
          netInBytesPerSecond: 1,
          netOutBytesPerSecond: 2,
          diskReadBytesPerSecond: 3,
          diskWriteBytesPerSecond: 4,
        },
      ],
    };
    bridge.send({ type: 'response', requestId: ask.requestId, ok: true, metrics });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body?.data).toEqual(metrics);
  });

  it('answers an empty series with the reason for a desktop without a VM, 404 for an unknown one', async () => {
    const admin = await token('ops', { roles: ['admin'] });
    const fresh = (await create(uniqueUser())).body!.data;
    const res = await api<DesktopMetrics>('GET', `/api/v1/admin/desktops/${fresh.id}/metrics`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body?.data).toMatchObject({
      source: 'none',
      series: [],
      current: null,
      reason: 'The desktop has no VM yet (it is PENDING)',
    });
    expect((await api('GET', '/api/v1/admin/desktops/dk0000000000000000000000/metrics', { token: admin })).status).toBe(404);
  });

  it('says why a Selkies desktop has no series', () => {
    const selkies = { backend: 'selkies', status: 'RUNNING', vmId: null, node: 'gpu-1' } as unknown as Desktop;
    expect(nothingToRead(selkies)).toBe(SELKIES_METRICS_REASON);
  });
});

describe('the admin console’s usage charts', () => {
  const point = (minute: number, cpu: number | null) => ({
    time: `2026-12-05T04:${String(minute).padStart(2, '0')}:00.000Z`,
    cpu,
    memoryBytes: cpu === null ? null : 2 * 1024 ** 3,
    memoryMaxBytes: cpu === null ? null : 4 * 1024 ** 3,
    netInBytesPerSecond: cpu === null ? null : 2048,
    netOutBytesPerSecond: cpu === null ? null : 1024,
    diskReadBytesPerSecond: cpu === null ? null : 0,
    diskWriteBytesPerSecond: cpu === null ? null : 512,
  });

  it('draws CPU, memory, network and disk as inline SVG, with a gap where Proxmox has no value', () => {
    const html = String(
      DesktopUsage({
        desktopId: 'dkchart0001',
        metrics: {
          desktopId: 'dkchart0001',
          source: 'proxmox',
          reason: null,
          takenAt: '2026-12-05T05:00:00.000Z',
          current: null,
          series: [point(1, 0.1), point(2, null), point(3, 0.5), point(4, 0.25)],
        },
      }),
    );
    for (const chart of ['CPU', 'Memory', 'Network', 'Disk']) expect(html).toContain(`data-chart="${chart}"`);
    expect(html).toContain('CPU over the last hour; now used 25.0 %');
    expect(html).toContain('Memory over the last hour; now used 2.0 GiB');
    expect(html).toContain('in 2.0 KiB/s · out 1.0 KiB/s');
    // The missing minute splits the CPU line in two: a lone point, then the last two minutes.
    expect(sparklinePaths([0.1, null, 0.5, 0.25], 1)).toEqual(['3.0,41.6', '159.0,24.0 237.0,35.0']);
    expect(html).toContain('<circle cx="3.0" cy="41.6"');
    expect(html).toContain('<polyline points="159.0,24.0 237.0,35.0"');
    expect(html).not.toContain('<script');
  });

  it('shows the reason instead of charts when there is nothing to read', () => {
    const html = String(
      DesktopUsage({
        desktopId: 'dkchart0002',
        metrics: {
          desktopId: 'dkchart0002',
          source: 'none',
          reason: SELKIES_METRICS_REASON,
          takenAt: '2026-12-05T05:00:00.000Z',
          current: null,
          series: [],
        },
      }),
    );
    expect(html).toContain('Selkies desktops run as Kubernetes pods');
    expect(html).not.toContain('<svg');
  });
});
