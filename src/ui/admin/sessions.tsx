/** /admin/sessions: every desktop, filtered by user and status, with start, stop and terminate per row (the script follows each row live). */
import type { FC } from 'hono/jsx';
import { DESKTOP_STATUSES, type Desktop, type DesktopStatus } from '../../schemas/desktop';
import type { Page } from '../api';
import { actionsFor, planText, tone } from '../desktop-model';
import { ACTION_LABEL } from '../launcher-page';
import { Time } from '../layout';
import { STATUS_TEXT } from '../status-text';
import type { DesktopMetrics } from '../../schemas/bridge-protocol';
import { DesktopUsage } from './desktop-usage';
import type { Loaded } from './loaded';
import { AdminTable, type Column, type FilterField } from './table';

export interface SessionFilters {
  userId: string;
  status: DesktopStatus | '';
  page: number;
  /** The desktop whose use over the last hour is shown above the table ('' for none). */
  desktop: string;
}

const ROW_ACTIONS = ['start', 'stop', 'terminate'] as const;

const COLUMNS: Column<Desktop>[] = [
  {
    header: 'Desktop',
    rowHeader: true,
    cell: (d) => (
      <>
        <span data-field="name">{d.name}</span>
        <br />
        <code>{d.id}</code>
        <br />
        <a class="small" href={`/admin/sessions?desktop=${encodeURIComponent(d.id)}`} aria-label={`Use of ${d.name} over the last hour`}>
          Use
        </a>
      </>
    ),
  },
  { header: 'User', cell: (d) => d.userId },
  {
    header: 'Status',
    class: (d) => (d.errorMessage ? 'long' : undefined),
    cell: (d) => (
      <>
        <span class="badge" data-field="status" data-tone={tone(d.status)}>
          {STATUS_TEXT[d.status]}
        </span>
        {d.errorMessage ? <p class="problem small">{d.errorMessage}</p> : null}
      </>
    ),
  },
  { header: 'Plan', cell: (d) => planText(d.plan) },
  { header: 'Template', cell: (d) => d.templateId ?? '—' },
  { header: 'Where', cell: (d) => `${d.siteId}${d.node ? ` / ${d.node}` : ''}` },
  { header: 'Created', cell: (d) => <Time iso={d.createdAt} /> },
  { header: 'Idle stop', cell: (d) => <Time iso={d.idleStopAt} /> },
  {
    header: 'Actions',
    class: 'row-actions',
    // Every button is there, hidden unless the status allows it: the script shows them as the status changes.
    cell: (d) => {
      const actions = actionsFor(d.status);
      return ROW_ACTIONS.map((a) => (
        <button
          type="button"
          class={a === 'terminate' ? 'button-danger small' : 'button-quiet small'}
          data-action={a}
          data-label={ACTION_LABEL[a]}
          aria-label={`${ACTION_LABEL[a]} ${d.name} of ${d.userId}`}
          hidden={!actions.includes(a)}
        >
          {ACTION_LABEL[a]}
        </button>
      ));
    },
  },
];

const filterFields = (f: SessionFilters): FilterField[] => [
  { name: 'userId', id: 'f-user', label: 'User id', value: f.userId },
  {
    name: 'status',
    id: 'f-status',
    label: 'Status',
    value: f.status,
    options: [{ value: '', text: 'Any (not terminated)' }, ...DESKTOP_STATUSES.map((s) => ({ value: s, text: STATUS_TEXT[s] }))],
  },
];

export const SessionsView: FC<{ filters: SessionFilters; result: Loaded<Page<Desktop>>; usage?: Loaded<DesktopMetrics> | null }> = ({
  filters,
  result,
  usage = null,
}) => (
  <>
    {usage === null ? null : <DesktopUsage desktopId={filters.desktop} metrics={usage} />}
    <AdminTable
      filters={{ label: 'Filter sessions', action: '/admin/sessions', fields: filterFields(filters), submit: 'Apply filters' }}
      label="Sessions"
      class="sessions"
      columns={COLUMNS}
      rows={result}
      empty="No sessions match."
      rowAttributes={(d) => ({ 'data-desktop-id': d.id, 'data-status': d.status })}
      pager="sessions"
    />
  </>
);
