/**
 * `npm run bench`: speed figures of the control plane, printed and written to
 * bench/results.json. The edge runs under workerd without wrangler dev's proxy; the
 * simulators answer with zero delay, so what remains is the control plane's own time.
 *
 *  - 50 concurrent creates, at two site sizes (50 and 2,000 VMs already on the simulated
 *    Proxmox node, most of them other teams' VMs the bench seeds): time from POST to
 *    RUNNING (p50/p95), the control-plane overhead (that time minus the time the simulators
 *    report spending) and CPU per create by process. A create's cost must not grow with
 *    the site. BENCH_SITE_VMS=50,2000 picks the sizes; BENCH_PROFILE=<dir> also writes CPU
 *    profiles of every process over each burst there, with a summary of their top entries.
 *  - GET /desktops/{id}/status: latency p50/p99 and requests/s, beside a bare
 *    hello-world Worker and a Worker that only makes one Durable Object RPC (the ceiling of
 *    any status read from the desktop's object), in interleaved windows of the same run on
 *    the same machine (ratios, not absolute numbers, are what to compare across runs).
 *  - The CPU a burst may spend per create for its p95 to stay under 250 ms on this machine
 *    (250 ms × cores / creates), beside what the simulators and the database alone spend.
 *  - Time to desktop at realistic simulator delays, on a stack of its own
 *    (./time-to-desktop.ts): POST to a RUNNING desktop with a connect URL, cold one at a
 *    time and 20 at once, then a warm pool's hits (one at a time, and 50 at once against a
 *    pool of 50) and its misses. BENCH_TTD=0 leaves it out.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuMsByGroupAndProgram } from './cpu';
import { nodeInspectorUrl, profileStretch, workerInspectorUrl } from './profile';
import { measurePageWeight } from './page-weight';
import { runGpuPackingSimulation } from './gpu-packing';
import { runPoolReplaySimulation } from './pool-replay';
import { measureTimeToDesktop } from './time-to-desktop';
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
/** Concurrent creates before the measured bursts, so the first burst does not also pay for warming up the processes' JITs. */
const WARM_UP = 20;
const SITE_SIZES = (process.env.BENCH_SITE_VMS ?? '50,2000').split(',').map(Number);
const PROFILE_DIR = process.env.BENCH_PROFILE;
const TIME_TO_DESKTOP = process.env.BENCH_TTD !== '0';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;
/** The CPU a burst may spend per create, over every process, for its p95 to stay under 250 ms on these cores. */
const BURST_CPU_BUDGET_MS = round((250 * cpus().length) / CREATES);

interface LoadTarget {
  url: string;
  headers?: Record<string, string>;
}

/**
 * Requests/s of several targets, measured in alternating 2-second windows (LOAD_SECONDS in all per target) and
 * summarised by the median window: the machines are shared, and their speed drifts by a third within a minute, so
 * targets measured one after the other compare the machine's moods as much as the targets.
 */
async function loadInterleaved<K extends string>(targets: Record<K, LoadTarget>) {
  const windows = Math.max(1, Math.round(LOAD_SECONDS / 2));
  const runs = new Map<K, autocannon.Result[]>();
  for (let w = 0; w < windows; w++) {
    for (const [name, t] of Object.entries(targets) as [K, LoadTarget][]) {
      const r = await autocannon({ url: t.url, connections: CONNECTIONS, duration: 2, headers: t.headers ?? {} });
      runs.set(name, [...(runs.get(name) ?? []), r]);
    }
  }
  const med = (xs: number[]) => pct(xs, 50);
  return Object.fromEntries(
    [...runs].map(([name, rs]) => [
      name,
      {
        requestsPerSecond: round(med(rs.map((r) => r.requests.average))),
        p50Ms: med(rs.map((r) => r.latency.p50)),
        p99Ms: med(rs.map((r) => r.latency.p99)),
        non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        windows: rs.length,
      },
    ]),
  ) as Record<K, { requestsPerSecond: number; p50Ms: number; p99Ms: number; non2xx: number; errors: number; windows: number }>;
}

// First, on a stack of its own at realistic delays, so the main stack's figures are not shared with it.
const timeToDesktop = TIME_TO_DESKTOP ? await measureTimeToDesktop({ oneAtATime: 5, concurrent: 20, poolSize: 50, shards: 2 }) : null;

