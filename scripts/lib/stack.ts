/**
 * A whole local stack on free ports, as real processes (the edge under wrangler dev,
 * the simulators, the bridge) plus a database: the end-to-end tests and `npm run bench`
 * start it the same way `npm run dev` does, minus the fixed ports and the on-disk state.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ProvidedDatabase, nodePool } from './database';
import { ensureDevCa } from '../../simulators/shared/certificates';
import { startDohServer, systemResolver } from './doh';
import {
  kubernetesRouteTlsEnv,
  LOCAL_EDGE_VARS,
  ROOT,
  relayAddress,
  selkiesBridgeEnv,
  sha256Hex,
  simulatorBridgeEnv,
  simulatorTlsEnv,
} from './local-config';
import { type Managed, QUIET_WRANGLER, nodeTs, startProcess as startManaged } from './processes';
import { signToken, type TokenRole } from './tokens';
import { setTimeout as sleep } from 'node:timers/promises';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface StackOptions {
  /** Multiplier of the simulators' realistic delays; 0 = instant (default). */
  simDelayScale?: number;
  /**
   * 'wrangler-dev' (default) runs the edge as developers do; 'workerd' serves the built
   * bundle under workerd through Miniflare, without the dev proxy (benchmarks).
   */
  edgeRuntime?: 'wrangler-dev' | 'workerd';
  /** Extra [vars] for the edge (e.g. WATCHDOG_SECONDS). */
  edgeVars?: Record<string, string>;
  /** Extra secrets for the edge, passed like JWT_SECRET (never on the command line), e.g. OIDC_CLIENT_SECRET. */
  edgeSecrets?: Record<string, string>;
  /** Extra environment for the bridge. */
  bridgeEnv?: Record<string, string>;
  /** Keep the embedded database on disk, so it can be stopped and started again (outage tests). */
  persistentDatabase?: boolean;
  /** Extra environment for the Proxmox simulator (e.g. PROXMOX_SIM_PRIVILEGES for a restricted token). */
  proxmoxEnv?: Record<string, string>;
  /** Use this stack's simulators instead of starting new ones: a second deployment on the same Proxmox and Guacamole. */
  sharedSimulatorsOf?: Stack;
  /** Open every process's inspector (Node's on a free port it prints; the edge's on edgeInspectorPort), for profiling. */
  inspect?: boolean;
  echo?: boolean;
}

