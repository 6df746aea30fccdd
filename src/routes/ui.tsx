/**
 * The dashboard, served by the Worker itself (no CDN, no framework bundle): server-rendered
 * pages (Hono JSX) that read the API in-process with the visitor's session, one script and
 * one stylesheet.
 *
 *  GET /                  launcher: your desktops (live) and the templates you may launch
 *  GET /desktops/{id}/share|snapshots   a desktop's share links, its snapshots
 *  GET /admin[/section]   admin console: overview, sessions, users, templates, audit, webhooks
 *  GET /ui/dashboard.<hash>.js|css   the script and the stylesheet
 *  GET /embed/cloud-desktop[.<hash>].js   the <cloud-desktop> element, for other sites' pages
 *  + the sign-in routes of ui-auth.ts
 *
 * A request with `X-Fragment: main` gets only the page's <main> content: the script
 * refreshes a page after an action without losing its place.
 */
import type { Context } from 'hono';
import type { Session } from '../auth/session-token';
import { Hono } from 'hono';
import type { Child } from 'hono/jsx';
import { notFound } from '../errors';
import { type DashboardEnv, loadSession } from '../middleware/session';
import type { DesktopMetrics } from '../schemas/bridge-protocol';
import { DESKTOP_STATUSES, type Desktop, type DesktopStatus } from '../schemas/desktop';
import type { Template } from '../schemas/template';
import { type AuditFilters, type AuditRecord, AuditView } from '../ui/admin/audit';
import { type GpuOccupancy, type Overview, OverviewView } from '../ui/admin/overview';
import { type SessionFilters, SessionsView } from '../ui/admin/sessions';
import { ADMIN_SECTIONS, type AdminSection, AdminMain, AdminPage } from '../ui/admin/shell';
import { TemplatesView } from '../ui/admin/templates';
import { PoolsView } from '../ui/admin/pools';
import type { Pool, PoolView } from '../schemas/pool';
import { type Quota, type UserSummary, UsersView } from '../ui/admin/users';
import { type Delivery, type Webhook, WebhooksView } from '../ui/admin/webhooks';
import { type ApiFetch, ApiProblem, type ApiGet, type Page, apiReader } from '../ui/api';
import { ASSETS, EMBED, lookupAsset, lookupEmbed } from '../ui/assets';
import { pageHeaders } from '../ui/csp';
import { uiModel } from '../ui/desktop-model';
import { LauncherMain, LauncherPage } from '../ui/launcher-page';
import { ShareMain, SharePage } from '../ui/share-page';
import { SnapshotsMain, SnapshotsPage } from '../ui/snapshots-page';
import type { DesktopSnapshotList } from '../schemas/bridge-protocol';
import type { ShareLink } from '../schemas/share-link';
import { Alert, Layout } from '../ui/layout';
import { authRoutes } from './ui-auth';

/** Paths of the dashboard, as opposed to the API (/api/…) and /healthz. */
export const isDashboardPath = (path: string) => !path.startsWith('/api/') && path !== '/healthz';

type Ctx = Context<DashboardEnv>;

/** A page, or only its <main> content when the script asks for a fragment. */
function respond(c: Ctx, full: Child, main: Child, status: 200 | 403 | 404 = 200) {
  pageHeaders(c);
  c.header('Vary', 'X-Fragment, Cookie');
  const body = c.req.header('x-fragment') === 'main' ? main : full;
  // c.html takes an element, not any Child: the fragment makes one.
  // biome-ignore lint/complexity/noUselessFragments: see above
  return c.html(<>{body}</>, status);
}

/** An admin page the visitor cannot have: the alert alone for the script's fragment requests, in a page otherwise. */
function refuseAdmin(c: Ctx, s: Session, title: string, alert: Child, status: 403 | 404) {
  const full = (
    <Layout title={title} session={s} section="admin">
      <h1>{title}</h1>
      {alert}
    </Layout>
  );
  return respond(c, full, alert, status);
}