const stack = await startStack({
  edgeRuntime: 'workerd',
  inspect: PROFILE_DIR !== undefined,
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
  const simOrigin = new URL(stack.proxmoxUrl).origin;
  const simStats = async () =>
    (
      (await (await fetch(`${simOrigin}/__sim/stats`)).json()) as {
        data: { taskDelayMs: number; taskDelayWallMs: number; requestsByRoute: Record<string, number> };
      }
    ).data;
  const guacamoleRequests = async () =>
    ((await (await fetch(`${stack.guacamoleUrl}/__sim/stats`)).json()) as { apiRequestsByRoute: Record<string, number> })
      .apiRequestsByRoute;
  /** Requests per create by endpoint between two counts (what a create asks of Proxmox and Guacamole). */
  const perCreate = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(after)
        .map(([route, n]) => [route, round((n - (before[route] ?? 0)) / CREATES)] as const)
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1]),
    );

  const groups = () =>
    [stack.edge, stack.bridge, stack.proxmox, stack.guacamole, stack.dbProcess].map((p) => ({ name: p.name, pgid: p.child.pid ?? -1 }));
  const cpuSnapshot = () => cpuMsByGroupAndProgram(groups().map((g) => g.pgid));
  const sum = (programs: Record<string, number> | undefined) => Object.values(programs ?? {}).reduce((a, b) => a + b, 0);

  /** Every process's inspector, for BENCH_PROFILE (the edge's workerd through Miniflare's proxy). */
  const profileTargets = async () => [
    { name: 'edge', url: await workerInspectorUrl(stack.edgeInspectorPort) },
    ...[stack.bridge, stack.proxmox, stack.guacamole, stack.dbProcess].map((p) => {
      const url = nodeInspectorUrl(p.output());
      if (!url) throw new Error(`${p.name} printed no inspector address`);
      return { name: p.name, url };
    }),
  ];
  const profileSummaries: string[] = [];

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

  /** Grows the simulated site to `size` VMs (besides the templates) with other teams' VMs. */
  async function growSiteTo(size: number): Promise<number> {
    const vms = ((await (await fetch(`${simOrigin}/__sim/vms`)).json()) as { data: { template: boolean }[] }).data;
    const existing = vms.filter((v) => !v.template).length;
    if (existing < size) {
      const res = await fetch(`${simOrigin}/__sim/site-vms`, { method: 'POST', body: JSON.stringify({ count: size - existing }) });
      if (!res.ok) throw new Error(`seeding the site answered ${res.status}`);
    }
    return Math.max(existing, size);
  }

  /** 50 concurrent creates on a site of `siteVms` VMs: times, overhead and CPU per create by process. */
  async function createBurst(siteVms: number) {
    const existingVms = await growSiteTo(siteVms);
    const before = await simStats();
    const guacamoleBefore = await guacamoleRequests();
    const stopProfiling = PROFILE_DIR ? await profileStretch(await profileTargets(), PROFILE_DIR, `site-${siteVms}`) : null;
    const cpuBefore = cpuSnapshot();
    const burstStart = Date.now();
    const started = await Promise.all(
      Array.from({ length: CREATES }, async (_, i) => {
        const tok = await stack.token(`bench-${siteVms}-user-${i}`);
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
    // One desktop asked about at a time, in order: the times come from the recorded transitions, so polling
    // slowly loses no precision, and the edge's CPU goes to the creates rather than to the bench's questions.
    const deadline = Date.now() + 120_000;
    for (const s of started) {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`desktop ${s.id} not RUNNING after 120 s`);
        const r = await fetch(`${stack.edgeUrl}/api/v1/desktops/${s.id}/status`, { headers: { authorization: `Bearer ${s.tok}` } });
        const st = ((await r.json()) as { data: { status: string; errorMessage: string | null } }).data;
        if (st.status === 'FAILED') throw new Error(`desktop failed: ${st.errorMessage}`);
        if (st.status === 'RUNNING') break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const cpuAfter = cpuSnapshot();
    const burstWallMs = Date.now() - burstStart;
    const after = await simStats();
    const guacamoleAfter = await guacamoleRequests();
    if (stopProfiling) profileSummaries.push(await stopProfiling());
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
    const cpuMsPerCreate = Object.fromEntries(
      groups().map((g) => [g.name, round((sum(cpuAfter.get(g.pgid)) - sum(cpuBefore.get(g.pgid))) / CREATES)]),
    );
    // What stands in for Proxmox, Guacamole and Neon: not the control plane's, but on the same cores.
    const outsideControlPlane = [stack.proxmox, stack.guacamole, stack.dbProcess].reduce((n, p) => n + (cpuMsPerCreate[p.name] ?? 0), 0);
    // The edge's share by program: workerd (the Worker and its Durable Objects) and Miniflare's Node host.
    const edgeGroup = stack.edge.child.pid ?? -1;
    const edgeAfter = cpuAfter.get(edgeGroup) ?? {};
    const edgeCpuMsPerCreateByProgram = Object.fromEntries(
      Object.entries(edgeAfter).map(([program, ms]) => [program, round((ms - (cpuBefore.get(edgeGroup)?.[program] ?? 0)) / CREATES)]),
    );
    // Zero-delay simulators report (near) zero; the subtraction keeps the figure honest if they did not.
    const simMsPerDesktop = (after.taskDelayMs - before.taskDelayMs) / CREATES;
    const overhead = toRunning.map((t) => t - simMsPerDesktop);
    return {
      probe: started[0],
      figures: {
        siteVms: existingVms,
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
        edgeCpuMsPerCreateByProgram,
        cpuMsPerCreateTotal: round(Object.values(cpuMsPerCreate).reduce((a, b) => a + b, 0)),
        cpuMsPerCreateOfSimulatorsAndDatabase: round(outsideControlPlane),
        requestsPerCreate: {
          proxmox: perCreate(before.requestsByRoute, after.requestsByRoute),
          guacamole: perCreate(guacamoleBefore, guacamoleAfter),
        },
      },
    };
  }

  // --- warm-up, then 50 concurrent creates per site size ---
  await Promise.all(
    Array.from({ length: WARM_UP }, async (_, i) => {
      const tok = await stack.token(`bench-warm-${i}`);
      const res = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `warm-up ${i}`, plan: 'BASIC' }),
      });
      await runningAt(((await res.json()) as { data: Desktop }).data.id, tok);
    }),
  );
  const bursts: Awaited<ReturnType<typeof createBurst>>[] = [];
  for (const size of SITE_SIZES) bursts.push(await createBurst(size));
  const createBursts = bursts.map((b) => b.figures);

  // --- status under load, beside a bare Worker and one that only asks a Durable Object (the floor of a status read) ---
  const probe = bursts[0]?.probe;
  if (!probe) throw new Error('no desktop to probe');
  const server = nodeTs('bench/serve-under-workerd.ts');
  const yardsticks = await Promise.all(
    ['hello', 'one-rpc'].map(async (mode) => {
      const port = await freePort();
      const p = startProcess({
        name: mode,
        command: server.command,
        args: [...server.args, mode],
        env: { PORT: String(port) },
        readyWhen: /Ready on/,
      });
      await p.ready;
      return { p, url: `http://127.0.0.1:${port}/` };
    }),
  );
  const [helloServer, oneRpcServer] = yardsticks;
  if (!helloServer || !oneRpcServer) throw new Error('yardstick Workers did not start');
  const loads = await loadInterleaved({
    status: { url: `${stack.edgeUrl}/api/v1/desktops/${probe.id}/status`, headers: { authorization: `Bearer ${probe.tok}` } },
    bare: { url: helloServer.url },
    oneRpc: { url: oneRpcServer.url },
  });
  await Promise.all(yardsticks.map((y) => y.p.stop()));
  const { status, bare, oneRpc } = loads;

  const smallest = createBursts[0];
  const largest = createBursts[createBursts.length - 1];
  const bridgeGrowth =
    smallest && largest && smallest !== largest
      ? round((100 * (largest.cpuMsPerCreateByProcess.bridge ?? 0)) / (smallest.cpuMsPerCreateByProcess.bridge || 1) - 100)
      : null;
  const statusRatio = Math.round((status.requestsPerSecond / bare.requestsPerSecond) * 1000) / 1000;
  const oneRpcRatio = Math.round((oneRpc.requestsPerSecond / bare.requestsPerSecond) * 1000) / 1000;
  const results = {
    measuredAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    createBursts,
    burstCpuBudgetMsPerCreate: BURST_CPU_BUDGET_MS,
    /** How much more bridge CPU a create costs on the largest site than on the smallest (%). */
    bridgeCpuPerCreateGrowthPercent: bridgeGrowth,
    createToRunningOneAtATime: { desktops: SEQUENTIAL, p50Ms: pct(sequential, 50), p95Ms: pct(sequential, 95) },
    webhookDelivery: {
      events: webhookLatencies.length,
      expected: expectedEvents,
      transitionToReceiptP50Ms: pct(webhookLatencies, 50),
      transitionToReceiptP95Ms: pct(webhookLatencies, 95),
    },
    cronSweep: await sweepCost(),
    gpuPacking: runGpuPackingSimulation(),
    poolReplay: runPoolReplaySimulation(),
    // The dashboard's first screen (HTML + JS + CSS, compressed; target under 100 KB), and the embeddable element.
    pageWeight: await measurePageWeight(stack),
    statusEndpoint: status,
    bareHelloWorker: bare,
    statusToBareThroughputRatio: statusRatio,
    /**
     * A Worker that does nothing but one Durable Object RPC for the same fields, against the bare one: the ceiling of
     * statusToBareThroughputRatio for any status read from the desktop's object.
     */
    oneDurableObjectRpcWorker: oneRpc,
    oneRpcToBareThroughputRatio: oneRpcRatio,
    // POST to a RUNNING desktop with a connect URL: cold, a warm pool's hit (50 at once against a pool of 50), a miss.
    timeToDesktop,
    targets: {
      overheadP95Under250Ms: createBursts.every((b) => b.overheadP95Ms < 250),
      statusThroughputAtLeast70PercentOfBare: statusRatio >= 0.7,
      // The largest site may cost the bridge at most a fifth more per create than the smallest.
      bridgeCpuPerCreateGrowsAtMost20Percent: bridgeGrowth === null ? null : bridgeGrowth <= 20,
    },
    settings: {
      loadSeconds: LOAD_SECONDS,
      connections: CONNECTIONS,
      edgeRuntime: 'workerd via Miniflare (no dev proxy)',
      simulatorDelays: 0,
      profiled: PROFILE_DIR !== undefined,
    },
  };
  writeFileSync(join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
  console.log(`\n${createBurstTable(createBursts)}`);
  console.log(
    `GET /status: ${status.requestsPerSecond} req/s, bare hello-world Worker ${bare.requestsPerSecond} req/s, ratio ${statusRatio}; ` +
      `a Worker doing only one Durable Object RPC ${oneRpc.requestsPerSecond} req/s, ratio ${oneRpcRatio} (median of ${status.windows} interleaved 2 s windows each)`,
  );
  if (PROFILE_DIR) {
    const text = profileSummaries.join('\n\n');
    writeFileSync(join(PROFILE_DIR, 'summary.txt'), `${text}\n`);
    console.log(`\nCPU profiles in ${PROFILE_DIR} (top self time per process and burst):\n\n${text}`);
  }
} finally {
  await stack.stop();
}

