/**
 * The local stack's secrets, made on first use and kept out of the repo: `.dev.vars`
 * for the edge (wrangler dev reads it) and `.local/bridge.env` for the bridge. Fresh
 * random values per machine, so no secret is ever committed.
 */
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DevCa } from '../../simulators/shared/certificates';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEV_VARS = join(ROOT, '.dev.vars');
export const BRIDGE_ENV = join(ROOT, '.local/bridge.env');
/** The local CA (npm run dev): the simulators' certificates are signed by it, the bridge trusts it. */
export const LOCAL_CA_DIR = join(ROOT, '.local/ca');

/** Fixed local addresses (README "Set-up"). */
export const LOCAL = {
  edgePort: 8787,
  pgPort: 5488,
  wsRelayPort: 5489,
  proxmoxPort: 8006,
  guacamolePort: 8080,
  siteId: 'local',
  proxmoxTokenId: 'root@pam!dev',
  proxmoxTokenSecret: '11111111-2222-3333-4444-555555555555',
  /** The bridge's name (PROXMOX_TEMPLATES) of the simulator's template with a data disk, 9001. */
  dataDiskTemplate: 'ubuntu-data',
  guacamoleUser: 'guacadmin',
  guacamolePassword: 'guacadmin',
  kubernetesPort: 6443,
  kubernetesToken: 'dev-token',
  /** The embed example app (examples/embed-app), a streaming app's page on an origin of its own. */
  embedExamplePort: 8090,
} as const;

/**
 * The edge's development values that the deployed wrangler.toml must not carry (loopback
 * addresses): `npm run dev` keeps them in .dev.vars, the test stacks pass them as vars.
 */
export const LOCAL_EDGE_VARS = {
  /** The local TURN address handed to Selkies pods and browsers. */
  TURN_HOST: '127.0.0.1',
  /** Local tooling, the test stacks and the benchmark all come from loopback. */
  RATE_LIMIT_EXEMPT_IPS: '127.0.0.1,::1',
} as const;

/** neonConfig.wsProxy for the local relay to the embedded Postgres (DB_WS_PROXY). */
export const relayAddress = (port: number) => `127.0.0.1:${port}/v1`;

/**
 * The bridge's Kubernetes settings against the local simulator: sessions are published
 * at http://desk-<id>.desk.localhost:<port>/ (browsers resolve *.localhost to loopback,
 * and the simulator plays Traefik for those hosts). The bridge itself speaks HTTPS to the
 * API and to the routes, verifying both with the local CA, as it would at a real site.
 */
export function selkiesBridgeEnv(kubernetesPort: number, caFile: string): Record<string, string> {
  return {
    KUBERNETES_URL: `https://127.0.0.1:${kubernetesPort}`,
    KUBERNETES_CA_FILE: caFile,
    KUBERNETES_TOKEN: LOCAL.kubernetesToken,
    KUBERNETES_NAMESPACE: 'desktops',
    SELKIES_ROUTE_DOMAIN: 'desk.localhost',
    SELKIES_PUBLIC_SCHEME: 'http',
    SELKIES_PUBLIC_PORT: String(kubernetesPort),
    SELKIES_ROUTE_ORIGIN: `https://127.0.0.1:${kubernetesPort}`,
    SELKIES_ROUTE_CA_FILE: caFile,
    SELKIES_ROUTE_CERTIFICATE: 'desk-wildcard-tls',
  };
}

/** The bridge's Proxmox and Guacamole settings against the local simulators, over HTTPS with the local CA. */
export function simulatorBridgeEnv(ports: { proxmox: number; guacamole: number }, caFile: string): Record<string, string> {
  return {
    PROXMOX_URL: `https://127.0.0.1:${ports.proxmox}/api2/json`,
    PROXMOX_CA_FILE: caFile,
    PROXMOX_TOKEN_ID: LOCAL.proxmoxTokenId,
    PROXMOX_TOKEN_SECRET: LOCAL.proxmoxTokenSecret,
    // The simulator's template with a data disk (DEV_TEMPLATES), for an edge template's vmTemplate; 9000 stays the default.
    PROXMOX_TEMPLATES: `${LOCAL.dataDiskTemplate}=9001`,
    // The simulated guests live on loopback addresses (127.N.x.y), which only an explicit network admits.
    PROXMOX_GUEST_NETWORKS: '127.0.0.0/8',
    GUACAMOLE_URL: `https://127.0.0.1:${ports.guacamole}/guacamole`,
    GUACAMOLE_CA_FILE: caFile,
    // Browsers on this machine open the plain loopback address (no warning about the local CA).
    GUACAMOLE_PUBLIC_URL: `http://127.0.0.1:${ports.guacamole}/guacamole`,
    GUACAMOLE_USERNAME: LOCAL.guacamoleUser,
    GUACAMOLE_PASSWORD: LOCAL.guacamolePassword,
  };
}

