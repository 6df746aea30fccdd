/**
 * `npm run bench`: speed figures of the control plane, printed and written to
 * bench/results.json. The edge runs under workerd without wrangler dev's proxy; the
 * simulators answer with zero delay, so what remains is the control plane's own time.
 *
 *  - 50 concurrent creates: time from POST to RUNNING (p50/p95) and the control-plane
 *    overhead (that time minus the time the simulators report spending).
 *  - GET /desktops/{id}/status: latency p50/p99 and requests/s, beside a bare
 *    hello-world Worker measured in the same run on the same machine (ratios, not
 *    absolute numbers, are what to compare across runs).
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuMsByGroup } from './cpu';
import { measurePageWeight } from './page-weight';
import { runGpuPackingSimulation } from './gpu-packing';
import { ROOT } from '../scripts/lib/local-config';
import { nodeTs, startProcess } from '../scripts/lib/processes';
import { freePort, startStack } from '../scripts/lib/stack';
import { nodePool } from '../scripts/lib/database';
import { SWEEP_LATE_MS } from '../workers/cron/sweep-policy';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { Desktop, TransitionRecord } from '../src/schemas/desktop';
import { setTimeout as sleep } from 'node:timers/promises';

const CREATES = Number(process.env.BENCH_CREATES ?? 50);
const LOAD_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 20;
const SEQUENTIAL = 10;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;

async function load(url: string, headers: Record<string, string> = {}) {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: LOAD_SECONDS, headers });
  return { requestsPerSecond: round(r.requests.average), p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

const stack = await startStack({
  edgeRuntime: 'workerd',
  edgeVars: { WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_PRIVATE_TARGETS: '127.0.0.0/8' },
});

/** A webhook receiver that notes how long each event took from its transition (createdAt) to here. */
async function startReceiver(): Promise<{ url: string; latencies: number[]; close(): void }> {
  const latencies: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      latencies.push(Date.now() - Date.parse((JSON.parse(body) as { createdAt: string }).createdAt));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, latencies, close: () => server.close() };
}

/**
 * The cron sweep's query over 10,000 desktops of which 10 are due: its time and its plan
 * (an index range scan that reads only the due rows).
 */
