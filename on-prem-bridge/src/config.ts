/**
 * The bridge's configuration, read once from the environment and validated before
 * anything connects (fail fast, list every bad variable at once). Secrets stay in this
 * object and in the drivers; `configSummary` is the only form that may be logged.
 */
import { z } from 'zod';
import { parseNetworks, type Ipv4Network } from './guest-address';
import { LOG_LEVELS, type LogLevel } from './logger';
import { cleartextAllowed, type Trust, trustFrom } from './tls-trust';

/** How a template's guests get their login, and so what Guacamole's connection carries (README "Connect your own site"). */
export const DESKTOP_LOGINS = ['cloud-init', 'vnc-password', 'rdp-nla'] as const;
export type DesktopLogin = (typeof DESKTOP_LOGINS)[number];

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
    /** How each template (by vmid) sets its guests' login; templates not listed use `defaultLogin`. */
    logins: Record<number, DesktopLogin>;
    defaultLogin: DesktopLogin;
    /** Where guests' addresses must lie before Guacamole is pointed at them (none = any routable unicast address). */
    guestNetworks: Ipv4Network[];
    trust: Trust;
    vmidRange: { min: number; max: number };
    linkedClone: boolean;
  };
  guacamole: { url: string; publicUrl: string; username: string; password: string; dataSource: string; trust: Trust };
  /** The VNC password baked into `vnc-password` templates (VNC authentication uses its first 8 characters). */
  vncPassword: string | null;
  /** How long a started desktop may take to answer on its VNC/RDP port before the start fails. */
  desktopWaitSeconds: number;
  /** Where the bridge records a desktop's VMID before cloning it, so a resumed command finds the clone. */
  stateDir: string;
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
  /** Where the Prometheus endpoint listens ({ host, port }); null: none. */
  metricsListen: { host: string; port: number } | null;
}

