/**
 * The rules of `npm run deploy:check`: what a production configuration of the edge must
 * hold, judged offline from what `wrangler deploy` would upload (the resolved wrangler
 * configuration) and the secrets that will be set (names, and values where known). Each
 * rule answers rows of a table; any `fail` row makes the check fail. Secret values are
 * never part of a row.
 */
import { BlockList, isIP } from 'node:net';
import type { Unstable_Config } from 'wrangler';
import { ConfigSchema } from '../../src/env';

export type Status = 'pass' | 'warn' | 'fail';
export interface CheckRow {
  status: Status;
  check: string;
  detail: string;
}

/** The parts of a resolved wrangler configuration the rules read. */
export type WorkerConfig = Pick<Unstable_Config, 'vars' | 'durable_objects' | 'migrations' | 'queues' | 'ratelimits' | 'triggers'>;

export interface Deployment {
  config: WorkerConfig;
  /** With `--env`: its name, whether the file has that section, and the top level to compare bindings with. */
  env?: { name: string; defined: boolean; topLevel: WorkerConfig };
  /** Every secret that will be set: its value, or null when only the name is known (`wrangler secret list`). */
  secrets: ReadonlyMap<string, string | null>;
  /** The secrets the Worker reads (.dev.vars.example). */
  secretNames: readonly string[];
}

/** Switches for development and tests that a deployed Worker must not have on. */
const DEVELOPMENT_SWITCHES = ['DEV_SIGN_IN', 'WEBHOOK_ALLOW_HTTP'];
/** The development issuer of `npm run token` and the local stack. */
const LOCAL_ISSUER = 'cdaas-local';
/** Keys the operator generates (provider-issued ones such as OIDC_CLIENT_SECRET are not judged). */
const isGeneratedKey = (name: string) => /(_SECRET|_KEY)$/.test(name) && name !== 'OIDC_CLIENT_SECRET';
/** 128 bits: what a random key must carry at least, as estimated from its length and alphabet. */
const MIN_KEY_BITS = 128;

export function checkDeployment(d: Deployment): CheckRow[] {
  const vars = stringVars(d.config.vars);
  const known = new Map<string, string | null>([...Object.entries(vars), ...d.secrets]);
  const isSet = (name: string) => known.has(name) && known.get(name) !== '';
  return [
    ...environmentRows(d),
    ...loopbackRows(vars, d.secrets),
    ...bothVarAndSecret(vars, d.secrets),
    ...secretRows(d, vars, isSet),
    ...keyStrengthRows(d.secrets),
    ...schemaRows(d, vars),
    ...browserRows(vars),
    ...developmentSwitchRows(known),
    ...httpsRows(vars, d.secrets),
    ...databaseRows(vars, d.secrets),
    ...queueRows(d.config, vars),
    ...durableObjectRows(d.config),
    ...cronRows(d.config),
    ...rateLimitRows(d.config, vars),
  ];
}

const row = (status: Status, check: string, detail: string): CheckRow => ({ status, check, detail });