async function sweepCost() {
  const pool = nodePool(stack.db);
  try {
    const now = Date.now();
    await pool.query(
      `INSERT INTO desktops (id, user_id, name, plan, cpu_cores, memory_mb, protocol, status, site_id, created_by, created_at, updated_at, next_due_at)
       SELECT 'sweep' || g, 'sweep-user', 'sweep', 'BASIC', 2, 2048, 'vnc', 'RUNNING', 'sweep-site', 'user:sweep', now(), now(),
              CASE WHEN g <= 10 THEN $1::timestamptz ELSE $2::timestamptz END
       FROM generate_series(1, 10000) g`,
      [new Date(now - 3_600_000).toISOString(), new Date(now + 3_600_000).toISOString()],
    );
    await pool.query('ANALYZE desktops');
    const cutoff = new Date(now - SWEEP_LATE_MS).toISOString();
    const query = 'SELECT id FROM desktops WHERE next_due_at < $1 ORDER BY next_due_at LIMIT 500';
    const times: number[] = [];
    let due = 0;
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      due = (await pool.query(query, [cutoff])).rowCount ?? 0;
      times.push(performance.now() - t);
    }
    const plan = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${query}`, [cutoff])).rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] };
    const nodes: string[] = [];
    const walk = (n: PlanNode) => {
      nodes.push(`${n['Node Type']}${n['Index Name'] ? ` on ${n['Index Name']}` : ''} (${n['Actual Rows']} rows)`);
      for (const c of n.Plans ?? []) walk(c);
    };
    walk(plan['QUERY PLAN'][0].Plan);
    return { desktops: 10_000, due, queryP50Ms: round(pct(times, 50)), plan: nodes.join(' → ') };
  } finally {
    await pool.end();
  }
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Actual Rows': number;
  Plans?: PlanNode[];
}

/** When the desktop reached RUNNING, from its recorded transitions (polled slowly; the timestamps are exact). */
async function runningAt(id: string, tok: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await fetch(`${stack.edgeUrl}/api/v1/desktops/${id}/events`, { headers: { authorization: `Bearer ${tok}` } });
    const events = ((await r.json()) as { data: TransitionRecord[] }).data;
    const running = events.find((e) => e.to === 'RUNNING');
    if (running) return Date.parse(running.at);
    if (events.some((e) => e.to === 'FAILED')) throw new Error(`desktop ${id} failed`);
    await sleep(100);
  }
  throw new Error(`desktop ${id} not RUNNING after 60 s`);
}

try {
  const simStats = async () =>
    (
      (await (await fetch(`${new URL(stack.proxmoxUrl).origin}/__sim/stats`)).json()) as {
        data: { taskDelayMs: number; taskDelayWallMs: number };
      }
    ).data;
  const before = await simStats();

  const groups = () =>
    [stack.edge, stack.bridge, stack.proxmox, stack.guacamole, stack.dbProcess].map((p) => ({ name: p.name, pgid: p.child.pid ?? -1 }));
  const cpuSnapshot = () => cpuMsByGroup(groups().map((g) => g.pgid));

  // --- one at a time: the control plane's latency without contention; webhooks measured meanwhile ---
  const admin = await stack.token('bench-admin', ['admin']);
  const receiver = await startReceiver();
  const subscription = await fetch(`${stack.edgeUrl}/api/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url, events: ['desktop.status_changed'] }),
  });
  const webhookId = ((await subscription.json()) as { data: { id: string } }).data.id;
  const sequential: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const tok = await stack.token(`bench-seq-${i}`);
    const t0 = Date.now();
    const res = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `seq ${i}`, plan: 'BASIC' }),
    });
    const { id } = ((await res.json()) as { data: Desktop }).data;
    sequential.push((await runningAt(id, tok)) - t0);
  }

  // Each status change's event, from its transition to its arrival at the receiver.
  const expectedEvents = SEQUENTIAL * 6;
  const webhookDeadline = Date.now() + 30_000;
  while (receiver.latencies.length < expectedEvents && Date.now() < webhookDeadline) await sleep(100);
  const webhookLatencies = [...receiver.latencies];
  await fetch(`${stack.edgeUrl}/api/v1/webhooks/${webhookId}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
  receiver.close();

  // --- 50 concurrent creates ---
  const cpuBefore = cpuSnapshot();
  const burstStart = Date.now();
  const started = await Promise.all(
    Array.from({ length: CREATES }, async (_, i) => {
      const tok = await stack.token(`bench-user-${i}`);
      const t0 = Date.now();
      const res = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `bench ${i}`, plan: 'BASIC' }),
      });
      const body = (await res.json()) as { data: Desktop };
      if (res.status !== 202) throw new Error(`create answered ${res.status}`);
      return { id: body.data.id, tok, t0, acceptedMs: Date.now() - t0 };
    }),
  );
  const deadline = Date.now() + 120_000;
  const pending = new Set(started.map((s) => s.id));
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.size} desktops not RUNNING after 120 s`);
    await Promise.all(
      started
        .filter((s) => pending.has(s.id))
        .map(async (s) => {
          const r = await fetch(`${stack.edgeUrl}/api/v1/desktops/${s.id}/status`, { headers: { authorization: `Bearer ${s.tok}` } });
          const st = ((await r.json()) as { data: { status: string; errorMessage: string | null } }).data;
          if (st.status === 'FAILED') throw new Error(`desktop failed: ${st.errorMessage}`);
          if (st.status === 'RUNNING') pending.delete(s.id);
        }),
    );
    // The times come from the recorded transitions, so polling slowly loses no precision and leaves the CPU to the stack.
    await sleep(250);
  }
  const timelines = await Promise.all(
    started.map(async (s) => {
      const r = await fetch(`${stack.edgeUrl}/api/v1/desktops/${s.id}/events`, { headers: { authorization: `Bearer ${s.tok}` } });
      return { t0: s.t0, events: ((await r.json()) as { data: TransitionRecord[] }).data };
    }),
  );
  const toRunning = timelines.map(({ t0, events }) => Date.parse(events.find((e) => e.to === 'RUNNING')?.at ?? '') - t0);
  // Median time spent in each status on the way to RUNNING: where the time goes.
  const phases: Record<string, number> = {};
  for (const status of ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING']) {
    const spans = timelines.flatMap(({ events }) => {
      const i = events.findIndex((e) => e.to === status);
      const next = events[i + 1];
      return i >= 0 && next ? [Date.parse(next.at) - Date.parse(events[i]?.at ?? '')] : [];
    });
    phases[status] = pct(spans, 50);
  }
  const after = await simStats();
  const cpuAfter = cpuSnapshot();
  const cpuMsPerCreate = Object.fromEntries(
    groups().map((g) => [g.name, round(((cpuAfter.get(g.pgid) ?? 0) - (cpuBefore.get(g.pgid) ?? 0)) / CREATES)]),
  );
  const burstWallMs = Date.now() - burstStart;
  // Zero-delay simulators report (near) zero; the subtraction keeps the figure honest if they did not.
  const simMsPerDesktop = (after.taskDelayMs - before.taskDelayMs) / CREATES;
  const overhead = toRunning.map((t) => t - simMsPerDesktop);

  // --- status under load, beside a bare Worker ---
  const probe = started[0];
  if (!probe) throw new Error('no desktop to probe');
  const status = await load(`${stack.edgeUrl}/api/v1/desktops/${probe.id}/status`, { authorization: `Bearer ${probe.tok}` });
  const helloPort = await freePort();
  const server = nodeTs('bench/serve-under-workerd.ts');
  const hello = startProcess({
    name: 'hello',
    command: server.command,
    args: [...server.args, 'hello'],
    env: { PORT: String(helloPort) },
    readyWhen: /Ready on/,
  });
  await hello.ready;
  const bare = await load(`http://127.0.0.1:${helloPort}/`);
  await hello.stop();

  const results = {
    measuredAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    createToRunning: {
      desktops: CREATES,
      acceptedP50Ms: pct(
        started.map((s) => s.acceptedMs),
        50,
      ),
      p50Ms: pct(toRunning, 50),
      p95Ms: pct(toRunning, 95),
      simulatorReportedMsPerDesktop: round(simMsPerDesktop),
      overheadP50Ms: round(pct(overhead, 50)),
      overheadP95Ms: round(pct(overhead, 95)),
      medianMsInStatus: phases,
      burstWallMs,
      cpuMsPerCreateByProcess: cpuMsPerCreate,
    },
    createToRunningOneAtATime: { desktops: SEQUENTIAL, p50Ms: pct(sequential, 50), p95Ms: pct(sequential, 95) },
    webhookDelivery: {
      events: webhookLatencies.length,
      expected: expectedEvents,
      transitionToReceiptP50Ms: pct(webhookLatencies, 50),
      transitionToReceiptP95Ms: pct(webhookLatencies, 95),
    },
    cronSweep: await sweepCost(),
    gpuPacking: runGpuPackingSimulation(),
    // The dashboard's first screen (HTML + JS + CSS, compressed; target under 100 KB), and the embeddable element.
    pageWeight: await measurePageWeight(stack),
    statusEndpoint: status,
    bareHelloWorker: bare,
    statusToBareThroughputRatio: Math.round((status.requestsPerSecond / bare.requestsPerSecond) * 1000) / 1000,
    targets: {
      overheadP95Under250Ms: pct(overhead, 95) < 250,
      statusThroughputAtLeastHalfOfBare: status.requestsPerSecond >= bare.requestsPerSecond / 2,
    },
    settings: {
      loadSeconds: LOAD_SECONDS,
      connections: CONNECTIONS,
      edgeRuntime: 'workerd via Miniflare (no dev proxy)',
      simulatorDelays: 0,
    },
  };
  writeFileSync(join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
} finally {
  await stack.stop();
}
