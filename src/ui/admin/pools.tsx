/**
 * /admin/pools: every warm pool (issue 13) with its target and why, its ready and coming
 * members, and how it answered: hits, warm hits, misses, members replaced, and how long a
 * hit's claim took. Pools are made, changed, paused and removed through the admin API
 * (PUT/DELETE /api/v1/admin/pools/{id}); this page shows them.
 */
import type { FC } from 'hono/jsx';
import type { PoolView } from '../../schemas/pool';
import type { Loaded } from './loaded';
import { AdminTable, type Column } from './table';

const count = (p: PoolView, tier: 'running' | 'stopped', phase: 'ready' | 'coming') =>
  p.members.filter((m) => m.tier === tier && (phase === 'ready' ? m.phase === 'ready' : m.phase === 'building' || m.phase === 'moving'))
    .length;

const ms = (v: number | null) => (v === null ? '–' : `${Math.round(v)} ms`);

const COLUMNS: Column<PoolView>[] = [
  {
    header: 'Pool',
    rowHeader: true,
    cell: (p) => (
      <>
        <code>{p.id}</code>
        <br />
        template <code>{p.templateId}</code> at <code>{p.siteId}</code>
      </>
    ),
  },
  {
    header: 'Target and why',
    cell: (p) => (
      <>
        {p.target.running} running, {p.target.stopped} stopped
        <ul class="reasons">
          {p.target.reasons.map((r) => (
            <li>{r}</li>
          ))}
        </ul>
      </>
    ),
  },
  {
    header: 'Members ready (coming)',
    cell: (p) =>
      `running ${count(p, 'running', 'ready')} (${count(p, 'running', 'coming')}), stopped ${count(p, 'stopped', 'ready')} (${count(p, 'stopped', 'coming')})`,
  },
  { header: 'Hits / warm / misses', cell: (p) => `${p.stats.hits} / ${p.stats.warmHits} / ${p.stats.misses}` },
  { header: 'Replaced', cell: (p) => p.stats.replaced },
  { header: 'Claim p50 / p95', cell: (p) => `${ms(p.stats.claimP50Ms)} / ${ms(p.stats.claimP95Ms)}` },
  {
    header: 'State',
    cell: (p) => (
      <span class="badge" data-tone={p.paused ? 'idle' : 'ok'}>
        {p.paused ? 'Paused' : 'Filling'}
      </span>
    ),
  },
];

export const PoolsView: FC<{ pools: Loaded<PoolView[]> }> = ({ pools }) => (
  <AdminTable
    label="Warm pools"
    columns={COLUMNS}
    rows={pools}
    empty="No warm pools. Make one with PUT /api/v1/admin/pools/{id}: every create for its template is then answered by a ready desktop."
    rowAttributes={(p) => ({ 'data-pool-id': p.id })}
  />
);
