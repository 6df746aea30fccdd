/**
 * The bridge's configuration, read once from the environment and validated before
 * anything connects (fail fast, list every bad variable at once). Secrets stay in this
 * object and in the drivers; `configSummary` is the only form that may be logged.
 */
import { z } from 'zod';
import { LOG_LEVELS, type LogLevel } from './logger';

export interface BridgeConfig {
  edgeUrl: string;
  siteId: string;
  siteKey: string;
  proxmox: {
    url: string;
    tokenId: string;
    tokenSecret: string;
    node: string;
    templateVmid: number;
    /** Named templates a DesktopSpec may ask for (`template`); the default is templateVmid. */
    templates: Record<string, number>;
    vmidRange: { min: number; max: number };
    linkedClone: boolean;
  };
  guacamole: { url: string; publicUrl: string; username: string; password: string; dataSource: string };
  /** Selkies desktops on the site's Kubernetes; null when the site runs VMs only. */
  selkies: SelkiesConfig | null;
  /** Derives per-desktop passwords; never leaves this process. */
  bridgeSecret: string;
  concurrency: number;
  shutdownTimeoutSeconds: number;
  ipWaitSeconds: number;
  /** How long SIGTERM waits for running commands before the process exits anyway. */
  drainTimeoutSeconds: number;
  logLevel: LogLevel;
}

export interface SelkiesConfig {
  kubernetesUrl: string;
  token: string;
  namespace: string;
  routeDomain: string;
  publicScheme: 'https' | 'http';
  publicPort: number;
  routeOrigin: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid bridge configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const url = () => z.url({ protocol: /^(http|https|ws|wss)$/, error: 'must be an http(s) URL' });
// Trailing slashes are dropped so paths can be appended with a plain template string.
const httpUrl = (fallback: string) =>
  url()
    .default(fallback)
    .transform((u) => u.replace(/\/+$/, ''));
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(min).max(max).default(fallback);
const required = (what: string) => z.string({ error: `required (${what})` }).min(1, `required (${what})`);

const VMID_RANGE = /^(\d{3,9})-(\d{3,9})$/;
const TEMPLATE_LIST = /^([a-z0-9][a-z0-9._-]*=\d{3,9})(,[a-z0-9][a-z0-9._-]*=\d{3,9})*$/i;

// Names are the environment variables so a failure points at what to fix.
export const EnvSchema = z.object({
  EDGE_URL: httpUrl('http://127.0.0.1:8787'),
  SITE_ID: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and dashes')
    .default('local'),
  SITE_KEY: required('the key the edge issued for this site'),
  PROXMOX_URL: httpUrl('http://127.0.0.1:8006/api2/json'),
  PROXMOX_TOKEN_ID: z
    .string()
    .regex(/^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]*$/, 'must look like user@realm!tokenname')
    .default('root@pam!dev'),
  // The proxmox-api client refuses anything but a lower-case UUID (contracts/proxmox §13).
  PROXMOX_TOKEN_SECRET: z
    .string({ error: 'required (the API token secret)' })
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID'),
  PROXMOX_NODE: z
    .string()
    .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a node name')
    .default('pve1'),
  PROXMOX_TEMPLATE_VMID: int(9000, 100, 999_999_999),
  PROXMOX_TEMPLATES: z.string().regex(TEMPLATE_LIST, 'must look like name=vmid,name=vmid').optional(),
  PROXMOX_VMID_RANGE: z
    .string()
    .regex(VMID_RANGE, 'must look like 20000-29999')
    .refine((r) => {
      const [, lo, hi] = VMID_RANGE.exec(r) ?? [];
      return Number(lo) >= 100 && Number(lo) <= Number(hi);
    }, 'must be low-high with 100 <= low <= high')
    .default('20000-29999'),
  PROXMOX_LINKED_CLONE: z.stringbool({ error: 'must be true or false' }).default(true),
  GUACAMOLE_URL: httpUrl('http://127.0.0.1:8080/guacamole'),
  GUACAMOLE_PUBLIC_URL: url()
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  GUACAMOLE_USERNAME: required('a Guacamole administrator'),
  GUACAMOLE_PASSWORD: required("the Guacamole administrator's password"),
  GUACAMOLE_DATA_SOURCE: z.string().min(1).default('postgresql'),
  // Selkies desktops on Kubernetes (optional: without KUBERNETES_URL this site runs VMs only).
  KUBERNETES_URL: url()
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  KUBERNETES_TOKEN: z.string().min(1).optional(),
  KUBERNETES_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name')
    .default('desktops'),
  /** Sessions get `desk-<id>.<domain>`: one hostname each (the Selkies web client breaks behind a path prefix). */
  SELKIES_ROUTE_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+$/, 'must be a DNS domain')
    .default('desk.localhost'),
  /** How browsers reach the routes: scheme and port of the ingress (Traefik). */
  SELKIES_PUBLIC_SCHEME: z.enum(['https', 'http']).default('https'),
  SELKIES_PUBLIC_PORT: int(443, 1, 65_535),
  /** Where the bridge reaches the ingress to check a route (default: the public address). */
  SELKIES_ROUTE_ORIGIN: url()
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  BRIDGE_SECRET: z.string({ error: 'required (at least 32 random characters)' }).min(32, 'must be at least 32 characters'),
  BRIDGE_CONCURRENCY: int(32, 1, 1000),
  SHUTDOWN_TIMEOUT_SECONDS: int(60, 1, 3600),
  IP_WAIT_SECONDS: int(300, 1, 3600),
  DRAIN_TIMEOUT_SECONDS: int(25, 0, 3600),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): BridgeConfig {
  // An empty assignment in an env file means "not set", not "set to nothing".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    // Issues carry the variable name and our message, never the offending value.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`));
  }
  const e = parsed.data;
  const [, lo, hi] = VMID_RANGE.exec(e.PROXMOX_VMID_RANGE) ?? [];
  const templates = Object.fromEntries(
    (e.PROXMOX_TEMPLATES ?? '')
      .split(',')
      .filter(Boolean)
      .map((pair) => {
        const [name = '', vmid = ''] = pair.split('=');
        return [name.trim(), Number(vmid)];
      }),
  );
  return {
    edgeUrl: e.EDGE_URL,
    siteId: e.SITE_ID,
    siteKey: e.SITE_KEY,
    proxmox: {
      url: e.PROXMOX_URL,
      tokenId: e.PROXMOX_TOKEN_ID,
      tokenSecret: e.PROXMOX_TOKEN_SECRET,
      node: e.PROXMOX_NODE,
      templateVmid: e.PROXMOX_TEMPLATE_VMID,
      templates,
      vmidRange: { min: Number(lo), max: Number(hi) },
      linkedClone: e.PROXMOX_LINKED_CLONE,
    },
    guacamole: {
      url: e.GUACAMOLE_URL,
      publicUrl: e.GUACAMOLE_PUBLIC_URL ?? e.GUACAMOLE_URL,
      username: e.GUACAMOLE_USERNAME,
      password: e.GUACAMOLE_PASSWORD,
      dataSource: e.GUACAMOLE_DATA_SOURCE,
    },
    selkies: e.KUBERNETES_URL
      ? {
          kubernetesUrl: e.KUBERNETES_URL,
          token: e.KUBERNETES_TOKEN ?? '',
          namespace: e.KUBERNETES_NAMESPACE,
          routeDomain: e.SELKIES_ROUTE_DOMAIN,
          publicScheme: e.SELKIES_PUBLIC_SCHEME,
          publicPort: e.SELKIES_PUBLIC_PORT,
          routeOrigin: e.SELKIES_ROUTE_ORIGIN,
        }
      : null,
    bridgeSecret: e.BRIDGE_SECRET,
    concurrency: e.BRIDGE_CONCURRENCY,
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    ipWaitSeconds: e.IP_WAIT_SECONDS,
    drainTimeoutSeconds: e.DRAIN_TIMEOUT_SECONDS,
    logLevel: e.LOG_LEVEL,
  };
}

