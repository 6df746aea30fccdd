/**
 * A whole local stack on free ports, as real processes (the edge under wrangler dev,
 * the simulators, the bridge) plus a database: the end-to-end tests and `npm run bench`
 * start it the same way `npm run dev` does, minus the fixed ports and the on-disk state.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ProvidedDatabase, migrateDatabase, nodePool, provideDatabase } from './database';
import { LOCAL, sha256Hex } from './local-config';
import { type Managed, QUIET_WRANGLER, nodeTs, startProcess } from './processes';
import { signToken, type TokenRole } from './tokens';

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
  /** Extra [vars] for the edge (e.g. WATCHDOG_SECONDS). */
  edgeVars?: Record<string, string>;
  /** Extra environment for the bridge. */
  bridgeEnv?: Record<string, string>;
  echo?: boolean;
}

export interface Stack {
  edgeUrl: string;
  proxmoxUrl: string;
  guacamoleUrl: string;
  siteId: string;
  db: ProvidedDatabase;
  jwtSecret: string;
  edge: Managed;
  bridge: Managed;
  proxmox: Managed;
  guacamole: Managed;
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
  const [edgePort, inspectorPort, proxmoxPort, guacamolePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const db = await provideDatabase({ databaseUrl: process.env.DATABASE_URL || undefined });
  await migrateDatabase(db);

  const siteId = `e2e-${randomBytes(3).toString('hex')}`;
  const siteKey = `sk_${randomBytes(24).toString('base64url')}`;
  const jwtSecret = randomBytes(32).toString('hex');
  const pool = nodePool(db);
  await pool.query('INSERT INTO sites (id, name, key_hash, created_at) VALUES ($1, $1, $2, now())', [siteId, sha256Hex(siteKey)]);
  await pool.end();

  const scale = String(opts.simDelayScale ?? 0);
  const echo = opts.echo ?? process.env.STACK_ECHO === '1';
  const proxmox = startProcess({
    name: 'proxmox',
    ...nodeTs('simulators/proxmox/main.ts'),
    env: { PROXMOX_SIM_PORT: String(proxmoxPort), PROXMOX_SIM_DELAY_SCALE: scale },
    readyWhen: /listening/,
    echo,
  });
  const guacamole = startProcess({
    name: 'guacamole',
    ...nodeTs('simulators/guacamole/main.ts'),
    env: { GUACAMOLE_SIM_PORT: String(guacamolePort) },
    readyWhen: /listening/,
    echo,
  });

  const envFile = join(dir, 'edge.env');
  writeFileSync(envFile, `JWT_SECRET=${jwtSecret}\nDATABASE_URL=${db.url}\n`, { mode: 0o600 });
  const vars = { DB_WS_PROXY: db.wsProxy, DEFAULT_SITE_ID: siteId, ...opts.edgeVars };
  const edge = startProcess({
    name: 'edge',
    command: 'wrangler',
    args: [
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(edgePort),
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
  await Promise.all([proxmox.ready, guacamole.ready, edge.ready]);

  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const bridgeEnv = {
    EDGE_URL: edgeUrl,
    SITE_ID: siteId,
    SITE_KEY: siteKey,
    BRIDGE_SECRET: randomBytes(32).toString('hex'),
    PROXMOX_URL: `http://127.0.0.1:${proxmoxPort}/api2/json`,
    PROXMOX_TOKEN_ID: LOCAL.proxmoxTokenId,
    PROXMOX_TOKEN_SECRET: LOCAL.proxmoxTokenSecret,
    GUACAMOLE_URL: `http://127.0.0.1:${guacamolePort}/guacamole`,
    GUACAMOLE_USERNAME: LOCAL.guacamoleUser,
    GUACAMOLE_PASSWORD: LOCAL.guacamolePassword,
    LOG_LEVEL: 'info',
    ...opts.bridgeEnv,
  };
  const retired: Managed[] = [];
  const startBridge = async () => {
    const b = startProcess({ name: 'bridge', ...nodeTs('on-prem-bridge/src/main.ts'), env: bridgeEnv, echo });
    stack.bridge = b;
    return b;
  };

  const waitForBridge = async (connected: boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const res = await fetch(`${edgeUrl}/healthz`);
        const body = (await res.json()) as { data?: { sites?: { id: string; bridge: string }[] } };
        const site = body.data?.sites?.find((s) => s.id === siteId);
        if ((site?.bridge === 'connected') === connected) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`bridge of ${siteId} not ${connected ? 'connected' : 'offline'} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stack: Stack = {
    edgeUrl,
    proxmoxUrl: `http://127.0.0.1:${proxmoxPort}/api2/json`,
    guacamoleUrl: `http://127.0.0.1:${guacamolePort}/guacamole`,
    siteId,
    db,
    jwtSecret,
    edge,
    bridge: undefined as unknown as Managed,
    proxmox,
    guacamole,
    token: (sub, roles = []) => signToken(jwtSecret, sub, { roles }),
    startBridge: async () => {
      retired.push(stack.bridge);
      return startBridge();
    },
    waitForBridge,
    logs: () => [edge, proxmox, guacamole, ...retired, stack.bridge].map((p) => `--- ${p.name}\n${p.output()}`).join('\n'),
    async stop() {
      await Promise.all([stack.bridge, edge, proxmox, guacamole].map((p) => p.stop()));
      await db.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await startBridge();
  await waitForBridge(true);
  return stack;
}
