/**
 * The admin console: overview, sessions, users and quotas, templates, the audit log and
 * webhook deliveries. Each is one server-rendered page whose filters are plain GET forms
 * (they work without the script); actions (start, stop, terminate, quota, retire,
 * restore) go to the API from the script, with the page's CSRF token.
 */
import type { Child, FC } from 'hono/jsx';
import type { z } from 'zod';
import type { Session } from '../auth/session-token';
import type { OverviewOut } from '../routes/admin-insights';
import type { GpuOccupancyOut, QuotaOut, UserSummaryOut } from '../routes/admin';
import type { DeliveryOut, WebhookOut } from '../routes/webhooks';
import { DESKTOP_STATUSES, type Desktop, type DesktopStatus } from '../schemas/desktop';
import type { AuditRecord } from '../schemas/jobs';
import type { Template, TemplateInput } from '../schemas/template';
import type { Page } from './api';
import { actionsFor, planText, tone } from './desktop-model';
import { STATUS_TEXT } from './status-text';
import { memory, millis, plural } from './format';
import { ACTION_LABEL } from './launcher-page';
import { Alert, Layout, TableWrap, Time, jsonBlock } from './layout';
import type { UiModel } from './model-types';

export type Overview = z.infer<typeof OverviewOut>;
export type GpuOccupancy = z.infer<typeof GpuOccupancyOut>;
export type Quota = z.infer<typeof QuotaOut>;
export type UserSummary = z.infer<typeof UserSummaryOut>;
export type { AuditRecord };
export type Webhook = z.infer<typeof WebhookOut>;
export type Delivery = z.infer<typeof DeliveryOut>;

export const ADMIN_SECTIONS = {
  overview: 'Overview',
  sessions: 'Sessions',
  users: 'Users and quotas',
  templates: 'Templates',
  audit: 'Audit log',
  webhooks: 'Webhook deliveries',
} as const;
export type AdminSection = keyof typeof ADMIN_SECTIONS;

/** Data or, when the API refused, its message. */
type Loaded<T> = T | { problem: string };
const failed = <T,>(v: Loaded<T>): v is { problem: string } => typeof v === 'object' && v !== null && 'problem' in v;

const Problem: FC<{ what: string; v: { problem: string } }> = ({ what, v }) => (
  <Alert tone="error" title={`${what} could not be loaded`}>
    {v.problem}
  </Alert>
);

export const AdminPage: FC<{ session: Session; model: UiModel; section: AdminSection; children: Child }> = ({
  session,
  model,
  section,
  children,
}) => (
  <Layout title={ADMIN_SECTIONS[section]} session={session} section="admin" model={model}>
    <AdminMain section={section}>{children}</AdminMain>
  </Layout>
);

export const AdminMain: FC<{ section: AdminSection; children: Child }> = ({ section, children }) => (
  <>
    <h1>Admin · {ADMIN_SECTIONS[section]}</h1>
    <nav aria-label="Admin" class="sub-nav">
      <ul>
        {(Object.keys(ADMIN_SECTIONS) as AdminSection[]).map((s) => (
          <li>
            <a href={s === 'overview' ? '/admin' : `/admin/${s}`} aria-current={s === section ? 'page' : undefined}>
              {ADMIN_SECTIONS[s]}
            </a>
          </li>
        ))}
      </ul>
    </nav>
    {children}
  </>
);

