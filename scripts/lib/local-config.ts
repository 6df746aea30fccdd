/**
 * The local stack's secrets, made on first use and kept out of the repo: `.dev.vars`
 * for the edge (wrangler dev reads it) and `.local/bridge.env` for the bridge. Fresh
 * random values per machine, so no secret is ever committed.
 */
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEV_VARS = join(ROOT, '.dev.vars');
export const BRIDGE_ENV = join(ROOT, '.local/bridge.env');

/** Fixed local addresses (DESIGN.md "Local default"). */
export const LOCAL = {
  edgePort: 8787,
  pgPort: 5488,
  wsRelayPort: 5489,
  proxmoxPort: 8006,
  guacamolePort: 8080,
  siteId: 'local',
  proxmoxTokenId: 'root@pam!dev',
  proxmoxTokenSecret: '11111111-2222-3333-4444-555555555555',
  guacamoleUser: 'guacadmin',
  guacamolePassword: 'guacadmin',
  kubernetesPort: 6443,
  kubernetesToken: 'dev-token',
} as const;

/**
 * The bridge's Kubernetes settings against the local simulator: sessions are published
 * at http://desk-<id>.desk.localhost:<port>/ (browsers resolve *.localhost to loopback,
 * and the simulator plays Traefik for those hosts).
 */
export function selkiesBridgeEnv(kubernetesPort: number): Record<string, string> {
  return {
    KUBERNETES_URL: `http://127.0.0.1:${kubernetesPort}`,
    KUBERNETES_TOKEN: LOCAL.kubernetesToken,
    KUBERNETES_NAMESPACE: 'desktops',
    SELKIES_ROUTE_DOMAIN: 'desk.localhost',
    SELKIES_PUBLIC_SCHEME: 'http',
    SELKIES_PUBLIC_PORT: String(kubernetesPort),
    SELKIES_ROUTE_ORIGIN: `http://127.0.0.1:${kubernetesPort}`,
  };
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

/** Reads the local secrets, creating whichever file is missing. */
export function ensureLocalConfig(): LocalConfig {
  const vars = parseEnvFile(DEV_VARS);
  if (!vars.JWT_SECRET || !vars.DATABASE_URL || !vars.TURN_SHARED_SECRET || !vars.ENCRYPTION_KEY) {
    vars.JWT_SECRET ||= randomBytes(32).toString('hex');
    vars.ENCRYPTION_KEY ||= randomBytes(32).toString('hex');
    vars.JWKS_URL ??= '';
    vars.TURN_SHARED_SECRET ||= randomBytes(24).toString('hex');
    vars.DATABASE_URL ||= `postgres://postgres:postgres@127.0.0.1:${LOCAL.pgPort}/postgres`;
    writeEnvFile(DEV_VARS, vars, 'Local secrets of the edge Worker, made by npm run dev (see .dev.vars.example). Not committed.');
  }
  const bridge = parseEnvFile(BRIDGE_ENV);
  const defaults: Record<string, string> = {
    SITE_ID: LOCAL.siteId,
    SITE_KEY: `sk_${randomBytes(32).toString('base64url')}`,
    BRIDGE_SECRET: randomBytes(32).toString('hex'),
    EDGE_URL: `http://127.0.0.1:${LOCAL.edgePort}`,
    PROXMOX_URL: `http://127.0.0.1:${LOCAL.proxmoxPort}/api2/json`,
    PROXMOX_TOKEN_ID: LOCAL.proxmoxTokenId,
    PROXMOX_TOKEN_SECRET: LOCAL.proxmoxTokenSecret,
    GUACAMOLE_URL: `http://127.0.0.1:${LOCAL.guacamolePort}/guacamole`,
    GUACAMOLE_USERNAME: LOCAL.guacamoleUser,
    GUACAMOLE_PASSWORD: LOCAL.guacamolePassword,
    ...selkiesBridgeEnv(LOCAL.kubernetesPort),
  };
  // Keep what exists (the site key the database knows), add what a newer release needs.
  if (Object.keys(defaults).some((k) => !bridge[k])) {
    writeEnvFile(BRIDGE_ENV, { ...defaults, ...bridge }, 'Local configuration of the on-prem bridge, made by npm run dev. Not committed.');
  }
  const b = parseEnvFile(BRIDGE_ENV);
  return { jwtSecret: vars.JWT_SECRET, databaseUrl: vars.DATABASE_URL, siteKey: b.SITE_KEY ?? '', bridgeSecret: b.BRIDGE_SECRET ?? '' };
}
