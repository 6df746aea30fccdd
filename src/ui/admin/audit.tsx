/** /admin/audit: the audit log, filtered by actor, action, target, outcome and time, newest first. */
import type { FC } from 'hono/jsx';
import type { AuditRecord } from '../../schemas/jobs';
import type { Page } from '../api';
import { Time } from '../layout';
import type { Loaded } from './loaded';
import { AdminTable, type Column, type FilterField } from './table';

export type { AuditRecord };

export interface AuditFilters {
  actor: string;
  action: string;
  target: string;
  outcome: string;
  /** `YYYY-MM-DDTHH:MM`, read as UTC. */
  from: string;
  to: string;
  page: number;
}

const COLUMNS: Column<AuditRecord>[] = [
  { header: 'Time', cell: (r) => <Time iso={r.at} /> },
  { header: 'Actor', cell: (r) => r.actor },
  { header: 'Role', cell: (r) => r.role },
  { header: 'Action', rowHeader: true, cell: (r) => r.action },
  { header: 'Target', cell: (r) => (r.target ? <code>{r.target}</code> : '—') },
  { header: 'Outcome', cell: (r) => r.outcome },
  { header: 'Source IP', cell: (r) => r.sourceIp ?? '—' },
  { header: 'Request id', cell: (r) => (r.requestId ? <code>{r.requestId}</code> : '—') },
];

const filterFields = (f: AuditFilters): FilterField[] => [
  { name: 'actor', id: 'a-actor', label: 'Actor (user id)', value: f.actor },
  { name: 'action', id: 'a-action', label: 'Action (e.g. desktop.create)', value: f.action },
  { name: 'target', id: 'a-target', label: 'Target (desktop id)', value: f.target },
  { name: 'outcome', id: 'a-outcome', label: 'Outcome (HTTP status)', value: f.outcome },
  { name: 'from', id: 'a-from', label: 'From (UTC)', value: f.from, type: 'datetime-local' },
  { name: 'to', id: 'a-to', label: 'To (UTC)', value: f.to, type: 'datetime-local' },
];

export const AuditView: FC<{ filters: AuditFilters; result: Loaded<Page<AuditRecord>> }> = ({ filters, result }) => (
  <AdminTable
    filters={{ label: 'Filter the audit log', action: '/admin/audit', fields: filterFields(filters), submit: 'Apply filters' }}
    label="Audit records"
    class="audit"
    what="The audit log"
    columns={COLUMNS}
    rows={result}
    empty="No records match."
    pager="records"
  />
);