// ---- overview ----

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
            {site.nodes.length === 0 ? (
              <p class="empty">No desktops hold resources here.</p>
            ) : (
              <TableWrap label={`Nodes of ${site.name}`}>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Node</th>
                      <th scope="col">Desktops</th>
                      <th scope="col">vCPU</th>
                      <th scope="col">Memory</th>
                    </tr>
                  </thead>
                  <tbody>
                    {site.nodes.map((n) => (
                      <tr>
                        <th scope="row">{n.node}</th>
                        <td>{n.desktops}</td>
                        <td>{n.cpuCores}</td>
                        <td>{memory(n.memoryMb)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
          </div>
        ))}
      </section>
      <section aria-labelledby="ov-gpu" class="section">
        <h2 id="ov-gpu">GPUs</h2>
        {failed(gpus) ? (
          <Problem what="GPU occupancy" v={gpus} />
        ) : gpus.every((s) => s.gpus.length === 0) ? (
          <p class="empty">No site reports GPUs.</p>
        ) : (
          <TableWrap label="GPU slots per site">
            <table>
              <thead>
                <tr>
                  <th scope="col">Site</th>
                  <th scope="col">GPU</th>
                  <th scope="col">Node</th>
                  <th scope="col">Slots in use</th>
                  <th scope="col">Free</th>
                  <th scope="col">Sessions</th>
                </tr>
              </thead>
              <tbody>
                {gpus.flatMap((s) =>
                  s.gpus.map((g) => (
                    <tr>
                      <td>{s.siteId}</td>
                      <th scope="row">{g.gpuId}</th>
                      <td>{g.node}</td>
                      <td>{`${g.used} of ${g.slots}`}</td>
                      <td>{g.free}</td>
                      <td>{g.sessions.map((x) => `${x.sessionId} (${x.slots})`).join(', ') || '—'}</td>
                    </tr>
                  )),
                )}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
      <section aria-labelledby="ov-idle" class="section">
        <h2 id="ov-idle">Idle stops due in the next hour</h2>
        {o.idleStopsWithinHour.length === 0 ? (
          <p class="empty">None.</p>
        ) : (
          <TableWrap label="Idle stops due">
            <table>
              <thead>
                <tr>
                  <th scope="col">Desktop</th>
                  <th scope="col">User</th>
                  <th scope="col">Stops at</th>
                </tr>
              </thead>
              <tbody>
                {o.idleStopsWithinHour.map((r) => (
                  <tr>
                    <th scope="row">
                      <code>{r.desktopId}</code>
                    </th>
                    <td>{r.userId}</td>
                    <td>
                      <Time iso={r.idleStopAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
      <section aria-labelledby="ov-fail" class="section">
        <h2 id="ov-fail">Failures in the last 24 hours</h2>
        {o.failuresByReason.length === 0 ? (
          <p class="empty">None.</p>
        ) : (
          <TableWrap label="Failures by reason">
            <table>
              <thead>
                <tr>
                  <th scope="col">Reason</th>
                  <th scope="col">Desktops</th>
                </tr>
              </thead>
              <tbody>
                {o.failuresByReason.map((f) => (
                  <tr>
                    <td class="long">{f.reason}</td>
                    <td>{f.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
    </>
  );
};

// ---- sessions ----

export interface SessionFilters {
  userId: string;
  status: DesktopStatus | '';
  page: number;
}

const Pager: FC<{ base: string; params: Record<string, string>; page: number; pageSize: number; total: number; what: string }> = ({
  base,
  params,
  page,
  pageSize,
  total,
  what,
}) => {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const link = (p: number) =>
    `${base}?${new URLSearchParams({ ...Object.fromEntries(Object.entries(params).filter(([, v]) => v)), page: String(p) })}`;
  return (
    <nav class="pager" aria-label={`Pages of ${what}`}>
      <p>{`${plural(total, what.replace(/s$/, ''), what)} · page ${Math.min(page, pages)} of ${pages}`}</p>
      {page > 1 ? (
        <a href={link(page - 1)} rel="prev">
          Previous page
        </a>
      ) : null}
      {page < pages ? (
        <a href={link(page + 1)} rel="next">
          Next page
        </a>
      ) : null}
    </nav>
  );
};

const ROW_ACTIONS = ['start', 'stop', 'terminate'] as const;

export const SessionsView: FC<{ filters: SessionFilters; result: Loaded<Page<Desktop>> }> = ({ filters, result }) => (
  <>
    <search aria-label="Filter sessions">
      <form method="get" action="/admin/sessions" class="filters">
        <div class="field">
          <label for="f-user">User id</label>
          <input id="f-user" name="userId" value={filters.userId} autocomplete="off" />
        </div>
        <div class="field">
          <label for="f-status">Status</label>
          <select id="f-status" name="status">
            <option value="" selected={filters.status === ''}>
              Any (not terminated)
            </option>
            {DESKTOP_STATUSES.map((s) => (
              <option value={s} selected={filters.status === s}>
                {STATUS_TEXT[s]}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="button">
          Apply filters
        </button>
      </form>
    </search>
    {failed(result) ? (
      <Problem what="Sessions" v={result} />
    ) : result.items.length === 0 ? (
      <p class="empty">No sessions match.</p>
    ) : (
      <>
        <TableWrap label="Sessions">
          <table class="sessions">
            <thead>
              <tr>
                <th scope="col">Desktop</th>
                <th scope="col">User</th>
                <th scope="col">Status</th>
                <th scope="col">Plan</th>
                <th scope="col">Template</th>
                <th scope="col">Where</th>
                <th scope="col">Created</th>
                <th scope="col">Idle stop</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {result.items.map((d) => {
                const actions = actionsFor(d.status);
                return (
                  <tr data-desktop-id={d.id} data-status={d.status}>
                    <th scope="row">
                      <span data-field="name">{d.name}</span>
                      <br />
                      <code>{d.id}</code>
                    </th>
                    <td>{d.userId}</td>
                    <td class={d.errorMessage ? 'long' : undefined}>
                      <span class="badge" data-field="status" data-tone={tone(d.status)}>
                        {STATUS_TEXT[d.status]}
                      </span>
                      {d.errorMessage ? <p class="problem small">{d.errorMessage}</p> : null}
                    </td>
                    <td>{planText(d.plan)}</td>
                    <td>{d.templateId ?? '—'}</td>
                    <td>{`${d.siteId}${d.node ? ` / ${d.node}` : ''}`}</td>
                    <td>
                      <Time iso={d.createdAt} />
                    </td>
                    <td>
                      <Time iso={d.idleStopAt} />
                    </td>
                    <td class="row-actions">
                      {ROW_ACTIONS.map((a) => (
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
                      ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
        <Pager
          base="/admin/sessions"
          params={{ userId: filters.userId, status: filters.status }}
          page={result.page}
          pageSize={result.pageSize}
          total={result.total}
          what="sessions"
        />
      </>
    )}
  </>
);

// ---- users and quotas ----

export const UsersView: FC<{ userId: string; lookup: Loaded<Quota> | null; users: Loaded<Page<UserSummary>> }> = ({
  userId,
  lookup,
  users,
}) => (
  <>
    <search aria-label="Find a user">
      <form method="get" action="/admin/users" class="filters">
        <div class="field">
          <label for="u-id">User id</label>
          <input id="u-id" name="userId" value={userId} required autocomplete="off" />
        </div>
        <button type="submit" class="button">
          Show quota
        </button>
      </form>
    </search>
    {lookup === null ? null : failed(lookup) ? (
      <Problem what="The quota" v={lookup} />
    ) : (
      <section aria-labelledby="quota-title" class="section panel">
        <h2 id="quota-title">{`Quota of ${lookup.userId}`}</h2>
        <p data-field="quota-summary">
          {`${plural(lookup.active, 'active desktop')} of at most ${lookup.maxDesktops} (${lookup.custom ? 'set by an admin' : 'the default'}).`}
        </p>
        <form class="inline-form" data-form="quota" data-user-id={lookup.userId}>
          <div class="field">
            <label for="q-max">{`Desktop limit for ${lookup.userId}`}</label>
            <input id="q-max" name="maxDesktops" type="number" min={0} max={1000} step={1} required value={String(lookup.maxDesktops)} />
          </div>
          <button type="submit" class="button">
            Save limit
          </button>
        </form>
      </section>
    )}
    <section aria-labelledby="users-title" class="section">
      <h2 id="users-title">Users</h2>
      {failed(users) ? (
        <Problem what="Users" v={users} />
      ) : users.items.length === 0 ? (
        <p class="empty">No user has launched a desktop or been given a limit yet.</p>
      ) : (
        <TableWrap label="Users, most active first">
          <table>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Active desktops</th>
                <th scope="col">Limit</th>
                <th scope="col">Last launch</th>
                <th scope="col">
                  <span class="visually-hidden">Edit</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.items.map((u) => (
                <tr>
                  <th scope="row">{u.userId}</th>
                  <td>{u.active}</td>
                  <td>{`${u.maxDesktops}${u.custom ? ' (custom)' : ''}`}</td>
                  <td>
                    <Time iso={u.lastCreatedAt} />
                  </td>
                  <td>
                    <a href={`/admin/users?userId=${encodeURIComponent(u.userId)}`} aria-label={`Change the limit of ${u.userId}`}>
                      Change limit
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {!failed(users) && users.total > users.items.length ? (
        <p class="hint">{`The ${users.items.length} most active of ${users.total} users; find anyone else by id above.`}</p>
      ) : null}
    </section>
  </>
);

// ---- templates ----

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
  };
}

export const TemplatesView: FC<{ templates: Loaded<Template[]> }> = ({ templates }) =>
  failed(templates) ? (
    <Problem what="Templates" v={templates} />
  ) : templates.length === 0 ? (
    <p class="empty">No templates yet. Create them with POST /api/v1/admin/templates.</p>
  ) : (
    <TableWrap label="Templates">
      <table>
        <thead>
          <tr>
            <th scope="col">Template</th>
            <th scope="col">System</th>
            <th scope="col">Runs on</th>
            <th scope="col">GPU slots</th>
            <th scope="col">Plan</th>
            <th scope="col">Idle stop</th>
            <th scope="col">State</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {templates.map((t) => (
            <tr data-template-id={t.id}>
              <th scope="row">
                {t.name}
                <br />
                <code>{t.id}</code>
              </th>
              <td>{t.os}</td>
              <td>{`${t.backend} (${t.protocol})`}</td>
              <td>{t.gpuSlots || 'none'}</td>
              <td>{planText(t.defaultPlan)}</td>
              <td>{`${t.idleTimeoutMinutes} min`}</td>
              <td>
                {t.retiredAt ? (
                  <span class="badge" data-tone="idle">
                    Retired
                  </span>
                ) : (
                  <span class="badge" data-tone="ok">
                    Active
                  </span>
                )}
              </td>
              <td class="row-actions">
                {t.retiredAt ? (
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
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );

// ---- audit ----

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

const AUDIT_FIELDS = [
  ['actor', 'Actor (user id)'],
  ['action', 'Action (e.g. desktop.create)'],
  ['target', 'Target (desktop id)'],
  ['outcome', 'Outcome (HTTP status)'],
] as const;

export const AuditView: FC<{ filters: AuditFilters; result: Loaded<Page<AuditRecord>> }> = ({ filters, result }) => (
  <>
    <search aria-label="Filter the audit log">
      <form method="get" action="/admin/audit" class="filters">
        {AUDIT_FIELDS.map(([name, label]) => (
          <div class="field">
            <label for={`a-${name}`}>{label}</label>
            <input id={`a-${name}`} name={name} value={filters[name]} autocomplete="off" />
          </div>
        ))}
        <div class="field">
          <label for="a-from">From (UTC)</label>
          <input id="a-from" name="from" type="datetime-local" value={filters.from} />
        </div>
        <div class="field">
          <label for="a-to">To (UTC)</label>
          <input id="a-to" name="to" type="datetime-local" value={filters.to} />
        </div>
        <button type="submit" class="button">
          Apply filters
        </button>
      </form>
    </search>
    {failed(result) ? (
      <Problem what="The audit log" v={result} />
    ) : result.items.length === 0 ? (
      <p class="empty">No records match.</p>
    ) : (
      <>
        <TableWrap label="Audit records">
          <table class="audit">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Role</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Outcome</th>
                <th scope="col">Source IP</th>
                <th scope="col">Request id</th>
              </tr>
            </thead>
            <tbody>
              {result.items.map((r) => (
                <tr>
                  <td>
                    <Time iso={r.at} />
                  </td>
                  <td>{r.actor}</td>
                  <td>{r.role}</td>
                  <th scope="row">{r.action}</th>
                  <td>{r.target ? <code>{r.target}</code> : '—'}</td>
                  <td>{r.outcome}</td>
                  <td>{r.sourceIp ?? '—'}</td>
                  <td>{r.requestId ? <code>{r.requestId}</code> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
        <Pager
          base="/admin/audit"
          params={{
            actor: filters.actor,
            action: filters.action,
            target: filters.target,
            outcome: filters.outcome,
            from: filters.from,
            to: filters.to,
          }}
          page={result.page}
          pageSize={result.pageSize}
          total={result.total}
          what="records"
        />
      </>
    )}
  </>
);

// ---- webhooks ----

export const WebhooksView: FC<{
  id: string;
  subscriptions: Loaded<Webhook[]>;
  selected: Loaded<{ webhook: Webhook; deliveries: Delivery[] }> | null;
}> = ({ id, subscriptions, selected }) => (
  <>
    <section aria-labelledby="wh-title" class="section">
      <h2 id="wh-title">Your subscriptions</h2>
      <p class="hint">Subscriptions made with an admin token receive the events of every desktop.</p>
      {failed(subscriptions) ? (
        <Problem what="Subscriptions" v={subscriptions} />
      ) : subscriptions.length === 0 ? (
        <p class="empty">No subscriptions. Create one with POST /api/v1/webhooks.</p>
      ) : (
        <TableWrap label="Webhook subscriptions">
          <table>
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">Events</th>
                <th scope="col">Scope</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Deliveries</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {subscriptions.map((w) => (
                <tr>
                  <th scope="row" class="long">
                    {w.url}
                  </th>
                  <td>{w.events.join(', ')}</td>
                  <td>{w.scope}</td>
                  <td>
                    <Time iso={w.createdAt} />
                  </td>
                  <td>
                    <a href={`/admin/webhooks?id=${encodeURIComponent(w.id)}`} aria-label={`Deliveries to ${w.url}`}>
                      Deliveries
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
    <search aria-label="Find a subscription">
      <form method="get" action="/admin/webhooks" class="filters">
        <div class="field">
          <label for="wh-id">Subscription id</label>
          <input id="wh-id" name="id" value={id} required autocomplete="off" />
        </div>
        <button type="submit" class="button">
          Show deliveries
        </button>
      </form>
    </search>
    {selected === null ? null : failed(selected) ? (
      <Problem what="The deliveries" v={selected} />
    ) : (
      <section aria-labelledby="dl-title" class="section">
        <h2 id="dl-title">{`Deliveries to ${selected.webhook.url}`}</h2>
        {selected.deliveries.length === 0 ? (
          <p class="empty">No delivery attempts yet.</p>
        ) : (
          <TableWrap label="Delivery attempts">
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Attempt</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {selected.deliveries.map((d) => (
                  <tr>
                    <td>
                      <Time iso={d.at} />
                    </td>
                    <th scope="row">
                      {d.eventType}
                      <br />
                      <code>{d.eventId}</code>
                    </th>
                    <td>{d.attempt}</td>
                    <td>
                      <span
                        class="badge"
                        data-tone={d.outcome === 'delivered' ? 'ok' : d.outcome === 'dead' || d.outcome === 'refused' ? 'bad' : 'busy'}
                      >
                        {d.outcome}
                      </span>
                    </td>
                    <td>{d.reason?.replaceAll('_', ' ') ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
    )}
  </>
);