function stringVars(vars: WorkerConfig['vars']): Record<string, string> {
  return Object.fromEntries(Object.entries(vars ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

// ---- the environment section ------------------------------------------------------------

function environmentRows(d: Deployment): CheckRow[] {
  if (!d.env) return [];
  const { name, defined, topLevel } = d.env;
  if (!defined) return [row('fail', `[env.${name}]`, `wrangler.toml has no [env.${name}] section`)];
  // wrangler does not inherit vars or bindings into an environment: each must be repeated there.
  const names = (c: WorkerConfig) => [
    ...(c.durable_objects?.bindings ?? []).map((b) => `durable object ${b.name}`),
    ...(c.queues?.producers ?? []).map((p) => `queue producer ${p.binding}`),
    ...(c.queues?.consumers ?? []).map((q) => `queue consumer ${q.queue}`),
    ...(c.ratelimits ?? []).map((r) => `rate limit ${r.name}`),
  ];
  const have = new Set(names(d.config));
  const missing = names(topLevel).filter((n) => !have.has(n));
  return [
    missing.length > 0
      ? row('fail', `[env.${name}] bindings`, `missing (wrangler does not inherit them): ${missing.join(', ')}`)
      : row('pass', `[env.${name}] bindings`, 'every binding of the top level is repeated'),
  ];
}

// ---- loopback and localhost ---------------------------------------------------------------

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether a host name or address (in any notation URL parsing accepts) is the machine itself. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The loopback hosts a value names: each URL, host, host:port or host:port/path in it
 * (separated by spaces or commas). WHATWG URL parsing normalises 127.1, 0x7f000001 and
 * the like; bare numbers (timeouts, ports) are not read as addresses.
 */
export function loopbackHostsIn(value: string): string[] {
  const found: string[] = [];
  for (const token of value.split(/[\s,;]+/).filter(Boolean)) {
    if (/^\d+$/.test(token) || !/[.:a-z]/i.test(token)) continue;
    const candidate = token.includes('://') ? token : `http://${token}`;
    if (!URL.canParse(candidate)) continue;
    const host = new URL(candidate).hostname;
    if (host && isLoopbackHost(host)) found.push(host);
  }
  return found;
}

function loopbackRows(vars: Record<string, string>, secrets: Deployment['secrets']): CheckRow[] {
  const rows: CheckRow[] = [];
  for (const [name, value] of Object.entries(vars)) {
    const hosts = loopbackHostsIn(value);
    if (hosts.length > 0)
      rows.push(row('fail', `${name}: no loopback`, `names ${hosts.join(', ')}: a development value (it belongs in .dev.vars)`));
  }
  for (const [name, value] of secrets) {
    // Keys are random text, not addresses: reading one as a host could only mislead.
    if (value === null || /(_SECRET|_KEY)$/.test(name)) continue;
    if (loopbackHostsIn(value).length > 0) rows.push(row('fail', `${name}: no loopback`, 'the secret points at a loopback address'));
  }
  return rows.length > 0 ? rows : [row('pass', 'no loopback values', 'no var or secret names localhost or a loopback address')];
}

function bothVarAndSecret(vars: Record<string, string>, secrets: Deployment['secrets']): CheckRow[] {
  const both = [...secrets.keys()].filter((n) => n in vars);
  return both.map((n) =>
    row('fail', `${n}: var or secret`, 'set both as a [vars] entry and as a secret: keep one (the Worker sees one binding per name)'),
  );
}

// ---- secrets --------------------------------------------------------------------------------

/** Whether the Worker's schema refuses to start without this setting. */
function requiredBySchema(name: string): boolean {
  const field = (ConfigSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } } | undefined>)[name];
  return field !== undefined && !field.safeParse(undefined).success;
}

function secretRows(d: Deployment, vars: Record<string, string>, isSet: (n: string) => boolean): CheckRow[] {
  const rows: CheckRow[] = [];
  const put = (n: string) => `wrangler secret put ${n}`;
  for (const name of d.secretNames.filter(requiredBySchema)) {
    rows.push(isSet(name) ? row('pass', `secret ${name}`, 'set') : row('fail', `secret ${name}`, `missing: ${put(name)}`));
  }
  rows.push(
    isSet('JWT_SECRET') || isSet('JWKS_URL')
      ? row(
          'pass',
          'API token keys',
          [isSet('JWT_SECRET') && 'JWT_SECRET (HS256)', isSet('JWKS_URL') && 'JWKS_URL'].filter(Boolean).join(' and '),
        )
      : row(
          'fail',
          'API token keys',
          `neither JWT_SECRET nor JWKS_URL: no bearer token can verify (${put('JWT_SECRET')}, or set JWKS_URL)`,
        ),
  );
  rows.push(...derivedKeyRows(isSet, put));
  if (!isSet('TURN_HOST')) rows.push(row('warn', 'TURN', 'TURN_HOST is empty: WebRTC (Selkies) desktops are refused'));
  else if (!isSet('TURN_SHARED_SECRET'))
    rows.push(row('fail', 'secret TURN_SHARED_SECRET', `missing while TURN_HOST is set: ${put('TURN_SHARED_SECRET')}`));
  else rows.push(row('pass', 'TURN', `${vars.TURN_HOST || 'TURN_HOST (a secret)'} with TURN_SHARED_SECRET`));
  if (vars.JWT_ISSUER === LOCAL_ISSUER)
    rows.push(row('warn', 'JWT_ISSUER', `"${LOCAL_ISSUER}" is the development issuer: set your identity provider's (or your own) issuer`));
  const strangers = [...d.secrets.keys()].filter((n) => !(n in ConfigSchema.shape) && !d.secretNames.includes(n));
  if (strangers.length > 0) rows.push(row('warn', 'unknown secrets', `the Worker reads none of: ${strangers.join(', ')} (a typo?)`));
  return rows;
}

/**
 * Keys the Worker derives from JWT_SECRET when they are unset: a deployment should have its own,
 * so rotating JWT_SECRET does not sign everyone out or make stored webhook secrets unreadable.
 */
const DERIVED_KEYS = [
  { name: 'SESSION_SECRET', what: 'dashboard sessions are signed', neededWhen: 'OIDC_ISSUER' },
  { name: 'ENCRYPTION_KEY', what: 'webhook signing secrets are encrypted' },
] as const;

function derivedKeyRows(isSet: (n: string) => boolean, put: (n: string) => string): CheckRow[] {
  return DERIVED_KEYS.flatMap((k): CheckRow[] => {
    if (isSet(k.name)) return [row('pass', `secret ${k.name}`, 'set')];
    if (isSet('JWT_SECRET'))
      return [row('warn', `secret ${k.name}`, `unset: ${k.what} with a key derived from JWT_SECRET (${put(k.name)})`)];
    if (!('neededWhen' in k) || isSet(k.neededWhen))
      return [row('fail', `secret ${k.name}`, `missing: ${k.what} with no key (${put(k.name)})`)];
    return [];
  });
}

/** Bits a random key of this text carries at most, from its length and the alphabet it is written in. */
export function estimatedBits(key: string): number {
  const alphabet = /^[0-9a-f]+$/i.test(key) ? 16 : /^[A-Za-z0-9+/_=-]+$/.test(key) ? 64 : 94;
  return Math.floor(key.length * Math.log2(alphabet));
}

function keyStrengthRows(secrets: Deployment['secrets']): CheckRow[] {
  const rows: CheckRow[] = [];
  for (const [name, value] of secrets) {
    if (value === null || !isGeneratedKey(name)) continue;
    const bits = estimatedBits(value);
    const distinct = new Set(value).size;
    if (bits < MIN_KEY_BITS || distinct < 8)
      rows.push(
        row(
          'fail',
          `${name} strength`,
          `${value.length} characters, ${distinct} distinct: under ${MIN_KEY_BITS} random bits (use openssl rand -hex 32)`,
        ),
      );
    else if (/changeme|example|password|secret|test/i.test(value)) rows.push(row('warn', `${name} strength`, 'reads like a placeholder'));
    else rows.push(row('pass', `${name} strength`, `${value.length} characters (about ${bits} bits)`));
  }
  return rows;
}

/**
 * The Worker's own configuration schema (src/env.ts), as it will parse the deployed
 * bindings at its first request. Secrets known by name only are left out, and so are the
 * problems that causes; a missing secret has its own row above.
 */
function schemaRows(d: Deployment, vars: Record<string, string>): CheckRow[] {
  const raw: Record<string, string | undefined> = {};
  for (const [k, v] of [...Object.entries(vars), ...d.secrets]) raw[k] = v === null || v === '' ? undefined : v;
  const reportedElsewhere = (name: string) => d.secrets.get(name) === null || (d.secretNames.includes(name) && raw[name] === undefined);
  const parsed = ConfigSchema.safeParse(raw);
  const issues = parsed.success ? [] : parsed.error.issues.filter((i) => !reportedElsewhere(String(i.path[0])));
  return issues.length > 0
    ? issues.map((i) => {
        const name = String(i.path[0] ?? 'configuration');
        return row('fail', `${name}: schema`, raw[name] === undefined ? 'missing: the Worker requires it' : i.message);
      })
    : [row('pass', 'Worker configuration schema', 'src/env.ts accepts every var and secret')];
}

// ---- browsers: CORS and framing -------------------------------------------------------------

function browserRows(vars: Record<string, string>): CheckRow[] {
  const rows: CheckRow[] = [];
  const origins = (vars.CORS_ORIGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (origins.length === 0)
    rows.push(
      row('fail', 'CORS_ORIGINS', "empty: set the origins of the streaming apps' pages that call the API, e.g. https://apps.example.com"),
    );
  else {
    const plain = origins.filter((o) => !o.startsWith('https://'));
    rows.push(
      plain.length > 0 ? row('fail', 'CORS_ORIGINS', `not https: ${plain.join(', ')}`) : row('pass', 'CORS_ORIGINS', origins.join(', ')),
    );
  }
  const sources = (vars.DESKTOP_FRAME_SOURCES ?? '').split(/[\s,]+/).filter(Boolean);
  if (sources.length === 0)
    rows.push(
      row('fail', 'DESKTOP_FRAME_SOURCES', 'empty (any https origin may be framed): set your Guacamole and Selkies public addresses'),
    );
  else {
    const loose = sources.filter((s) => s.startsWith('http:') || s === 'https:' || s === '*');
    rows.push(
      loose.length > 0
        ? row('fail', 'DESKTOP_FRAME_SOURCES', `too broad or not https: ${loose.join(' ')}`)
        : row('pass', 'DESKTOP_FRAME_SOURCES', sources.join(' ')),
    );
  }
  return rows;
}

// ---- development switches and plain http ----------------------------------------------------

function developmentSwitchRows(known: ReadonlyMap<string, string | null>): CheckRow[] {
  return DEVELOPMENT_SWITCHES.map((name) => {
    if (!known.has(name)) return row('pass', name, 'absent');
    const value = known.get(name);
    // A value of "false" is harmless but DEV_SIGN_IN has no business in a deployment at all.
    if (value === 'false' && name !== 'DEV_SIGN_IN') return row('pass', name, 'false');
    return row('fail', name, `set${value === null ? ' (as a secret)' : ` to "${value}"`}: development and tests only; remove it`);
  });
}

function httpsRows(vars: Record<string, string>, secrets: Deployment['secrets']): CheckRow[] {
  const rows: CheckRow[] = [];
  for (const name of ['JWKS_URL', 'OIDC_ISSUER']) {
    const secret = secrets.get(name);
    const value = secret ?? vars[name];
    if (secret === null) rows.push(row('pass', `${name} https`, 'a secret known by name only'));
    else if (!value) continue;
    else if (!value.startsWith('https://'))
      rows.push(row('fail', `${name} https`, `${secret === undefined ? value : 'the secret'}: keys and sign-in must come over https`));
    else rows.push(row('pass', `${name} https`, secret === undefined ? value : 'the secret is an https URL'));
  }
  return rows;
}

// ---- the database ---------------------------------------------------------------------------

function databaseRows(vars: Record<string, string>, secrets: Deployment['secrets']): CheckRow[] {
  const rows: CheckRow[] = [];
  if (vars.DB_WS_PROXY || secrets.get('DB_WS_PROXY'))
    rows.push(row('fail', 'DB_WS_PROXY', 'set: it sends database traffic to a local relay; production reaches Neon directly'));
  const url = secrets.get('DATABASE_URL') ?? vars.DATABASE_URL;
  if (url) {
    if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol))
      rows.push(row('fail', 'DATABASE_URL', 'not a postgres:// URL'));
    else if (!new URL(url).hostname.endsWith('.neon.tech'))
      rows.push(
        row(
          'warn',
          'DATABASE_URL',
          "not a Neon endpoint: the edge speaks Neon's WebSocket protocol; another server needs a Neon-compatible proxy",
        ),
      );
    else rows.push(row('pass', 'DATABASE_URL', 'a Neon endpoint'));
  }
  return rows;
}