/** The simulators' certificate files and the routes' wildcard certificate (for the Kubernetes simulator's TLS secret). */
export function simulatorTlsEnv(ca: DevCa): Record<string, string> {
  return { SIM_TLS_CERT: ca.serverCertFile, SIM_TLS_KEY: ca.serverKeyFile };
}

export function kubernetesRouteTlsEnv(ca: DevCa): Record<string, string> {
  return { KUBERNETES_SIM_ROUTE_TLS_CERT: join(ca.dir, 'routes.pem'), KUBERNETES_SIM_ROUTE_TLS_KEY: join(ca.dir, 'routes-key.pem') };
}

export function parseEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1]) out[m[1]] = (m[2] ?? '').replace(/^"(.*)"$/, '$1');
  }
  return out;
}

function writeEnvFile(path: string, values: Record<string, string>, header: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const body = Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  writeFileSync(path, `# ${header}\n${body}\n`, { mode: 0o600 });
}

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

export interface LocalConfig {
  jwtSecret: string;
  databaseUrl: string;
  siteKey: string;
  bridgeSecret: string;
}

/**
 * The edge's .dev.vars with whatever is missing filled in: fresh secrets, the local
 * database, and the development values the deployed wrangler.toml leaves out. A value
 * already there (even "" to try the rate limits locally) is kept.
 */
export function completeDevVars(existing: Record<string, string>): Record<string, string> & { JWT_SECRET: string; DATABASE_URL: string } {
  const vars: Record<string, string> = { ...existing };
  vars.JWT_SECRET ||= randomBytes(32).toString('hex');
  vars.ENCRYPTION_KEY ||= randomBytes(32).toString('hex');
  vars.JWKS_URL ??= '';
  vars.TURN_SHARED_SECRET ||= randomBytes(24).toString('hex');
  vars.DATABASE_URL ||= `postgres://postgres:postgres@127.0.0.1:${LOCAL.pgPort}/postgres`;
  vars.DB_WS_PROXY ??= relayAddress(LOCAL.wsRelayPort);
  for (const [k, v] of Object.entries(LOCAL_EDGE_VARS)) vars[k] ??= v;
  return { ...vars, JWT_SECRET: vars.JWT_SECRET, DATABASE_URL: vars.DATABASE_URL };
}

/** Reads the local secrets, creating whichever file is missing. */
export function ensureLocalConfig(caFile = join(LOCAL_CA_DIR, 'ca.pem')): LocalConfig {
  const existing = parseEnvFile(DEV_VARS);
  const vars = completeDevVars(existing);
  if (Object.keys(vars).some((k) => vars[k] !== existing[k])) {
    writeEnvFile(DEV_VARS, vars, 'Local secrets of the edge Worker, made by npm run dev (see .dev.vars.example). Not committed.');
  }
  const bridge = parseEnvFile(BRIDGE_ENV);
  const defaults: Record<string, string> = {
    SITE_ID: LOCAL.siteId,
    SITE_KEY: `sk_${randomBytes(32).toString('base64url')}`,
    BRIDGE_SECRET: randomBytes(32).toString('hex'),
    EDGE_URL: `http://127.0.0.1:${LOCAL.edgePort}`,
    BRIDGE_STATE_DIR: '.local/bridge-state',
    ...simulatorBridgeEnv({ proxmox: LOCAL.proxmoxPort, guacamole: LOCAL.guacamolePort }, caFile),
    ...selkiesBridgeEnv(LOCAL.kubernetesPort, caFile),
  };
  // The simulators speak HTTPS now: a file of an earlier release pointing at http:// gets the https settings.
  const outdated = bridge.PROXMOX_URL?.startsWith('http://127.0.0.1') === true;
  // Keep what exists (the site key the database knows), add what a newer release needs.
  if (outdated || Object.keys(defaults).some((k) => !bridge[k])) {
    const keep = outdated
      ? { SITE_ID: bridge.SITE_ID ?? '', SITE_KEY: bridge.SITE_KEY ?? '', BRIDGE_SECRET: bridge.BRIDGE_SECRET ?? '' }
      : bridge;
    writeEnvFile(
      BRIDGE_ENV,
      { ...defaults, ...Object.fromEntries(Object.entries(keep).filter(([, v]) => v)) },
      'Local configuration of the on-prem bridge, made by npm run dev. Not committed.',
    );
  }
  const b = parseEnvFile(BRIDGE_ENV);
  return { jwtSecret: vars.JWT_SECRET, databaseUrl: vars.DATABASE_URL, siteKey: b.SITE_KEY ?? '', bridgeSecret: b.BRIDGE_SECRET ?? '' };
}
