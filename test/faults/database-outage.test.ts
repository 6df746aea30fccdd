/**
 * A Postgres outage in the middle of everyday traffic (issue 11): desktops are created,
 * stopped and started, idle clocks warn and stop them, and webhooks are subscribed, while
 * the database is down for FAULTS_SCALE's `dbOutageMs` (5 minutes in `npm run
 * test:faults`, less in `npm test`). Afterwards every audit record and every webhook
 * event must be there exactly once, the bridge must have stayed connected throughout,
 * and nothing may be stuck: every desktop settled, its Postgres row and transitions
 * caught up, no command in flight.
 *
 * Verdicts come from Postgres itself (read directly) and from what a local receiver got,
 * never from the edge's word.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Pool } from '@neondatabase/serverless';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodePool } from '../../scripts/lib/database';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { Desktop, DesktopStatus, TransitionRecord } from '../../src/schemas/desktop';
import type { DesktopEvent } from '../../src/schemas/events';
import { IN_PROGRESS } from './support/edge-client';
import { table } from './support/report';
import { faultScale } from './support/scale';
import { setTimeout as sleep } from 'node:timers/promises';

const scale = faultScale();

interface Received {
  /** The receiver path: `admin` or a user id. */
  subscriber: string;
  webhookId: string;
  event: DesktopEvent;
}

/** An answer the edge gave, with the request id it audits under. */
interface Call {
  method: string;
  path: string;
  status: number;
  requestId: string;
  audited: boolean;
  duringOutage: boolean;
}

interface Tracked {
  id: string;
  user: string;
  /** Its idle clock is 1 minute: the system warns and stops it, not its user. */
  idle: boolean;
  status: DesktopStatus;
}