/** The bursts side by side: CPU ms per create by process, and the times. */
function createBurstTable(
  bursts: {
    siteVms: number;
    cpuMsPerCreateByProcess: Record<string, number>;
    cpuMsPerCreateTotal: number;
    cpuMsPerCreateOfSimulatorsAndDatabase: number;
    p50Ms: number;
    p95Ms: number;
    overheadP50Ms: number;
    overheadP95Ms: number;
  }[],
): string {
  const processes = Object.keys(bursts[0]?.cpuMsPerCreateByProcess ?? {});
  const rows: [string, ...string[]][] = [
    ['site VMs', ...bursts.map((b) => String(b.siteVms))],
    ...processes.map((p): [string, ...string[]] => [`CPU ms/create ${p}`, ...bursts.map((b) => String(b.cpuMsPerCreateByProcess[p]))]),
    ['CPU ms/create total', ...bursts.map((b) => String(b.cpuMsPerCreateTotal))],
    ['  of which simulators + db', ...bursts.map((b) => String(b.cpuMsPerCreateOfSimulatorsAndDatabase))],
    ['  budget for p95 < 250 ms', ...bursts.map(() => String(BURST_CPU_BUDGET_MS))],
    ['POST→RUNNING p50 ms', ...bursts.map((b) => String(b.p50Ms))],
    ['POST→RUNNING p95 ms', ...bursts.map((b) => String(b.p95Ms))],
    ['overhead p50 ms', ...bursts.map((b) => String(b.overheadP50Ms))],
    ['overhead p95 ms', ...bursts.map((b) => String(b.overheadP95Ms))],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([label, ...cells]) => `${label.padEnd(width)}  ${cells.map((c) => c.padStart(8)).join('')}`).join('\n');
}