/** Signed out: pages send the browser to sign in (and back); the script's fragment requests learn it from a 401. */
function signedOut(c: Ctx) {
  if (c.req.header('x-fragment')) return c.text('Your session has ended; sign in again.', 401);
  const url = new URL(c.req.url);
  const next = url.pathname === '/' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`;
  return c.redirect(`/sign-in${next}`, 303);
}

/** `{ problem }` instead of a thrown refusal, so one failing part does not take the page down. */
async function load<T>(p: Promise<T>): Promise<T | { problem: string }> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiProblem) return { problem: err.message };
    throw err;
  }
}

const q = encodeURIComponent;

export function dashboardRoutes(fetchApi: ApiFetch) {
  const ui = new Hono<DashboardEnv>();
  // Listed paths only: a '*' here would run on every API request of the app this is mounted in.
  ui.use('/', loadSession);
  ui.use('/admin', loadSession);
  ui.use('/admin/*', loadSession);
  ui.use('/desktops/*', loadSession);

  ui.get('/ui/:file', (c) => {
    const hit = lookupAsset(c.req.param('file'));
    if (!hit) throw notFound('Asset');
    const asset = ASSETS[hit.kind];
    // An old hash (a page rendered before a deploy) still gets today's file, just not cached for long.
    const cache = hit.current ? 'public, max-age=31536000, immutable' : 'no-cache';
    return c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': cache });
  });

  ui.get('/embed/:file', (c) => {
    const hit = lookupEmbed(c.req.param('file'));
    if (!hit) throw notFound('Script');
    const etag = `"${EMBED.hash}"`;
    const headers = {
      'Content-Type': EMBED.type,
      // A pinned version never changes; the unversioned URL follows deploys within minutes.
      'Cache-Control': hit.versioned && hit.current ? 'public, max-age=31536000, immutable' : 'public, max-age=300',
      ETag: etag,
      // Any site may load it (as a module script: a CORS request, without credentials).
      'Access-Control-Allow-Origin': '*',
      'Cross-Origin-Resource-Policy': 'cross-origin',
    };
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
    return c.body(EMBED.body, 200, headers);
  });

  ui.get('/', async (c) => {
    const s = c.var.session;
    if (!s) return signedOut(c);
    const get = apiReader(c, fetchApi);
    const [templates, desktops] = await Promise.all([
      load(get<Template[]>('/api/v1/templates')),
      // The user's list is read from the Durable Objects: a desktop launched a moment ago is on it.
      load(get<Desktop[]>(`/api/v1/desktops/user/${q(s.sub)}`)),
    ]);
    const props = {
      templates: 'problem' in templates ? templates.problem : templates,
      desktops: 'problem' in desktops ? desktops.problem : desktops,
    };
    return respond(c, <LauncherPage session={s} model={uiModel(c.var.cfg)} {...props} />, <LauncherMain {...props} />);
  });

  /** A desktop's own page: the desktop, or the 404 page saying there is no such desktop (or not yours). */
  const desktopPage = async (c: Ctx, s: Session, render: (desktop: Desktop, get: ApiGet) => Promise<Response>) => {
    const get = apiReader(c, fetchApi);
    const desktop = await load(get<Desktop>(`/api/v1/desktops/${q(c.req.param('id') ?? '')}`));
    if (!('problem' in desktop)) return render(desktop, get);
    const alert = (
      <Alert tone="error" title="No such desktop">
        {desktop.problem}
      </Alert>
    );
    const full = (
      <Layout title="Not found" session={s} section="desktops">
        <h1>Not found</h1>
        {alert}
      </Layout>
    );
    return respond(c, full, alert, 404);
  };

  ui.get('/desktops/:id/share', async (c) => {
    const s = c.var.session;
    if (!s) return signedOut(c);
    return desktopPage(c, s, async (desktop, get) => {
      const id = desktop.id;
      const links = await load(get<ShareLink[]>(`/api/v1/desktops/${q(id)}/share-links`));
      const props = { desktop, links: 'problem' in links ? links.problem : links };
      return respond(c, <SharePage session={s} {...props} />, <ShareMain {...props} />);
    });
  });

  ui.get('/desktops/:id/snapshots', async (c) => {
    const s = c.var.session;
    if (!s) return signedOut(c);
    return desktopPage(c, s, async (desktop, get) => {
      // A WebRTC desktop has no VM: the page says why, and the API (which would refuse) is not asked.
      const list =
        desktop.backend === 'selkies' ? null : await load(get<DesktopSnapshotList>(`/api/v1/desktops/${q(desktop.id)}/snapshots`));
      const props = { desktop, list };
      return respond(c, <SnapshotsPage session={s} model={uiModel(c.var.cfg)} {...props} />, <SnapshotsMain {...props} />);
    });
  });

  const admin = async (c: Ctx, section: string) => {
    const s = c.var.session;
    if (!s) return signedOut(c);
    if (!s.roles.includes('admin')) {
      const body = (
        <Alert tone="error" title="The admin console is for administrators">
          Your account does not have the admin role. <a href="/">Back to your desktops</a>.
        </Alert>
      );
      return refuseAdmin(c, s, 'Not allowed', body, 403);
    }
    if (!(section in ADMIN_SECTIONS)) {
      return refuseAdmin(c, s, 'Not found', <Alert tone="error" title={`There is no admin page called “${section}”.`} />, 404);
    }
    const which = section as AdminSection;
    const content = await adminContent(c, which, apiReader(c, fetchApi));
    return respond(
      c,
      <AdminPage session={s} model={uiModel(c.var.cfg)} section={which}>
        {content}
      </AdminPage>,
      <AdminMain section={which}>{content}</AdminMain>,
    );
  };
  ui.get('/admin', (c) => admin(c, 'overview'));
  ui.get('/admin/:section', (c) => admin(c, c.req.param('section')));

  ui.route('/', authRoutes);
  return ui;
}

/** `YYYY-MM-DDTHH:MM` from a datetime-local field, read as UTC, as the API's ISO time; anything else is dropped. */
const utcFromLocal = (v: string) => (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v) ? `${v}:00Z` : '');

function pageNumber(v: string | undefined): number {
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 && n <= 100_000 ? n : 1;
}

async function adminContent(c: Ctx, section: AdminSection, get: ApiGet): Promise<Child> {
  const query = c.req.query();
  switch (section) {
    case 'overview': {
      const [overview, gpus] = await Promise.all([
        load(get<Overview>('/api/v1/admin/overview')),
        load(get<GpuOccupancy[]>('/api/v1/admin/gpus')),
      ]);
      return <OverviewView overview={overview} gpus={gpus} />;
    }
    case 'sessions': {
      const status = DESKTOP_STATUSES.includes(query.status as DesktopStatus) ? (query.status as DesktopStatus) : '';
      const desktop = /^[a-z0-9]{8,40}$/.test(query.desktop ?? '') ? (query.desktop as string) : '';
      const filters: SessionFilters = { userId: (query.userId ?? '').trim(), status, page: pageNumber(query.page), desktop };
      const params = new URLSearchParams({ page: String(filters.page), pageSize: '25' });
      if (filters.userId) params.set('userId', filters.userId);
      if (filters.status) params.set('status', filters.status);
      const [result, usage] = await Promise.all([
        load(get<Page<Desktop>>(`/api/v1/desktops?${params}`)),
        desktop ? load(get<DesktopMetrics>(`/api/v1/admin/desktops/${q(desktop)}/metrics`)) : Promise.resolve(null),
      ]);
      return <SessionsView filters={filters} result={result} usage={usage} />;
    }
    case 'users': {
      const userId = (query.userId ?? '').trim();
      const lookup = userId ? await load(get<Quota>(`/api/v1/admin/users/${q(userId)}/quota`)) : null;
      const users = await load(get<Page<UserSummary>>('/api/v1/admin/users?pageSize=50'));
      return <UsersView userId={userId} lookup={lookup} users={users} />;
    }
    case 'templates':
      return <TemplatesView templates={await load(get<Template[]>('/api/v1/admin/templates'))} />;
    case 'pools': {
      const views = get<Pool[]>('/api/v1/admin/pools').then((pools) =>
        Promise.all(pools.map((p) => get<PoolView>(`/api/v1/admin/pools/${q(p.id)}`))),
      );
      return <PoolsView pools={await load(views)} />;
    }
    case 'audit': {
      const filters: AuditFilters = {
        actor: (query.actor ?? '').trim(),
        action: (query.action ?? '').trim(),
        target: (query.target ?? '').trim(),
        outcome: (query.outcome ?? '').trim(),
        from: query.from ?? '',
        to: query.to ?? '',
        page: pageNumber(query.page),
      };
      const params = new URLSearchParams({ page: String(filters.page), pageSize: '50' });
      for (const k of ['actor', 'action', 'target', 'outcome'] as const) if (filters[k]) params.set(k, filters[k]);
      if (utcFromLocal(filters.from)) params.set('from', utcFromLocal(filters.from));
      if (utcFromLocal(filters.to)) params.set('to', utcFromLocal(filters.to));
      const result = await load(get<Page<AuditRecord>>(`/api/v1/admin/audit?${params}`));
      return <AuditView filters={filters} result={result} />;
    }
    case 'webhooks': {
      const id = (query.id ?? '').trim();
      const [subscriptions, selected] = await Promise.all([
        load(get<Webhook[]>('/api/v1/webhooks')),
        id
          ? load(
              Promise.all([
                get<Webhook>(`/api/v1/webhooks/${q(id)}`),
                get<Delivery[]>(`/api/v1/webhooks/${q(id)}/deliveries?limit=100`),
              ]).then(([webhook, deliveries]) => ({ webhook, deliveries })),
            )
          : Promise.resolve(null),
      ]);
      return <WebhooksView id={id} subscriptions={subscriptions} selected={selected} />;
    }
  }
}