let stack: Stack;
let receiver: Server;
let hookBase: string;
const received: Received[] = [];
const calls: Call[] = [];
let outage = false;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      received.push({
        subscriber: decodeURIComponent((req.url ?? '').split('/').pop() ?? ''),
        webhookId: String(req.headers['x-webhook-id']),
        event: JSON.parse(body) as DesktopEvent,
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  stack = await startStack({
    persistentDatabase: true,
    simDelayScale: 0.1,
    edgeVars: {
      LEASE_SECONDS: '6',
      HEARTBEAT_SECONDS: '2',
      // The receiver is local: http and loopback, allowed by this configuration only.
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_PRIVATE_TARGETS: '127.0.0.0/8',
      WEBHOOK_RETRY_BASE_SECONDS: '1',
    },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  receiver?.close();
});

const tokens = new Map<string, Promise<string>>();
const tokenOf = (user: string) => {
  let t = tokens.get(user);
  if (!t) {
    t = stack.token(user, user.startsWith('dbo-admin') ? ['admin'] : []);
    tokens.set(user, t);
  }
  return t;
};

/** Which requests the edge audits (src/middleware/audit.ts). */
const AUDITED = [
  /^POST \/api\/v1\/desktops$/,
  /^DELETE \/api\/v1\/desktops\/[^/]+$/,
  /^POST \/api\/v1\/desktops\/[^/]+\/(start|stop|keepalive)$/,
  /^GET \/api\/v1\/desktops\/[^/]+\/connect$/,
  /^(POST|DELETE) \/api\/v1\/webhooks/,
];

async function call<T>(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; data: T }> {
  const res = await fetch(`${stack.edgeUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${await tokenOf(user)}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json()) as { data: T };
  const line = `${method} ${path}`;
  calls.push({
    method,
    path,
    status: res.status,
    requestId: res.headers.get('x-request-id') ?? '',
    audited: AUDITED.some((re) => re.test(line)),
    duringOutage: outage,
  });
  return { status: res.status, data: json.data };
}

/** The site's bridge as its hub sees it: connected or not, and since when (a reconnection changes it). */
async function bridgeLink(): Promise<{ bridge: string; connectedAt: string | null }> {
  const res = await call<{ sites: { id: string; bridge: string; connectedAt: string | null }[] }>(
    'dbo-admin',
    'GET',
    '/api/v1/admin/health',
  );
  const site = res.data.sites.find((s) => s.id === stack.siteId);
  return { bridge: site?.bridge ?? 'unknown', connectedAt: site?.connectedAt ?? null };
}

async function refresh(desktops: Tracked[]): Promise<void> {
  await Promise.all(
    desktops.map(async (d) => {
      const res = await call<{ status: DesktopStatus }>(d.user, 'GET', `/api/v1/desktops/${d.id}/status`);
      if (res.status === 200) d.status = res.data.status;
    }),
  );
}

async function settle(desktops: Tracked[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh(desktops);
    if (desktops.every((d) => !IN_PROGRESS.has(d.status)) || Date.now() > deadline) return;
    await sleep(500);
  }
}

async function create(desktops: Tracked[], user: string, idle: boolean): Promise<void> {
  const res = await call<Desktop>(user, 'POST', '/api/v1/desktops', { plan: 'BASIC', ...(idle ? { idleTimeoutMinutes: 1 } : {}) });
  if (res.status !== 202) throw new Error(`create for ${user} answered ${res.status}`);
  desktops.push({ id: res.data.id, user, idle, status: res.data.status });
}

describe(`a database outage of ${scale.dbOutageMs / 1000} s (${scale.name})`, () => {
  it(
    'loses no audit record and no webhook event, keeps the bridge connected, and leaves nothing stuck',
    async () => {
      const desktops: Tracked[] = [];
      const watched = ['dbo-w0', 'dbo-w1', 'dbo-w2'];
      // Subscriptions: an admin's (every desktop, every event) and three users' own.
      expect((await call('dbo-admin', 'POST', '/api/v1/webhooks', { url: `${hookBase}/admin` })).status).toBe(201);
      for (const user of watched) expect((await call(user, 'POST', '/api/v1/webhooks', { url: `${hookBase}/${user}` })).status).toBe(201);
      for (const user of watched) await create(desktops, user, false);
      for (let i = 0; i < 3; i++) await create(desktops, `dbo-a${i}`, false);
      await settle(desktops, 60_000);
      expect(desktops.map((d) => d.status)).toEqual(desktops.map(() => 'RUNNING'));
      const before = await bridgeLink();
      expect(before.bridge).toBe('connected');

      // ---- the outage ----
      await stack.stopDatabase();
      outage = true;
      const outageStarted = Date.now();
      const samples: { bridge: string; connectedAt: string | null }[] = [];
      let round = 0;
      const actions = { creates: 0, stops: 0, starts: 0, keepalives: 0 };
      while (Date.now() - outageStarted < scale.dbOutageMs) {
        const roundStarted = Date.now();
        await refresh(desktops);
        await create(desktops, `dbo-o${round}`, round % 2 === 0);
        actions.creates++;
        const running = desktops.filter((d) => d.status === 'RUNNING' && !d.idle);
        const stopped = desktops.filter((d) => d.status === 'STOPPED');
        const toStop = running[round % Math.max(1, running.length)];
        if (toStop && (await call(toStop.user, 'POST', `/api/v1/desktops/${toStop.id}/stop`)).status === 202) actions.stops++;
        const toStart = stopped[0];
        if (toStart && (await call(toStart.user, 'POST', `/api/v1/desktops/${toStart.id}/start`)).status === 202) actions.starts++;
        const toKeep = running.find((d) => d !== toStop);
        if (toKeep && (await call(toKeep.user, 'POST', `/api/v1/desktops/${toKeep.id}/keepalive`, {})).status === 200) actions.keepalives++;
        samples.push(await bridgeLink());
        round++;
        await sleep(Math.max(0, scale.dbOutageRoundMs - (Date.now() - roundStarted)));
      }
      const outageMs = Date.now() - outageStarted;
      await settle(desktops, 60_000);
      const idleStopsDuringOutage = desktops.filter((d) => d.idle && d.status === 'STOPPED').length;
      await stack.startDatabase();
      outage = false;
      const back = Date.now();

      // ---- catching up: everything the edge recorded reaches Postgres and the receivers ----
      const pool = nodePool(stack.db);
      try {
        let verdict = await judge(pool, desktops);
        while (verdict.pending > 0 && Date.now() - back < 6 * 60_000) {
          await sleep(2_000);
          verdict = await judge(pool, desktops);
        }
        const caughtUpMs = Date.now() - back;
        const after = await bridgeLink();
        const reconnects = new Set([before, ...samples, after].map((s) => s.connectedAt)).size - 1;
        const offline = samples.filter((s) => s.bridge !== 'connected').length;
        const inFlight = await commandsInFlight();

        console.log(
          [
            '',
            table(
              `Database outage (${scale.name}): Postgres down ${(outageMs / 1000).toFixed(0)} s during traffic`,
              ['', 'value'],
              [
                ['desktops', desktops.length],
                ['  created during the outage', actions.creates],
                ['  stopped / started during the outage', `${actions.stops} / ${actions.starts}`],
                ['  keepalives during the outage', actions.keepalives],
                ['  idle warnings delivered (all)', verdict.warnings],
                ['  idle stops by the system during the outage', idleStopsDuringOutage],
                ['audit records expected (API requests + system transitions)', verdict.auditExpected],
                [
                  '  found once / missing / duplicated',
                  `${verdict.auditOnce} / ${verdict.auditMissing.length} / ${verdict.auditDuplicated}`,
                ],
                ['webhook events expected (status changes × subscribers)', verdict.eventsExpected],
                [
                  '  delivered once / missing / duplicated',
                  `${verdict.eventsOnce} / ${verdict.eventsMissing.length} / ${verdict.eventsDuplicated}`,
                ],
                ['bridge: samples offline / reconnections', `${offline} of ${samples.length} / ${reconnects}`],
                ['desktops stuck in progress', verdict.stuck.length],
                ['Postgres rows behind their desktop', verdict.rowsBehind.length],
                ['commands in flight at the end', inFlight],
                ['caught up after the database was back', `${(caughtUpMs / 1000).toFixed(1)} s`],
              ],
            ),
            ...verdict.auditMissing.slice(0, 10).map((m) => `  audit missing: ${m}`),
            ...verdict.eventsMissing.slice(0, 10).map((m) => `  event missing: ${m}`),
            ...verdict.rowsBehind.slice(0, 10).map((m) => `  row behind: ${m}`),
          ].join('\n'),
        );

        expect(outageMs).toBeGreaterThanOrEqual(scale.dbOutageMs);
        expect(actions.creates).toBeGreaterThan(0);
        expect(actions.stops).toBeGreaterThan(0);
        expect(verdict.warnings).toBeGreaterThan(0);
        expect(verdict.auditMissing).toEqual([]);
        expect(verdict.auditDuplicated).toBe(0);
        expect(verdict.eventsMissing).toEqual([]);
        expect(verdict.eventsDuplicated).toBe(0);
        expect(offline).toBe(0);
        expect(reconnects).toBe(0);
        expect(verdict.stuck).toEqual([]);
        expect(verdict.rowsBehind).toEqual([]);
        expect(inFlight).toBe(0);
      } finally {
        await pool.end();
      }
    },
    scale.dbOutageMs + 15 * 60_000,
  );
});

async function commandsInFlight(): Promise<number> {
  const res = await call<{ sites: { id: string; commandsInFlight: number }[] }>('dbo-admin', 'GET', '/api/v1/admin/health');
  return res.data.sites.find((s) => s.id === stack.siteId)?.commandsInFlight ?? -1;
}

interface Verdict {
  /** Things not there yet; 0 once everything has caught up. */
  pending: number;
  auditExpected: number;
  auditOnce: number;
  auditMissing: string[];
  auditDuplicated: number;
  eventsExpected: number;
  eventsOnce: number;
  eventsMissing: string[];
  eventsDuplicated: number;
  warnings: number;
  stuck: string[];
  rowsBehind: string[];
}

/** Compares what the edge's desktops say happened with what Postgres and the receiver hold. */
async function judge(pool: Pool, desktops: Tracked[]): Promise<Verdict> {
  await refresh(desktops);
  const history = new Map<string, TransitionRecord[]>();
  for (const d of desktops) history.set(d.id, (await call<TransitionRecord[]>(d.user, 'GET', `/api/v1/desktops/${d.id}/events`)).data);

  // Audit: every audited API request once (by its request id), every system transition once.
  const requestIds = calls.filter((c) => c.audited && c.requestId).map((c) => c.requestId);
  const audited = await pool.query<{ request_id: string; n: number }>(
    'SELECT request_id, count(*)::int AS n FROM audit_log WHERE request_id = ANY($1) GROUP BY request_id',
    [requestIds],
  );
  const auditCount = new Map(audited.rows.map((r) => [r.request_id, Number(r.n)]));
  const auditMissing = requestIds
    .filter((id) => !auditCount.has(id))
    .map((id) => {
      const c = calls.find((x) => x.requestId === id);
      return `${c?.method} ${c?.path} → ${c?.status}${c?.duringOutage ? ' (during the outage)' : ''}`;
    });
  const ids = desktops.map((d) => d.id);
  const system = await pool.query<{ target: string; n: number }>(
    `SELECT target, count(*)::int AS n FROM audit_log WHERE target = ANY($1) AND actor LIKE 'system:%' GROUP BY target`,
    [ids],
  );
  const systemCount = new Map(system.rows.map((r) => [r.target, Number(r.n)]));
  let systemExpected = 0;
  for (const d of desktops) {
    const want = (history.get(d.id) ?? []).filter((t) => t.actor.startsWith('system:') && t.from !== t.to).length;
    systemExpected += want;
    const got = systemCount.get(d.id) ?? 0;
    if (got < want) auditMissing.push(`${d.id}: ${want - got} system transition(s)`);
  }
  const auditDuplicated =
    [...auditCount.values()].filter((n) => n > 1).length +
    desktops.filter(
      (d) =>
        (systemCount.get(d.id) ?? 0) > (history.get(d.id) ?? []).filter((t) => t.actor.startsWith('system:') && t.from !== t.to).length,
    ).length;

  // Webhooks: every status change of every desktop to the admin's subscription, and of the
  // watched users' desktops to theirs, once each (by X-Webhook-Id, and by transition).
  const eventsMissing: string[] = [];
  let eventsExpected = 0;
  let eventsOnce = 0;
  let eventsDuplicated = 0;
  for (const subscriber of ['admin', 'dbo-w0', 'dbo-w1', 'dbo-w2']) {
    const mine = received.filter((r) => r.subscriber === subscriber);
    const byWebhookId = new Map<string, number>();
    for (const r of mine) byWebhookId.set(r.webhookId, (byWebhookId.get(r.webhookId) ?? 0) + 1);
    eventsDuplicated += [...byWebhookId.values()].filter((n) => n > 1).length;
    for (const d of desktops) {
      if (subscriber !== 'admin' && d.user !== subscriber) continue;
      for (const t of (history.get(d.id) ?? []).filter((x) => x.from !== x.to)) {
        eventsExpected++;
        const got = mine.filter(
          (r) => r.event.type === 'desktop.status_changed' && r.event.data.desktop.id === d.id && r.event.data.transition?.seq === t.seq,
        );
        if (got.length === 0) eventsMissing.push(`${subscriber}: ${d.id} seq ${t.seq} (${t.from} → ${t.to})`);
        else if (got.length === 1) eventsOnce++;
        else eventsDuplicated++;
      }
    }
  }
  const warnings = received.filter((r) => r.subscriber === 'admin' && r.event.type === 'desktop.idle_warning').length;
  // An idle stop comes after its warning.
  for (const d of desktops) {
    const idleStopped = (history.get(d.id) ?? []).some((t) => t.event === 'idle_timeout');
    const warned = received.some(
      (r) => r.subscriber === 'admin' && r.event.type === 'desktop.idle_warning' && r.event.data.desktop.id === d.id,
    );
    if (idleStopped && !warned) eventsMissing.push(`admin: ${d.id} idle warning`);
  }

  // Nothing stuck: every desktop settled, and its Postgres row and transitions caught up.
  const stuck = desktops.filter((d) => IN_PROGRESS.has(d.status)).map((d) => `${d.id} ${d.status}`);
  const rows = await pool.query<{ id: string; status: string }>('SELECT id, status FROM desktops WHERE id = ANY($1)', [ids]);
  const events = await pool.query<{ desktop_id: string; n: number }>(
    'SELECT desktop_id, count(*)::int AS n FROM desktop_events WHERE desktop_id = ANY($1) GROUP BY desktop_id',
    [ids],
  );
  const rowStatus = new Map(rows.rows.map((r) => [r.id, r.status]));
  const eventCount = new Map(events.rows.map((r) => [r.desktop_id, Number(r.n)]));
  const rowsBehind = desktops
    .filter((d) => rowStatus.get(d.id) !== d.status || eventCount.get(d.id) !== history.get(d.id)?.length)
    .map(
      (d) =>
        `${d.id}: ${d.status} with ${history.get(d.id)?.length} transitions; Postgres ${rowStatus.get(d.id)} with ${eventCount.get(d.id) ?? 0}`,
    );

  return {
    pending: auditMissing.length + eventsMissing.length + stuck.length + rowsBehind.length,
    auditExpected: requestIds.length + systemExpected,
    auditOnce: requestIds.filter((id) => auditCount.get(id) === 1).length + [...systemCount.values()].reduce((a, b) => a + b, 0),
    auditMissing,
    auditDuplicated,
    eventsExpected,
    eventsOnce,
    eventsMissing,
    eventsDuplicated,
    warnings,
    stuck,
    rowsBehind,
  };
}
