/**
 * The audit trail of the API: every lifecycle action (create, start, stop, delete,
 * snapshot, snapshot delete, restore, snapshot schedule, connect, keepalive, minting a desktop token) and every admin or subscription change is recorded with actor,
 * role, action, target, source IP, request id, time and outcome (the HTTP status, so
 * refused attempts are audited too). Records travel through the events queue to
 * Postgres, so a slow or absent database never delays or fails the request.
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-env';
import { desktopScopeOf } from '../auth/desktop-token';
import { isAdmin, isService } from '../auth/jwt';
import { randomId } from '../lib/ids';
import type { AuditRecord, EventsMessage } from '../schemas/jobs';
import { loggablePath } from './errors';
import { clientKey } from './rate-limit';

/** Which requests are actions worth auditing, and what to call them. */
function actionOf(method: string, path: string): { action: string; target: string | null } | null {
  // A guest opening a share link: anonymous, the route names the desktop and link.
  if (path === '/api/v1/share') return method === 'POST' ? { action: 'share_link.redeem', target: null } : null;
  const m = /^\/api\/v1\/(desktops|admin|webhooks)(?:\/([^/]+))?(?:\/([^/]+))?(?:\/([^/]+))?/.exec(path);
  if (!m) return null;
  const [, area, a, b, c] = m;
  if (area === 'desktops') {
    if (method === 'POST' && !a) return { action: 'desktop.create', target: null };
    if (method === 'DELETE' && a && !b) return { action: 'desktop.delete', target: a };
    if (method === 'POST' && a && b && ['start', 'stop', 'rebuild', 'keepalive', 'embed-token'].includes(b))
      return { action: `desktop.${b}`, target: a };
    if (method === 'GET' && a && b === 'connect') return { action: 'desktop.connect', target: a };
    if (a && b === 'snapshots' && method === 'POST' && !c) return { action: 'desktop.snapshot', target: a };
    if (a && b === 'snapshots' && method === 'DELETE' && c) return { action: 'desktop.snapshot_delete', target: a };
    if (a && b === 'snapshots' && method === 'POST' && c && path.endsWith('/restore')) return { action: 'desktop.restore', target: a };
    if (a && b === 'snapshot-schedule' && (method === 'PUT' || method === 'DELETE'))
      return { action: method === 'PUT' ? 'desktop.snapshot_schedule' : 'desktop.snapshot_schedule_clear', target: a };
    if (a && b === 'share-links' && (method === 'POST' || method === 'DELETE'))
      return { action: method === 'POST' ? 'share_link.create' : 'share_link.revoke', target: a };
    return null;
  }
  if (method === 'GET' || method === 'HEAD') return null;
  if (area === 'admin')
    return {
      action: `admin.${[a, b === undefined ? undefined : '*', c].filter(Boolean).join('.')}.${method.toLowerCase()}`,
      target: b ?? null,
    };
  return { action: `webhook.${method === 'POST' ? 'create' : 'delete'}`, target: a ?? null };
}

export const audit = createMiddleware<AppEnv>(async (c, next) => {
  const what = actionOf(c.req.method, c.req.path);
  if (!what) return next();
  c.set('audited', true);
  await next();
  c.executionCtx.waitUntil(record(c, what));
});

/**
 * Refusals are audited too: every 401 (no or a bad token, a bad site key) and every 429,
 * wherever in the chain they happen (so this goes before authentication and the limits).
 * A flood of them must not become a flood of records: RATE_LIMIT_AUDIT caps them per
 * client address (20 per 10 s), which still shows who is knocking and how.
 */
export const auditRefusals = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const status = c.res.status;
  if ((status !== 401 && status !== 429) || c.get('audited')) return;
  const raw = c.req.header('cf-connecting-ip');
  const key = clientKey(raw) ?? c.get('principal')?.sub ?? 'no-address';
  const exempt = raw !== undefined && c.var.cfg.RATE_LIMIT_EXEMPT_IPS.has(raw.trim());
  const work = async () => {
    if (!exempt) {
      const allowed = await c.env.RATE_LIMIT_AUDIT.limit({ key }).then(
        (r) => r.success,
        () => true,
      );
      if (!allowed) return;
    }
    const action = status === 401 ? 'auth.refused' : 'rate_limited';
    await record(c, { action, target: `${c.req.method} ${loggablePath(c.req.path)}` });
  };
  c.executionCtx.waitUntil(work());
});

/** Targets come from the URL: keep them printable and short (Postgres text cannot hold NUL). */
const clean = (s: string | null | undefined) => (s ? s.replace(/\p{Cc}/gu, '').slice(0, 200) : null);

async function record(c: Context<AppEnv>, what: { action: string; target: string | null }): Promise<void> {
  const p = c.get('principal');
  const created = what.action === 'desktop.create' && c.res.status === 202 ? c.res.headers.get('location')?.split('/').pop() : undefined;
  const rec: AuditRecord = {
    id: randomId('au'),
    at: new Date().toISOString(),
    actor: p ? p.sub : 'anonymous',
    // `embed`: the owner, through a desktop token an app minted for its page.
    role: p ? (desktopScopeOf(p) ? 'embed' : isAdmin(p) ? 'admin' : isService(p) ? 'service' : 'user') : 'anonymous',
    action: what.action,
    target: clean(created ?? c.get('auditTarget') ?? what.target),
    sourceIp: clean(c.req.header('cf-connecting-ip')),
    requestId: c.get('requestId') ?? null,
    outcome: String(c.res.status),
    details: c.get('auditDetails') ?? null,
  };
  try {
    await c.env.EVENTS.send({ kind: 'audit', record: rec } satisfies EventsMessage, { contentType: 'json' });
  } catch (err) {
    console.error(JSON.stringify({ msg: 'audit record lost', action: rec.action, requestId: rec.requestId, error: String(err) }));
  }
}