// ---- bindings: queues, Durable Objects, cron, rate limits ------------------------------------

function queueRows(config: WorkerConfig, vars: Record<string, string>): CheckRow[] {
  const rows: CheckRow[] = [];
  const consumers = config.queues?.consumers ?? [];
  const consumed = new Set(consumers.map((c) => c.queue));
  const deadLetterQueues = new Set(consumers.map((c) => c.dead_letter_queue).filter((q): q is string => Boolean(q)));
  for (const p of config.queues?.producers ?? []) {
    if (!p.queue) continue;
    if (!consumed.has(p.queue)) rows.push(row('fail', `queue ${p.queue}`, `${p.binding} sends to it but nothing here consumes it`));
  }
  for (const c of consumers) {
    if (deadLetterQueues.has(c.queue)) continue; // a dead-letter queue's consumer is the last stop
    if (!c.dead_letter_queue) {
      rows.push(row('fail', `queue ${c.queue}`, `no dead_letter_queue: a message is deleted for good after ${c.max_retries ?? 3} retries`));
    } else if (!consumed.has(c.dead_letter_queue)) {
      rows.push(row('warn', `queue ${c.queue}`, `its dead-letter queue ${c.dead_letter_queue} has no consumer: dead letters wait unread`));
    } else {
      rows.push(row('pass', `queue ${c.queue}`, `dead-letters to ${c.dead_letter_queue} after ${c.max_retries ?? 3} retries`));
    }
  }
  // The Worker counts a command's attempts itself to tell the last one (src/env.ts JOB_MAX_ATTEMPTS).
  const jobsQueue = config.queues?.producers?.find((p) => p.binding === 'JOBS')?.queue;
  const jobs = consumers.find((c) => c.queue === jobsQueue);
  if (jobs) {
    const attempts = Number(vars.JOB_MAX_ATTEMPTS ?? ConfigSchema.shape.JOB_MAX_ATTEMPTS.parse(undefined));
    const expected = (jobs.max_retries ?? 3) + 1;
    rows.push(
      attempts === expected
        ? row('pass', 'JOB_MAX_ATTEMPTS', `${attempts} = max_retries of ${jobsQueue} + 1`)
        : row('fail', 'JOB_MAX_ATTEMPTS', `${attempts}, but ${jobsQueue} delivers a message ${expected} times (max_retries + 1)`),
    );
  }
  return rows;
}

