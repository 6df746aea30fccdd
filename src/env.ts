/**
 * The Worker's configuration, validated with zod before anything runs (unkey's
 * pattern): a misconfigured deployment fails loudly at the first request instead of
 * answering with half-working auth.
 */
import { z } from 'zod';
import { type ServiceNamespaces, ServiceNamespacesSchema } from './auth/tenancy';
import { type CidrList, parseCidrs } from './webhooks/addresses';

const csv = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );

const WatchdogSchema = z.record(z.string(), z.number().int().positive());

export const ConfigSchema = z
  .object({
    JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
    JWKS_URL: z.url().optional(),
    JWT_ISSUER: z.string().min(1),
    JWT_AUDIENCE: z.string().min(1),
    JWT_ALGORITHMS: csv.pipe(z.array(z.enum(['HS256', 'RS256', 'ES256', 'EdDSA'])).min(1)),
    /** The longest lifetime (exp − iat) a bearer token may have; one without exp is refused. */
    JWT_MAX_TTL_SECONDS: z.coerce.number().int().min(60).default(86_400),
    DATABASE_URL: z.string().min(1, 'DATABASE_URL is required'),
    DB_WS_PROXY: z.string().default(''),
    DEFAULT_SITE_ID: z.string().min(1),
    WATCHDOG_SECONDS: z
      .string()
      .default('{}')
      .transform((s, ctx) => {
        try {
          return WatchdogSchema.parse(JSON.parse(s));
        } catch {
          ctx.addIssue({ code: 'custom', message: 'WATCHDOG_SECONDS must be a JSON object of positive integers' });
          return z.NEVER;
        }
      }),
    CONNECT_TICKET_TTL_SECONDS: z.coerce.number().int().min(10).max(300).default(300),
    /** Queue retries before a command is dead-lettered; keep in step with wrangler.toml max_retries. */
    JOB_MAX_ATTEMPTS: z.coerce.number().int().positive().default(9),
    /** Seconds between redeliveries while a site's bridge is offline: min(base·2^n, cap). */
    JOB_RETRY_BASE_SECONDS: z.coerce.number().int().min(0).default(2),
    JOB_RETRY_CAP_SECONDS: z.coerce.number().int().min(0).default(60),
    /** A command whose lease is not renewed by a heartbeat within this time is handed out again. */
    LEASE_SECONDS: z.coerce.number().int().positive().default(30),
    HEARTBEAT_SECONDS: z.coerce.number().int().positive().default(10),
    /**
     * Whose user ids each service may act for, and its quota (src/auth/tenancy.ts): a JSON object
     * keyed by the service's JWT sub. A service not listed acts for user ids starting with `<sub>:`.
     */
    SERVICE_NAMESPACES: z
      .string()
      .default('{}')
      .transform((s, ctx): ServiceNamespaces => {
        try {
          return ServiceNamespacesSchema.parse(JSON.parse(s));
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: 'SERVICE_NAMESPACES must be a JSON object: {"<service>": {"prefix": "…"} or {"users": […]}}',
          });
          return z.NEVER;
        }
      }),
    /** Active desktops a service may have across all its users (per service in SERVICE_NAMESPACES). */
    SERVICE_MAX_DESKTOPS: z.coerce.number().int().min(0).default(100),
    /** Default idle timeout of a desktop; users may ask for less at create, admins for anything. */
    IDLE_TIMEOUT_MINUTES: z.coerce.number().int().min(1).max(10_080).default(60),
    /** How long before an idle stop, session end or expiry the warning goes out (half the timeout if that is shorter). */
    WARNING_LEAD_MINUTES: z.coerce.number().min(0).max(1440).default(5),
    /** First webhook retry after this many seconds, doubling per try (capped at an hour). */
    WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number().int().min(0).default(10),
    /** Allow http:// webhook URLs (local development); production subscribers must use https. */
    WEBHOOK_ALLOW_HTTP: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /** An admin's all-desktops subscription is delivered this many days after its owner last used the API as an admin. */
    WEBHOOK_ADMIN_DAYS: z.coerce.number().min(0.01).max(365).default(7),
    /** Live webhook subscriptions one user, service or admin may have. */
    WEBHOOK_MAX_PER_OWNER: z.coerce.number().int().min(1).max(1000).default(10),
    /**
     * Address ranges webhooks may be delivered to although they are not public (CIDR, comma-separated,
     * e.g. "127.0.0.0/8" for a local receiver in tests). Empty in production: public addresses only.
     */
    WEBHOOK_PRIVATE_TARGETS: z
      .string()
      .default('')
      .transform((s, ctx): CidrList => {
        const parsed = parseCidrs(s);
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: parsed });
          return z.NEVER;
        }
        return parsed;
      }),
    /**
     * DNS over HTTPS (JSON API) that webhook hosts are resolved with before each delivery, so a
     * name pointing at a private address is refused. https, or http on a loopback address (the
     * local stacks run a relay to the system resolver, which a Worker cannot use).
     */
    WEBHOOK_DNS_RESOLVER: z
      .url()
      .default('https://cloudflare-dns.com/dns-query')
      .refine((u) => {
        const url = new URL(u);
        return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname));
      }, 'WEBHOOK_DNS_RESOLVER must be https (or http on a loopback address)'),
    /** Audit records older than this are deleted by the cron trigger. */
    AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).default(365),
    /** coturn's static-auth-secret: the edge mints short-lived TURN credentials from it (Selkies desktops). */
    TURN_SHARED_SECRET: z.string().min(16, 'TURN_SHARED_SECRET must be at least 16 characters').optional(),
    /** The TURN server browsers and pods reach (a hostname or IPv4 address) and its port. */
    TURN_HOST: z.string().default(''),
    TURN_PORT: z.coerce.number().int().min(1).max(65_535).default(3478),
    /** How long the TURN credentials handed to a browser by /connect last. */
    TURN_BROWSER_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
    /** Snapshots one user may keep across their desktops (taking one more answers 409 SNAPSHOT_QUOTA). */
    SNAPSHOT_MAX_PER_USER: z.coerce.number().int().min(0).max(10_000).default(10),
    /** How long reconciliation lets a VM or connection of a non-existent desktop be, before removing it. */
    RECONCILE_GRACE_SECONDS: z.coerce.number().int().min(0).default(600),
    /** At most this many desktops' leftovers are removed per site and pass; more wait for an admin's confirmation. */
    RECONCILE_MAX_REMOVALS: z.coerce.number().int().min(0).default(5),
    /**
     * Browser origins allowed to call the API (exact `scheme://host[:port]`, comma-separated).
     * Empty: no cross-origin access at all (the API needs none for curl, services or the bridge).
     */
    CORS_ORIGINS: csv
      .pipe(z.array(z.string().refine((o) => URL.canParse(o) && new URL(o).origin === o, 'each entry must be an origin')))
      .transform((origins): ReadonlySet<string> => new Set(origins)),
    /**
     * The period of every [[ratelimits]] binding in wrangler.toml (10 or 60 s); a 429 answers
     * it as Retry-After, since the binding does not say when its window ends.
     */
    RATE_LIMIT_PERIOD_SECONDS: z.coerce
      .number()
      .pipe(z.union([z.literal(10), z.literal(60)]))
      .default(10),
    /** Client addresses (CF-Connecting-IP) never rate limited: your own monitoring, local tooling. */
    RATE_LIMIT_EXEMPT_IPS: csv.transform((ips): ReadonlySet<string> => new Set(ips)),
    // ---- the dashboard (src/ui): sign-in, its session, what its pages may embed ----
    /** OpenID Connect issuer the dashboard signs people in with (authorisation code + PKCE). Unset: no single sign-on. */
    OIDC_ISSUER: z.url().optional(),
    OIDC_CLIENT_ID: z.string().min(1).max(200).optional(),
    /** A secret: confidential clients authenticate with it (client_secret_basic); public clients leave it unset. */
    OIDC_CLIENT_SECRET: z.string().min(1).optional(),
    OIDC_SCOPES: z.string().default('openid profile email'),
    /** The ID token claim holding roles: a name or a dotted path (Keycloak: realm_access.roles). */
    OIDC_ROLES_CLAIM: z
      .string()
      .regex(/^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, 'a claim name or a dotted path')
      .default('roles'),
    /** The value in that claim that makes someone an admin. */
    OIDC_ADMIN_ROLE: z.string().min(1).default('admin'),
    /** Encrypts secrets the edge keeps and must use again (webhook signing secrets); without it a key is derived from JWT_SECRET. */
    ENCRYPTION_KEY: z.string().min(32, 'ENCRYPTION_KEY must be at least 32 characters').optional(),
    /** Signs the dashboard's session cookies; without it a key is derived from JWT_SECRET. */
    SESSION_SECRET: z.string().min(32, 'SESSION_SECRET must be at least 32 characters').optional(),
    /** A session ends after this long without a request from the page (it is renewed at half time), and after SESSION_MAX_HOURS in any case. */
    SESSION_TTL_MINUTES: z.coerce.number().int().min(5).max(1440).default(120),
    SESSION_MAX_HOURS: z.coerce.number().int().min(1).max(168).default(12),
    /**
     * The development sign-in (pick any user and role). Never set in wrangler.toml: `npm run dev` and
     * the test stacks pass it as a --var, and even then it answers only on a loopback address.
     */
    DEV_SIGN_IN: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /**
     * CSP sources the desktop view may frame: your Guacamole and Selkies public URLs
     * (e.g. "https://guac.example.com https://*.desk.example.com"). Empty: any https origin.
     */
    DESKTOP_FRAME_SOURCES: z
      .string()
      .default('')
      .transform((s) => s.split(/[\s,]+/).filter(Boolean))
      .pipe(
        z.array(z.string().regex(/^(https?:\/\/)?[A-Za-z0-9.*:[\]-]+(\/[^\s;,'"]*)?$|^https?:$/, 'each entry must be a CSP host source')),
      ),
  })
  .refine((c) => c.JWT_SECRET || c.JWKS_URL, { message: 'set JWT_SECRET and/or JWKS_URL', path: ['JWT_SECRET'] })
  .refine((c) => !c.OIDC_ISSUER || c.OIDC_CLIENT_ID, { message: 'OIDC_ISSUER needs OIDC_CLIENT_ID', path: ['OIDC_CLIENT_ID'] });

export type Config = z.infer<typeof ConfigSchema>;

/** The generated Env plus tuning variables that deployments (and tests) may set. */
export type Bindings = Env & {
  // Development only (.dev.vars, the test stacks): the relay to the embedded Postgres.
  DB_WS_PROXY?: string;
  JOB_MAX_ATTEMPTS?: string;
  JOB_RETRY_BASE_SECONDS?: string;
  JOB_RETRY_CAP_SECONDS?: string;
  LEASE_SECONDS?: string;
  HEARTBEAT_SECONDS?: string;
  RECONCILE_GRACE_SECONDS?: string;
  RECONCILE_MAX_REMOVALS?: string;
  IDLE_TIMEOUT_MINUTES?: string;
  JWT_MAX_TTL_SECONDS?: string;
  SERVICE_NAMESPACES?: string;
  SERVICE_MAX_DESKTOPS?: string;
  WEBHOOK_RETRY_BASE_SECONDS?: string;
  WEBHOOK_ALLOW_HTTP?: string;
  WEBHOOK_PRIVATE_TARGETS?: string;
  WEBHOOK_MAX_PER_OWNER?: string;
  WEBHOOK_ADMIN_DAYS?: string;
  WEBHOOK_DNS_RESOLVER?: string;
  AUDIT_RETENTION_DAYS?: string;
  TURN_BROWSER_TTL_SECONDS?: string;
  WARNING_LEAD_MINUTES?: string;
  // The dashboard: secrets (wrangler secret put) and settings wrangler.toml leaves to their defaults.
  OIDC_CLIENT_SECRET?: string;
  OIDC_SCOPES?: string;
  OIDC_ADMIN_ROLE?: string;
  SESSION_SECRET?: string;
  SESSION_MAX_HOURS?: string;
  DEV_SIGN_IN?: string;
};

const cache = new WeakMap<object, Config>();

/** Parses once per env object (the runtime hands the same object to every request). */
export function config(env: Bindings): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const raw = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, typeof v === 'string' && v === '' ? undefined : v]));
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid Worker configuration: ${detail}`);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
