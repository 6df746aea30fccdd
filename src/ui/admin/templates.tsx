/** /admin/templates: every template, active or retired, with retire and restore (by the script). */
import type { FC } from 'hono/jsx';
import type { Template, TemplateInput } from '../../schemas/template';
import { planText } from '../desktop-model';
import { jsonBlock } from '../layout';
import type { Loaded } from './loaded';
import { AdminTable, type Column } from './table';

/** What PUT /admin/templates/{id} needs to bring a retired template back as it was. */
function inputOf(t: Template): TemplateInput {
  return {
    name: t.name,
    os: t.os,
    description: t.description,
    backend: t.backend,
    protocol: t.protocol,
    defaultPlan: t.defaultPlan,
    gpuSlots: t.gpuSlots,
    idleTimeoutMinutes: t.idleTimeoutMinutes,
    maxSessionMinutes: t.maxSessionMinutes,
    storageGb: t.storageGb,
    image: t.image,
    vmTemplate: t.vmTemplate,
    snapshotSchedule: t.snapshotSchedule,
  };
}

const COLUMNS: Column<Template>[] = [
  {
    header: 'Template',
    rowHeader: true,
    cell: (t) => (
      <>
        {t.name}
        <br />
        <code>{t.id}</code>
      </>
    ),
  },
  { header: 'System', cell: (t) => t.os },
  { header: 'Runs on', cell: (t) => `${t.backend} (${t.protocol})` },
  { header: 'GPU slots', cell: (t) => t.gpuSlots || 'none' },
  { header: 'Plan', cell: (t) => planText(t.defaultPlan) },
  { header: 'Idle stop', cell: (t) => `${t.idleTimeoutMinutes} min` },
  {
    header: 'State',
    cell: (t) =>
      t.retiredAt ? (
        <span class="badge" data-tone="idle">
          Retired
        </span>
      ) : (
        <span class="badge" data-tone="ok">
          Active
        </span>
      ),
  },
  {
    header: 'Actions',
    hideHeader: true,
    class: 'row-actions',
    cell: (t) =>
      t.retiredAt ? (
        <>
          <button type="button" class="button-quiet small" data-action="restore-template" aria-label={`Restore ${t.name}`}>
            Restore
          </button>
          <script type="application/json" data-template-input="">
            {jsonBlock(inputOf(t))}
          </script>
        </>
      ) : (
        <button type="button" class="button-danger small" data-action="retire-template" aria-label={`Retire ${t.name}`}>
          Retire
        </button>
      ),
  },
];

export const TemplatesView: FC<{ templates: Loaded<Template[]> }> = ({ templates }) => (
  <AdminTable
    label="Templates"
    columns={COLUMNS}
    rows={templates}
    empty="No templates yet. Create them with POST /api/v1/admin/templates."
    rowAttributes={(t) => ({ 'data-template-id': t.id })}
  />
);