function durableObjectRows(config: WorkerConfig): CheckRow[] {
  const created = new Set<string>();
  for (const m of config.migrations ?? []) {
    for (const c of [...(m.new_classes ?? []), ...(m.new_sqlite_classes ?? [])]) created.add(c);
    for (const r of m.renamed_classes ?? []) created.add(r.to);
    for (const c of m.deleted_classes ?? []) created.delete(c);
  }
  const bound = (config.durable_objects?.bindings ?? []).filter((b) => !b.script_name).map((b) => b.class_name);
  const missing = bound.filter((c) => !created.has(c));
  return [
    missing.length > 0
      ? row('fail', 'Durable Object migrations', `no [[migrations]] entry creates ${missing.join(', ')}`)
      : row('pass', 'Durable Object migrations', `${bound.join(', ')} (tags ${(config.migrations ?? []).map((m) => m.tag).join(', ')})`),
  ];
}

function cronRows(config: WorkerConfig): CheckRow[] {
  const crons = config.triggers?.crons ?? [];
  return [
    crons.length > 0
      ? row('pass', 'cron triggers', crons.join(', '))
      : row('fail', 'cron triggers', 'none: the sweep that catches late alarms, reconciliation and audit retention never run'),
  ];
}

function rateLimitRows(config: WorkerConfig, vars: Record<string, string>): CheckRow[] {
  const limits = config.ratelimits ?? [];
  const period = Number(vars.RATE_LIMIT_PERIOD_SECONDS ?? 10);
  const off = limits.filter((l) => l.simple.period !== period).map((l) => `${l.name} (${l.simple.period} s)`);
  const ids = limits.map((l) => l.namespace_id);
  const shared = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (limits.length === 0) return [row('warn', 'rate limits', 'no [[ratelimits]] bindings: the API is not rate limited')];
  if (off.length > 0)
    return [
      row('fail', 'rate limits', `period differs from RATE_LIMIT_PERIOD_SECONDS (${period} s, sent as Retry-After): ${off.join(', ')}`),
    ];
  if (shared.length > 0) return [row('fail', 'rate limits', `namespace_id used twice: ${[...new Set(shared)].join(', ')}`)];
  return [row('pass', 'rate limits', limits.map((l) => `${l.name} ${l.simple.limit}/${l.simple.period}s`).join(', '))];
}

// ---- the table ------------------------------------------------------------------------------

export function renderTable(rows: readonly CheckRow[]): string {
  const checkWidth = Math.max(5, ...rows.map((r) => r.check.length));
  const lines = [`${'RESULT'.padEnd(6)}  ${'CHECK'.padEnd(checkWidth)}  DETAIL`];
  for (const r of rows) lines.push(`${r.status.toUpperCase().padEnd(6)}  ${r.check.padEnd(checkWidth)}  ${r.detail}`);
  const count = (s: Status) => rows.filter((r) => r.status === s).length;
  lines.push('', `${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed`);
  return lines.join('\n');
}