export interface SelkiesConfig {
  kubernetesUrl: string;
  token: string;
  namespace: string;
  routeDomain: string;
  publicScheme: 'https' | 'http';
  publicPort: number;
  routeOrigin: string | undefined;
  trust: Trust;
  /** How the bridge checks a route's certificate (the wildcard certificate's CA). */
  routeTrust: Trust;
  /** Secret with the wildcard certificate that routes name in their TLS section (else Traefik answers with its default one). */
  routeTlsSecretName: string | undefined;
  useIngressRoute: boolean;
  /** Networks the desktop pods may not reach (NetworkPolicy): the cluster's pod and service ranges, link-local. */
  blockedCidrs: string[];
  /** How long a session's image may take to pull (the kubelet retries ErrImagePull until then). */
  pullDeadlineSeconds: number;
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
const LOGIN = `(?::(?:${DESKTOP_LOGINS.join('|')}))?`;
const TEMPLATE_LIST = new RegExp(`^([a-z0-9][a-z0-9._-]*=\\d{3,9}${LOGIN})(,[a-z0-9][a-z0-9._-]*=\\d{3,9}${LOGIN})*$`, 'i');
const optionalFile = () => z.string().min(1).optional();
const fingerprint = () => z.string().min(1).optional();

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
  // The proxmox-api client refuses anything but a lower-case UUID (proxmox-api's constructor.ts).
  PROXMOX_TOKEN_SECRET: z
    .string({ error: 'required (the API token secret)' })
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID'),
  PROXMOX_NODE: z
    .string()
    .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a node name')
    .default('pve1'),
  PROXMOX_TEMPLATE_VMID: int(9000, 100, 999_999_999),
  PROXMOX_TEMPLATES: z
    .string()
    .regex(TEMPLATE_LIST, `must look like name=vmid[:login],… (login: ${DESKTOP_LOGINS.join(', ')})`)
    .optional(),
  PROXMOX_TEMPLATE_LOGIN: z.enum(DESKTOP_LOGINS, { error: `must be one of ${DESKTOP_LOGINS.join(', ')}` }).default('cloud-init'),
  PROXMOX_GUEST_NETWORKS: z
    .string()
    .refine((v) => parseNetworks(v) !== null, 'must be IPv4 networks in CIDR form, comma-separated (e.g. 10.20.0.0/16)')
    .optional(),
  PROXMOX_CA_FILE: optionalFile(),
  PROXMOX_FINGERPRINT: fingerprint(),
  DESKTOP_VNC_PASSWORD: z.string().min(6, 'must be at least 6 characters').optional(),
  DESKTOP_WAIT_SECONDS: int(180, 1, 3600),
  BRIDGE_STATE_DIR: z.string().min(1).default('.local/bridge-state'),
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
  GUACAMOLE_CA_FILE: optionalFile(),
  GUACAMOLE_FINGERPRINT: fingerprint(),
  // Selkies desktops on Kubernetes (optional: without KUBERNETES_URL this site runs VMs only).
  KUBERNETES_URL: url()
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  KUBERNETES_TOKEN: z.string().min(1).optional(),
  KUBERNETES_CA_FILE: optionalFile(),
  KUBERNETES_FINGERPRINT: fingerprint(),
  SELKIES_ROUTE_CA_FILE: optionalFile(),
  SELKIES_ROUTE_CERTIFICATE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name')
    .optional(),
  SELKIES_INGRESS_ROUTE: z.stringbool({ error: 'must be true or false' }).default(false),
  // K3s's defaults: pods 10.42.0.0/16, services 10.43.0.0/16; link-local holds cloud metadata services.
  KUBERNETES_BLOCKED_CIDRS: z
    .string()
    .refine((v) => parseNetworks(v) !== null, 'must be IPv4 networks in CIDR form, comma-separated')
    .default('10.42.0.0/16,10.43.0.0/16,169.254.0.0/16'),
  SELKIES_PULL_DEADLINE_SECONDS: int(900, 10, 6 * 3600),
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
  /** host:port where Prometheus scrapes GET /metrics; unset: no listener (the bridge otherwise only dials out). */
  METRICS_LISTEN: z
    .string()
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9464')
    .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port must be at most 65535')
    .optional(),
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
  const templates: Record<string, number> = {};
  const logins: Record<number, DesktopLogin> = {};
  for (const pair of (e.PROXMOX_TEMPLATES ?? '').split(',').filter(Boolean)) {
    const [name = '', rest = ''] = pair.split('=');
    const [vmid = '', login] = rest.split(':');
    templates[name.trim()] = Number(vmid);
    if (login) logins[Number(vmid)] = login as DesktopLogin;
  }
  const problems: string[] = [];
  // Credentials never cross a network in clear: plain http(s)/ws only to this machine.
  const urls: [string, string | undefined][] = [
    ['EDGE_URL', e.EDGE_URL],
    ['PROXMOX_URL', e.PROXMOX_URL],
    ['GUACAMOLE_URL', e.GUACAMOLE_URL],
    ['KUBERNETES_URL', e.KUBERNETES_URL],
    ['SELKIES_ROUTE_ORIGIN', e.SELKIES_ROUTE_ORIGIN],
  ];
  for (const [name, value] of urls) {
    if (value && !cleartextAllowed(value))
      problems.push(
        `${name}: plain ${new URL(value).protocol.replace(':', '')} is only allowed to a loopback address; use ${new URL(value).protocol.startsWith('ws') ? 'wss' : 'https'}://`,
      );
  }
  const trust = (caVar: string, file: string | undefined, pin: string | undefined): Trust => {
    try {
      return trustFrom(caVar, file, pin);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
      return { kind: 'system' };
    }
  };
  const proxmoxTrust = trust('PROXMOX_CA_FILE', e.PROXMOX_CA_FILE, e.PROXMOX_FINGERPRINT);
  const guacamoleTrust = trust('GUACAMOLE_CA_FILE', e.GUACAMOLE_CA_FILE, e.GUACAMOLE_FINGERPRINT);
  const kubernetesTrust = trust('KUBERNETES_CA_FILE', e.KUBERNETES_CA_FILE, e.KUBERNETES_FINGERPRINT);
  const routeTrust = trust('SELKIES_ROUTE_CA_FILE', e.SELKIES_ROUTE_CA_FILE, undefined);
  const usesVncPassword = e.PROXMOX_TEMPLATE_LOGIN === 'vnc-password' || Object.values(logins).includes('vnc-password');
  if (usesVncPassword && !e.DESKTOP_VNC_PASSWORD)
    problems.push('DESKTOP_VNC_PASSWORD: required (the VNC password baked into the vnc-password templates)');
  if (problems.length) throw new ConfigError(problems);
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
      logins,
      defaultLogin: e.PROXMOX_TEMPLATE_LOGIN,
      guestNetworks: e.PROXMOX_GUEST_NETWORKS ? (parseNetworks(e.PROXMOX_GUEST_NETWORKS) ?? []) : [],
      trust: proxmoxTrust,
      vmidRange: { min: Number(lo), max: Number(hi) },
      linkedClone: e.PROXMOX_LINKED_CLONE,
    },
    vncPassword: e.DESKTOP_VNC_PASSWORD ?? null,
    desktopWaitSeconds: e.DESKTOP_WAIT_SECONDS,
    stateDir: e.BRIDGE_STATE_DIR,
    guacamole: {
      url: e.GUACAMOLE_URL,
      publicUrl: e.GUACAMOLE_PUBLIC_URL ?? e.GUACAMOLE_URL,
      username: e.GUACAMOLE_USERNAME,
      password: e.GUACAMOLE_PASSWORD,
      dataSource: e.GUACAMOLE_DATA_SOURCE,
      trust: guacamoleTrust,
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
          trust: kubernetesTrust,
          routeTrust,
          routeTlsSecretName: e.SELKIES_ROUTE_CERTIFICATE,
          useIngressRoute: e.SELKIES_INGRESS_ROUTE,
          blockedCidrs: (parseNetworks(e.KUBERNETES_BLOCKED_CIDRS) ?? []).map((n) => n.text),
          pullDeadlineSeconds: e.SELKIES_PULL_DEADLINE_SECONDS,
        }
      : null,
    bridgeSecret: e.BRIDGE_SECRET,
    concurrency: e.BRIDGE_CONCURRENCY,
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    ipWaitSeconds: e.IP_WAIT_SECONDS,
    drainTimeoutSeconds: e.DRAIN_TIMEOUT_SECONDS,
    logLevel: e.LOG_LEVEL,
    metricsListen: e.METRICS_LISTEN ? hostPort(e.METRICS_LISTEN) : null,
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
      logins: config.proxmox.logins,
      defaultLogin: config.proxmox.defaultLogin,
      guestNetworks: config.proxmox.guestNetworks.map((n) => n.text),
      trust: trustSummary(config.proxmox.trust),
      vmidRange: `${config.proxmox.vmidRange.min}-${config.proxmox.vmidRange.max}`,
      linkedClone: config.proxmox.linkedClone,
    },
    guacamole: {
      url: withoutUserinfo(config.guacamole.url),
      publicUrl: withoutUserinfo(config.guacamole.publicUrl),
      username: config.guacamole.username,
      password: '(set)',
      dataSource: config.guacamole.dataSource,
      trust: trustSummary(config.guacamole.trust),
    },
    vncPassword: config.vncPassword ? '(set)' : '(none)',
    desktopWaitSeconds: config.desktopWaitSeconds,
    stateDir: config.stateDir,
    selkies: config.selkies
      ? {
          ...config.selkies,
          kubernetesUrl: withoutUserinfo(config.selkies.kubernetesUrl),
          token: config.selkies.token ? '(set)' : '(none)',
          trust: trustSummary(config.selkies.trust),
          routeTrust: trustSummary(config.selkies.routeTrust),
        }
      : null,
    bridgeSecret: '(set)',
    concurrency: config.concurrency,
    shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
    ipWaitSeconds: config.ipWaitSeconds,
    drainTimeoutSeconds: config.drainTimeoutSeconds,
    logLevel: config.logLevel,
    metricsListen: config.metricsListen ? `${config.metricsListen.host}:${config.metricsListen.port}` : null,
  };
}

/** CA bundles are long and public, fingerprints public: the summary names the file or the fingerprint. */
function trustSummary(trust: Trust): string {
  if (trust.kind === 'ca') return `ca:${trust.file}`;
  if (trust.kind === 'fingerprint') return `sha256:${trust.sha256}`;
  return 'system';
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

/** "127.0.0.1:9464" or "[::1]:9464" → { host, port } (brackets dropped for node:http). */
function hostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(value.slice(at + 1)) };
}