/** The configuration with every secret left out: safe to log. */
export function configSummary(config: BridgeConfig): Record<string, unknown> {
  return {
    edgeUrl: withoutUserinfo(config.edgeUrl),
    siteId: config.siteId,
    siteKey: '(set)',
    proxmox: {
      url: withoutUserinfo(config.proxmox.url),
      tokenId: config.proxmox.tokenId,
      tokenSecret: '(set)',
      node: config.proxmox.node,
      templateVmid: config.proxmox.templateVmid,
      templates: config.proxmox.templates,
      vmidRange: `${config.proxmox.vmidRange.min}-${config.proxmox.vmidRange.max}`,
      linkedClone: config.proxmox.linkedClone,
    },
    guacamole: {
      url: withoutUserinfo(config.guacamole.url),
      publicUrl: withoutUserinfo(config.guacamole.publicUrl),
      username: config.guacamole.username,
      password: '(set)',
      dataSource: config.guacamole.dataSource,
    },
    selkies: config.selkies
      ? {
          ...config.selkies,
          kubernetesUrl: withoutUserinfo(config.selkies.kubernetesUrl),
          token: config.selkies.token ? '(set)' : '(none)',
        }
      : null,
    bridgeSecret: '(set)',
    concurrency: config.concurrency,
    shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
    ipWaitSeconds: config.ipWaitSeconds,
    drainTimeoutSeconds: config.drainTimeoutSeconds,
    logLevel: config.logLevel,
  };
}

// A URL may carry credentials (https://user:pass@host); the summary must not.
function withoutUserinfo(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/+$/, '');
  } catch {
    return '(unparseable URL)';
  }
}
