/** /admin: desktops by status, provisioning times, capacity per site and node, GPUs, idle stops due and recent failures. */
import type { FC } from 'hono/jsx';
import type { z } from 'zod';
import type { OverviewOut } from '../../routes/admin-insights';
import type { GpuOccupancyOut } from '../../routes/admin';
import { DESKTOP_STATUSES } from '../../schemas/desktop';
import { tone } from '../desktop-model';
import { memory, millis } from '../format';
import { Time } from '../layout';
import { STATUS_TEXT } from '../status-text';
import { type Loaded, Problem, failed } from './loaded';
import { AdminTable, type Column } from './table';

export type Overview = z.infer<typeof OverviewOut>;
export type GpuOccupancy = z.infer<typeof GpuOccupancyOut>;

type NodeUse = Overview['sites'][number]['nodes'][number];
type GpuRow = GpuOccupancy['gpus'][number] & { siteId: string };
type IdleStop = Overview['idleStopsWithinHour'][number];
type Failures = Overview['failuresByReason'][number];

const NODE_COLUMNS: Column<NodeUse>[] = [
  { header: 'Node', rowHeader: true, cell: (n) => n.node },
  { header: 'Desktops', cell: (n) => n.desktops },
  { header: 'vCPU', cell: (n) => n.cpuCores },
  { header: 'Memory', cell: (n) => memory(n.memoryMb) },
];

const GPU_COLUMNS: Column<GpuRow>[] = [
  { header: 'Site', cell: (g) => g.siteId },
  { header: 'GPU', rowHeader: true, cell: (g) => g.gpuId },
  { header: 'Node', cell: (g) => g.node },
  { header: 'Slots in use', cell: (g) => `${g.used} of ${g.slots}` },
  { header: 'Free', cell: (g) => g.free },
  { header: 'Sessions', cell: (g) => g.sessions.map((x) => `${x.sessionId} (${x.slots})`).join(', ') || '—' },
];

const IDLE_COLUMNS: Column<IdleStop>[] = [
  { header: 'Desktop', rowHeader: true, cell: (r) => <code>{r.desktopId}</code> },
  { header: 'User', cell: (r) => r.userId },
  { header: 'Stops at', cell: (r) => <Time iso={r.idleStopAt} /> },
];

const FAILURE_COLUMNS: Column<Failures>[] = [
  { header: 'Reason', class: 'long', cell: (f) => f.reason },
  { header: 'Desktops', cell: (f) => f.count },
];

export const OverviewView: FC<{ overview: Loaded<Overview>; gpus: Loaded<GpuOccupancy[]> }> = ({ overview, gpus }) => {
  if (failed(overview)) return <Problem what="The overview" v={overview} />;
  const o = overview;
  const shown = DESKTOP_STATUSES.filter((s) => s !== 'DELETED');
  return (
    <>
      <section aria-labelledby="ov-status" class="section">
        <h2 id="ov-status">Desktops by status</h2>
        <dl class="stats">
          {shown.map((s) => (
            <div data-tone={tone(s)}>
              <dt>{STATUS_TEXT[s]}</dt>
              <dd>{o.desktopsByStatus[s] ?? 0}</dd>
            </div>
          ))}
          <div>
            <dt>Active users</dt>
            <dd>{o.activeUsers}</dd>
          </div>
        </dl>
        <p class="hint">
          As of <Time iso={o.at} />.
        </p>
      </section>
      <section aria-labelledby="ov-prov" class="section">
        <h2 id="ov-prov">Provisioning in the last hour</h2>
        <dl class="stats">
          <div>
            <dt>Desktops created</dt>
            <dd>{o.provisioningLastHour.desktops}</dd>
          </div>
          <div>
            <dt>Time to running, median (p50)</dt>
            <dd>{millis(o.provisioningLastHour.p50Ms)}</dd>
          </div>
          <div>
            <dt>Time to running, p95</dt>
            <dd>{millis(o.provisioningLastHour.p95Ms)}</dd>
          </div>
        </dl>
      </section>
      <section aria-labelledby="ov-cap" class="section">
        <h2 id="ov-cap">Capacity in use per site and node</h2>
        {o.sites.length === 0 ? <p class="empty">No sites are registered.</p> : null}
        {o.sites.map((site) => (
          <div class="site">
            <h3>
              {site.name} <span class="badge" data-tone={site.bridge === 'connected' ? 'ok' : 'bad'}>{`bridge ${site.bridge}`}</span>
            </h3>
            <AdminTable label={`Nodes of ${site.name}`} columns={NODE_COLUMNS} rows={site.nodes} empty="No desktops hold resources here." />
          </div>
        ))}
      </section>
      <section aria-labelledby="ov-gpu" class="section">
        <h2 id="ov-gpu">GPUs</h2>
        <AdminTable
          label="GPU slots per site"
          what="GPU occupancy"
          columns={GPU_COLUMNS}
          rows={failed(gpus) ? gpus : gpus.flatMap((s) => s.gpus.map((g) => ({ ...g, siteId: s.siteId })))}
          empty="No site reports GPUs."
        />
      </section>
      <section aria-labelledby="ov-idle" class="section">
        <h2 id="ov-idle">Idle stops due in the next hour</h2>
        <AdminTable label="Idle stops due" columns={IDLE_COLUMNS} rows={o.idleStopsWithinHour} empty="None." />
      </section>
      <section aria-labelledby="ov-fail" class="section">
        <h2 id="ov-fail">Failures in the last 24 hours</h2>
        <AdminTable label="Failures by reason" columns={FAILURE_COLUMNS} rows={o.failuresByReason} empty="None." />
      </section>
    </>
  );
};