export interface Stack {
  edgeUrl: string;
  /** Plain http on loopback (tests read the simulators directly); the bridge itself speaks https with `caFile`. */
  proxmoxUrl: string;
  /** The stack's private CA (the simulators' certificates are signed by it). */
  caFile: string;
  /** The bridge's environment, as started (for a second bridge, or `doctor`). */
  bridgeEnv: Record<string, string>;
  guacamoleUrl: string;
  siteId: string;
  db: ProvidedDatabase;
  /** The process serving the database (PGlite, or the relay to DATABASE_URL). */
  dbProcess: Managed;
  /** Stops the database process (an outage); startDatabase brings it back on the same ports. */
  stopDatabase(): Promise<void>;
  startDatabase(): Promise<void>;
  jwtSecret: string;
  /** coturn's shared secret the edge mints TURN credentials from. */
  turnSecret: string;
  edge: Managed;
  bridge: Managed;
  proxmox: Managed;
  guacamole: Managed;
  kubernetes: Managed;
  kubernetesUrl: string;
  /** The edge's DevTools inspector (wrangler dev always; under workerd with `inspect`). */
  edgeInspectorPort: number;
  token(sub: string, roles?: TokenRole[]): Promise<string>;
  /** Starts a new bridge process (after the old one was stopped or killed). */
  startBridge(): Promise<Managed>;
  waitForBridge(connected: boolean, timeoutMs?: number): Promise<void>;
  /** Every output line of every process so far (for log assertions). */
  logs(): string;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'cdaas-stack-'));
  const started: Managed[] = [];
  // Webhook hosts are resolved before each delivery; a Worker cannot use the system resolver.
  const doh = await startDohServer(systemResolver);
  try {
    return await launch(opts, dir, started, doh);
  } catch (err) {
    // Nothing half-started may outlive a failed start.
    await Promise.all([...started.map((p) => p.stop()), doh.stop()]);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(opts: StackOptions, dir: string, started: Managed[], doh: { url: string; stop(): Promise<void> }): Promise<Stack> {
  const startProcess = (o: Parameters<typeof startManaged>[0]) => {
    const p = startManaged(o);
    started.push(p);
    return p;
  };
  const [edgePort, inspectorPort, proxmoxPort, guacamolePort, pgPort, relayPort, kubernetesPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const echo = opts.echo ?? process.env.STACK_ECHO === '1';
  const inspectArgs = opts.inspect ? ['--inspect=127.0.0.1:0'] : [];
  // The database in a process of its own, as in `npm run dev`: PGlite's work must not
  // share an event loop with the caller's clock.
  const dbEnv = {
    PGLITE_PORT: String(pgPort),
    DB_RELAY_PORT: String(relayPort),
    SEED_LOCAL_SITE: '0',
    ...(opts.persistentDatabase ? { PGLITE_DATA_DIR: join(dir, 'pgdata') } : { PGLITE_IN_MEMORY: '1' }),
  };
  const startDb = () =>
    startProcess({ name: 'db', ...nodeTs('scripts/local-db.ts', inspectArgs), env: dbEnv, readyWhen: /database ready/, echo });
  let dbProcess = startDb();
  await dbProcess.ready;
  const external = process.env.DATABASE_URL || undefined;
  const db = {
    url: external ?? `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`,
    wsProxy: relayAddress(relayPort),
    embedded: !external,
    stop: () => stack.dbProcess.stop(),
  };

  const siteId = `e2e-${randomBytes(3).toString('hex')}`;
  const siteKey = `sk_${randomBytes(24).toString('base64url')}`;
  const jwtSecret = randomBytes(32).toString('hex');
  const turnSecret = randomBytes(24).toString('hex');
  const pool = nodePool(db);
  await pool.query('INSERT INTO sites (id, name, key_hash, created_at) VALUES ($1, $1, $2, now())', [siteId, sha256Hex(siteKey)]);
  await pool.end();

  const scale = String(opts.simDelayScale ?? 0);
  const shared = opts.sharedSimulatorsOf;
  // HTTPS everywhere, with a CA of the stack's own, as at a real site.
  const ca = await ensureDevCa(shared ? join(shared.caFile, '..') : join(dir, 'ca'));
  const tlsEnv = simulatorTlsEnv(ca);
  const simPorts = shared
    ? {
        proxmox: Number(new URL(shared.proxmoxUrl).port),
        guacamole: Number(new URL(shared.guacamoleUrl).port),
        kubernetes: Number(new URL(shared.kubernetesUrl).port),
      }
    : { proxmox: proxmoxPort, guacamole: guacamolePort, kubernetes: kubernetesPort };
  const startSim = (o: Parameters<typeof startManaged>[0]): Managed => (shared ? sharedProcess(shared, o.name) : startProcess(o));
  const proxmox = startSim({
    name: 'proxmox',
    ...nodeTs('simulators/proxmox/main.ts', inspectArgs),
    env: {
      PROXMOX_SIM_PORT: String(proxmoxPort),
      PROXMOX_SIM_DELAY_SCALE: scale,
      // pvestatd's lag is on in every stack (1 s instead of 10 s): the bridge must not depend on /cluster/resources.
      PROXMOX_SIM_STATUS_CACHE_MS: '1000',
      ...tlsEnv,
      ...opts.proxmoxEnv,
    },
    readyWhen: /listening/,
    echo,
  });
  const guacamole = startSim({
    name: 'guacamole',
    ...nodeTs('simulators/guacamole/main.ts', inspectArgs),
    env: { GUACAMOLE_SIM_PORT: String(guacamolePort), ...tlsEnv },
    readyWhen: /listening/,
    echo,
  });
  const kubernetes = startSim({
    name: 'kubernetes',
    ...nodeTs('simulators/kubernetes/main.ts'),
    env: { KUBERNETES_SIM_PORT: String(kubernetesPort), KUBERNETES_SIM_DELAY_SCALE: scale, ...tlsEnv, ...kubernetesRouteTlsEnv(ca) },
    readyWhen: /listening/,
    echo,
  });

  const vars = { ...LOCAL_EDGE_VARS, DB_WS_PROXY: db.wsProxy, DEFAULT_SITE_ID: siteId, WEBHOOK_DNS_RESOLVER: doh.url, ...opts.edgeVars };
  const secrets = {
    JWT_SECRET: jwtSecret,
    DATABASE_URL: db.url,
    TURN_SHARED_SECRET: turnSecret,
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    ...opts.edgeSecrets,
  };
  const edge =
    opts.edgeRuntime === 'workerd'
      ? startEdgeUnderWorkerd(dir, edgePort, { ...vars, ...secrets }, echo, opts.inspect ? inspectorPort : undefined)
      : startEdgeUnderWranglerDev(dir, edgePort, inspectorPort, vars, secrets, echo);
  started.push(edge);
  await Promise.all([proxmox.ready, guacamole.ready, kubernetes.ready, edge.ready]);

  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const bridgeEnv = {
    EDGE_URL: edgeUrl,
    SITE_ID: siteId,
    SITE_KEY: siteKey,
    BRIDGE_SECRET: randomBytes(32).toString('hex'),
    BRIDGE_STATE_DIR: join(dir, 'bridge-state'),
    ...simulatorBridgeEnv({ proxmox: simPorts.proxmox, guacamole: simPorts.guacamole }, ca.caFile),
    ...selkiesBridgeEnv(simPorts.kubernetes, ca.caFile),
    LOG_LEVEL: 'info',
    ...opts.bridgeEnv,
  };
  const retired: Managed[] = [];
  const startBridge = async () => {
    const b = startProcess({ name: 'bridge', ...nodeTs('on-prem-bridge/src/main.ts', inspectArgs), env: bridgeEnv, echo });
    stack.bridge = b;
    return b;
  };

  const tokenClaims = { issuer: opts.edgeVars?.JWT_ISSUER, audience: opts.edgeVars?.JWT_AUDIENCE };
  const waitForBridge = async (connected: boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    // Signed as the edge expects, whichever issuer and audience the test gave it.
    const admin = await signToken(jwtSecret, 'stack-health', { roles: ['admin'], ...tokenClaims });
    for (;;) {
      try {
        const res = await fetch(`${edgeUrl}/api/v1/admin/health`, { headers: { authorization: `Bearer ${admin}` } });
        const body = (await res.json()) as { data?: { sites?: { id: string; bridge: string }[] } };
        const site = body.data?.sites?.find((s) => s.id === siteId);
        if ((site?.bridge === 'connected') === connected) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`bridge of ${siteId} not ${connected ? 'connected' : 'offline'} after ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  const stack: Stack = {
    edgeUrl,
    proxmoxUrl: `http://127.0.0.1:${simPorts.proxmox}/api2/json`,
    caFile: ca.caFile,
    bridgeEnv,
    guacamoleUrl: `http://127.0.0.1:${simPorts.guacamole}/guacamole`,
    siteId,
    db,
    dbProcess,
    stopDatabase: () => stack.dbProcess.stop(),
    startDatabase: async () => {
      dbProcess = startDb();
      stack.dbProcess = dbProcess;
      await dbProcess.ready;
    },
    jwtSecret,
    turnSecret,
    edge,
    bridge: undefined as unknown as Managed,
    proxmox,
    guacamole,
    kubernetes,
    kubernetesUrl: `http://127.0.0.1:${simPorts.kubernetes}`,
    edgeInspectorPort: inspectorPort,
    token: (sub, roles = []) => signToken(jwtSecret, sub, { roles }),
    startBridge: async () => {
      retired.push(stack.bridge);
      return startBridge();
    },
    waitForBridge,
    logs: () => [edge, proxmox, guacamole, kubernetes, ...retired, stack.bridge].map((p) => `--- ${p.name}\n${p.output()}`).join('\n'),
    async stop() {
      // Simulators of another stack are that stack's to stop.
      await Promise.all([stack.bridge, edge, ...(shared ? [] : [proxmox, guacamole, kubernetes])].map((p) => p.stop()));
      await Promise.all([db.stop(), doh.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await startBridge();
  await waitForBridge(true);
  return stack;
}

/** Another stack's simulator process, as this stack sees it: already running, stopped by its owner. */
function sharedProcess(owner: Stack, name: string): Managed {
  const p = owner[name as 'proxmox' | 'guacamole' | 'kubernetes'];
  return { ...p, stop: async () => {} };
}

function startEdgeUnderWranglerDev(
  dir: string,
  port: number,
  inspectorPort: number,
  vars: Record<string, string>,
  secrets: Record<string, string>,
  echo: boolean,
): Managed {
  const envFile = join(dir, 'edge.env');
  writeFileSync(
    envFile,
    `${Object.entries(secrets)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  return startManaged({
    name: 'edge',
    command: 'wrangler',
    args: [
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspectorPort),
      '--persist-to',
      join(dir, 'state'),
      '--env-file',
      envFile,
      '--show-interactive-dev-session=false',
      ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
    ],
    env: QUIET_WRANGLER,
    readyWhen: /Ready on/,
    readyTimeoutMs: 120_000,
    echo,
  });
}

/** Bundles the Worker as `wrangler deploy` would, then serves it under workerd (bench/serve-under-workerd.ts). */
function startEdgeUnderWorkerd(
  dir: string,
  port: number,
  bindings: Record<string, string>,
  echo: boolean,
  inspectorPort?: number,
): Managed {
  const bundle = join(dir, 'edge-build');
  execFileSync('wrangler', ['deploy', '--dry-run', '--outdir', bundle], {
    cwd: ROOT,
    env: { ...process.env, ...QUIET_WRANGLER },
    stdio: 'pipe',
  });
  const server = nodeTs('bench/serve-under-workerd.ts');
  return startManaged({
    name: 'edge',
    command: server.command,
    args: [...server.args, 'edge', bundle],
    env: {
      PORT: String(port),
      EDGE_BINDINGS: JSON.stringify(bindings),
      ...(inspectorPort ? { INSPECTOR_PORT: String(inspectorPort) } : {}),
    },
    readyWhen: /Ready on/,
    echo,
  });
}
