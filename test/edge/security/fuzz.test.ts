/**
 * Hostile input for every route of the running app (fast-check): JSON bodies shaped like
 * the route's schema with wrong types, huge numbers, odd unicode, prototype-pollution
 * keys, deep nesting, very long strings; invalid JSON and bytes; wrong content types;
 * query strings with the same treatment and malformed percent-encoding; hostile path
 * parameters. Bad input must get a 4xx in the error envelope, never a 5xx, and always the
 * security headers. A bystander's desktop, site and quota, made before, are intact after.
 *
 * Runs are bounded (RUNS_*) so `npm test` stays fast; FUZZ_RUNS=<n> scales them all up
 * for a longer hunt. A failure prints fast-check's seed and the shrunk request.
 */
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelopeSchema } from '../../../src/errors';
import type { Desktop, TransitionRecord } from '../../../src/schemas/desktop';
import { FakeBridge, registerSite } from '../fake-bridge';
import { api, token, uniqueUser } from '../helpers';
import { type HTTP_METHODS, type OpenApiDocument, type OpenApiOperation, SECURITY_HEADERS, call, routeTable } from './support';

const scale = Number((env as unknown as { FUZZ_RUNS?: string }).FUZZ_RUNS ?? 1) || 1;
const RUNS_BODY = 40 * scale;
const RUNS_QUERY = 20 * scale;
const RUNS_PATH = 12 * scale;
const TIMEOUT_MS = 10_000 * scale;

const { keys, doc } = await routeTable();

// ---- what a hostile client sends ----

const nasty = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '\u0000',
  '\u202e\u0041dmin',
  '\ud800',
  '\udfff\ud800',
  '𝕏🧨👩‍👩‍👧‍👦',
  'ﷺ\u0301\u0301\u0301',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Log4Shell probe, literally
  '${jndi:ldap://x}',
  '%00',
  '%E0%A4%A',
  'NaN',
  'Infinity',
  '-0',
  '1e400',
  'null',
  'true',
  '',
  ' ',
  'BASIC',
  'premium',
  'spice',
  'RUNNING',
  'DELETED',
  'local',
);
const longString = fc.integer({ min: 1_000, max: 70_000 }).map((n) => 'x'.repeat(n));
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string() },
  { weight: 2, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme' }) },
  { weight: 4, arbitrary: nasty },
  { weight: 1, arbitrary: longString },
);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-1, 0, -0, 1.5, 2 ** 31, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 1e308, -1e308, 5e-324),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(nasty, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);

interface JsonSchema {
  $ref?: string;
  type?: string;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
}
function resolve(schema: unknown, d: OpenApiDocument): JsonSchema {
  const s = (schema ?? {}) as JsonSchema;
  const ref = s.$ref?.replace('#/components/schemas/', '');
  return ref ? ((d.components?.schemas?.[ref] ?? {}) as JsonSchema) : s;
}

/** A value the field's schema accepts (roughly), so that the fields beside a hostile one let it through to the handler. */
function plausible(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.enum?.length) return fc.constantFrom(...schema.enum);
  if (schema.type === 'integer' || schema.type === 'number') {
    const min = Math.ceil(schema.minimum ?? 0);
    const max = Math.max(min, Math.floor(schema.maximum ?? min + 1000));
    return fc.integer({ min, max });
  }
  if (schema.type === 'boolean') return fc.boolean();
  if (schema.type === 'array') return fc.array(schema.items ? plausible(schema.items) : fc.string(), { minLength: 1, maxLength: 3 });
  if (schema.format === 'uri') return fc.constant('https://hooks.example.com/fuzz');
  if (schema.format === 'date-time')
    return fc.date({ min: new Date('2020-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
  if (schema.pattern) {
    try {
      return fc.stringMatching(new RegExp(schema.pattern, 'u')).filter((x) => x.length > 0 && x.length < 60);
    } catch {
      return fc.string({ minLength: 1, maxLength: 20 });
    }
  }
  return fc.string({ minLength: 1, maxLength: 20 });
}

/** A plausible string with something a database or a log line chokes on put into it. */
const poisoned = (base: fc.Arbitrary<unknown>) =>
  fc
    .tuple(base.map(String), fc.constantFrom('\u0000', '\ud800', '\u202e', '\r\n', '\u001b[31m', '\\', "'", '%00', '\u2028'), fc.boolean())
    .map(([s, bad, atEnd]) => (atEnd ? `${s}${bad}` : `${bad}${s}`));

const validish = (schema: JsonSchema) =>
  fc.record(Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, s]) => [k, plausible(s)])));

/** Put into each field of an otherwise valid body in turn, so every one of them reaches the handler. */
const NASTY_FIELD_VALUES: unknown[] = [
  'a\u0000b',
  'lone \ud800 surrogate',
  '\u202eevil',
  'line\r\nbreak',
  '\u001b[2J',
  'x'.repeat(10_000),
  null,
  -1,
  1e308,
  true,
  [],
  {},
  { polluted: true },
];

/** Raw body text (or bytes) a hostile client might send to a route whose body schema is `schema`. */
function hostileBody(schema: JsonSchema): fc.Arbitrary<string | Uint8Array> {
  const props = Object.entries(schema.properties ?? {});
  const fields = props.map(([k]) => k);
  const fieldValue = (s: JsonSchema) =>
    fc.oneof(
      { weight: 3, arbitrary: plausible(s) },
      { weight: 2, arbitrary: hostileValue },
      { weight: 2, arbitrary: poisoned(plausible(s)) },
    );
  const shaped = fc.record(Object.fromEntries(props.map(([k, s]) => [k, fieldValue(s)])), { requiredKeys: [] });
  // A body the schema would accept but for one field: the likeliest way past validation to the handler and the database.
  const allPlausible = validish(schema);
  const oneBad = props.length
    ? fc
        .tuple(
          allPlausible,
          fc
            .constantFrom(...props)
            .chain(([k, s]) => fc.tuple(fc.constant(k), fc.oneof(hostileValue, poisoned(plausible(s)), poisoned(plausible(s))))),
        )
        .map(([o, [k, v]]) => JSON.stringify({ ...o, [k]: v }))
    : fc.constant('{}');
  const depth = fc.integer({ min: 50, max: 30_000 });
  return fc.oneof(
    // The right keys with the wrong things in them.
    { weight: 6, arbitrary: oneBad },
    { weight: 4, arbitrary: shaped.map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    // Prototype pollution, with and without valid-looking fields beside it.
    {
      weight: 2,
      arbitrary: fc
        .tuple(shaped, fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.jsonValue({ maxDepth: 2 }))
        .map(([o, k, v]) => `{"${k}":{"roles":["admin"],"isAdmin":true,"polluted":${JSON.stringify(v)}},${JSON.stringify(o).slice(1)}`),
    },
    { weight: 1, arbitrary: fc.constant('{"constructor":{"prototype":{"polluted":true}},"__proto__":{"__proto__":{"polluted":true}}}') },
    // Deep nesting.
    { weight: 1, arbitrary: depth.map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
    { weight: 1, arbitrary: depth.map((n) => `${'{"a":'.repeat(Math.min(n, 10_000))}1${'}'.repeat(Math.min(n, 10_000))}`) },
    // Numbers JSON can spell but JavaScript cannot hold.
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(...(fields.length ? fields : ['x'])),
          fc.constantFrom('1e400', '-1e400', '99999999999999999999999999', '-0', '0.0000000000000000001', '1E+2'),
        )
        .map(([f, n]) => `{"${f}":${n}}`),
    },
    // Not JSON at all, or almost JSON.
    { weight: 2, arbitrary: fc.string() },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        '{',
        '{"name":',
        '{"name":"x"',
        "{'name':'x'}",
        '{"name":NaN}',
        '{"name":undefined}',
        '\ufeff{}',
        '{}garbage',
        '[]',
        'null',
        '0',
        '"string"',
        '{"a":1,"a":2}',
        '{"name":"\\ud800"}',
        '{"name":"\\u0000"}',
      ),
    },
    // Bytes that are not UTF-8.
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 512 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x22, 0x7d])) },
  );
}

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/json, text/plain',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  '',
  undefined,
);

/** Percent-encodes the UTF-8 bytes (a lone surrogate becomes U+FFFD, where encodeURIComponent throws). */
const pct = (s: string) =>
  [...new TextEncoder().encode(s)]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');

/** A raw query string: the route's own parameters (plausible or hostile values) and strangers, broken escapes. */
function hostileQuery(params: { name: string; schema?: unknown }[]): fc.Arbitrary<string> {
  const stranger = fc.oneof(
    fc.constantFrom('__proto__', 'constructor[prototype][polluted]', '__proto__[roles]', 'toString', 'a[]', 'page[0]', 'q'),
    fc.string({ maxLength: 20 }).map(pct),
  );
  const hostile = fc.oneof(
    { weight: 3, arbitrary: hostileString.map((s) => pct(s.slice(0, 4000)).replace(/%20/g, '+')) },
    { weight: 2, arbitrary: hostileNumber.map(String) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%00', '+', '%2525', '&', '=', '==', '') },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
  const own = params.map((p) =>
    fc.tuple(
      fc.constant(p.name),
      fc.oneof(
        { weight: 2, arbitrary: plausible((p.schema ?? {}) as JsonSchema).map((v) => pct(String(v))) },
        { weight: 2, arbitrary: hostile },
        { weight: 1, arbitrary: poisoned(plausible((p.schema ?? {}) as JsonSchema)).map(pct) },
      ),
    ),
  );
  const pair = fc.oneof(
    ...own.map((arbitrary) => ({ weight: 4, arbitrary: arbitrary.map(([k, v]) => `${k}=${v}`) })),
    { weight: 2, arbitrary: fc.tuple(stranger, hostile).map(([k, v]) => `${k}=${v}`) },
    { weight: 1, arbitrary: stranger },
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(pair, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('&')) },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((n) => `page=${'9'.repeat(n)}`) },
    { weight: 1, arbitrary: fc.constantFrom('&&&', '=&=', '?', '#frag', 'status=RUNNING&status=STOPPED&plan=BASIC&plan=PREMIUM') },
  );
}

const role = fc.constantFrom('admin', 'admin', 'admin', 'user', 'service', 'anonymous');

// ---- the route table, and what is at stake ----

interface Route {
  key: string;
  method: string;
  template: string;
  op: OpenApiOperation | undefined;
}
const routes: Route[] = keys.map((key) => {
  const [method, template] = key.split(' ') as [string, string];
  const op = doc.paths[template]?.[method.toLowerCase() as (typeof HTTP_METHODS)[number]];
  return { key, method, template, op };
});

let fuzzDesktopId: string;
let fuzzSite: string;
const fuzzOwner = uniqueUser('fuzz-owner');
const bystander = {
  user: uniqueUser('bystander'),
  site: `by-${crypto.randomUUID().slice(0, 8)}`,
  key: '',
  desktop: null as Desktop | null,
};
let bystanderEvents: TransitionRecord[];
const seen = { requests: 0, byStatus: new Map<number, number>(), byKind: { body: 0, query: 0, path: 0 } };

beforeAll(async () => {
  fuzzSite = `fz-${crypto.randomUUID().slice(0, 8)}`;
  await registerSite(fuzzSite);
  const mine = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(fuzzOwner), body: { plan: 'BASIC' } });
  fuzzDesktopId = mine.body!.data.id;

  const admin = await token('fuzz-admin', { roles: ['admin'] });
  bystander.key = await registerSite(bystander.site);
  expect((await api('PUT', `/api/v1/admin/users/${bystander.user}/quota`, { token: admin, body: { maxDesktops: 2 } })).status).toBe(200);
  const made = await api<Desktop>('POST', '/api/v1/desktops', {
    token: await token(bystander.user),
    body: { name: 'Precious', plan: 'PREMIUM' },
  });
  expect(made.status).toBe(202);
  bystander.desktop = (await api<Desktop>('GET', `/api/v1/desktops/${made.body!.data.id}`, { token: await token(bystander.user) }))
    .body!.data;
  bystanderEvents = (
    await api<TransitionRecord[]>('GET', `/api/v1/desktops/${bystander.desktop.id}/events`, { token: await token(bystander.user) })
  ).body!.data;
});

afterAll(() => {
  const statuses = [...seen.byStatus.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
  console.log(
    `fuzz: ${seen.requests} requests over ${routes.length} routes (bodies ${seen.byKind.body}, query strings ${seen.byKind.query}, path parameters ${seen.byKind.path}); statuses ${statuses.join(' ')}`,
  );
});

async function tokenFor(r: string): Promise<string | undefined> {
  const sub = `fz-${crypto.randomUUID().slice(0, 12)}`;
  if (r === 'anonymous') return undefined;
  return token(sub, { roles: r === 'user' ? [] : [r] });
}

function fill(template: string, params: Record<string, string> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (params[name] !== undefined) return params[name];
    if (name === 'id') return fuzzDesktopId;
    if (name === 'userId') return fuzzOwner;
    if (name === 'siteId') return fuzzSite;
    return `${fuzzDesktopId}.${'A'.repeat(43)}`;
  });
}

/** Sends one request and checks the answer is a 2xx or a 4xx in the envelope, with the headers. */
async function probe(
  route: Route,
  kind: keyof typeof seen.byKind,
  path: string,
  init: { body?: BodyInit; contentType?: string; tok?: string },
) {
  const headers: Record<string, string> = {};
  if (init.contentType !== undefined) headers['content-type'] = init.contentType;
  let res: Awaited<ReturnType<typeof call>>;
  try {
    res = await call(route.method, path, { token: init.tok, body: init.body, headers });
  } catch (err) {
    // The URL itself was refused by the Request constructor: nothing reached the Worker.
    if (err instanceof TypeError && /URL|url/.test(String(err))) return;
    throw err;
  }
  seen.requests++;
  seen.byKind[kind]++;
  seen.byStatus.set(res.status, (seen.byStatus.get(res.status) ?? 0) + 1);
  const sent = typeof init.body === 'string' ? ` ${JSON.stringify(init.body.slice(0, 160))}` : '';
  const label = `${route.key} → ${path.slice(0, 200)}${sent}: ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status < 500, label).toBe(true);
  expect([200, 201, 202, 400, 401, 403, 404, 409, 413, 415].includes(res.status), label).toBe(true);
  for (const h of SECURITY_HEADERS) expect(res.headers.get(h), `${label} (${h})`).toBeTruthy();
  // A live status stream (Server-Sent Events) and the connect and share links' pages are the successes that are not JSON.
  if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/event-stream')) return;
  if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/html') && res.text.includes('Opening your desktop')) return;
  if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/html') && res.text.includes('Opening a shared desktop'))
    return;
  expect(res.headers.get('content-type') ?? '', label).toMatch(/^application\/json/);
  if (res.status >= 400) expect(ErrorEnvelopeSchema.safeParse(res.body).success, label).toBe(true);
  else if (route.key !== 'GET /api/v1/openapi.json') expect(res.body?.success, label).toBe(true);
}

describe('fuzzing every route', () => {
  it('covers the whole route table', () => {
    expect(routes.length).toBeGreaterThanOrEqual(21);
  });

  for (const route of routes) {
    const bodySchema = resolve(route.op?.requestBody?.content?.['application/json']?.schema, doc);
    const queryParams = (route.op?.parameters ?? []).filter((p) => p.in === 'query');
    const pathParams = [...route.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);

    if (route.method !== 'GET') {
      it(
        `${route.key}: hostile bodies and content types`,
        async () => {
          await fc.assert(
            fc.asyncProperty(hostileBody(bodySchema), contentType, role, async (body, type, r) => {
              await probe(route, 'body', fill(route.template), { body, contentType: type, tok: await tokenFor(r) });
            }),
            { numRuns: RUNS_BODY },
          );
        },
        TIMEOUT_MS,
      );
    }

    const fields = Object.keys(bodySchema.properties ?? {});
    if (fields.length > 0) {
      it(`${route.key}: each field of a valid body made hostile in turn (${fields.join(', ')})`, async () => {
        const [base] = fc.sample(validish(bodySchema), { seed: 7, numRuns: 1 });
        for (const field of fields) {
          for (const value of NASTY_FIELD_VALUES) {
            const body = JSON.stringify({ ...base, [field]: value });
            await probe(route, 'body', fill(route.template), { body, contentType: 'application/json', tok: await tokenFor('admin') });
          }
        }
      });
    }

    it(
      `${route.key}: hostile query strings${queryParams.length ? ` (${queryParams.map((q) => q.name).join(', ')})` : ''}`,
      async () => {
        await fc.assert(
          fc.asyncProperty(hostileQuery(queryParams), role, async (query, r) => {
            const isJsonWrite = route.method !== 'GET' && route.op?.requestBody !== undefined;
            await probe(route, 'query', `${fill(route.template)}?${query}`, {
              tok: await tokenFor(r),
              ...(isJsonWrite ? { body: '{}', contentType: 'application/json' } : {}),
            });
          }),
          { numRuns: RUNS_QUERY },
        );
      },
      TIMEOUT_MS,
    );

    if (pathParams.length > 0) {
      it(
        `${route.key}: hostile path parameters (${pathParams.join(', ')})`,
        async () => {
          const segment = fc.oneof(
            hostileString.map((s) => pct(s.slice(0, 2000))),
            fc.constantFrom('%', '%zz', '%2F', '..', '.', '%2e%2e', '%00', `dk${'0'.repeat(500)}`, 'DK0000000000000000000000'),
          );
          await fc.assert(
            fc.asyncProperty(segment, fc.constantFrom(...pathParams), role, async (value, name, r) => {
              await probe(route, 'path', fill(route.template, { [name]: value || 'x' }), { tok: await tokenFor(r) });
            }),
            { numRuns: RUNS_PATH },
          );
        },
        TIMEOUT_MS,
      );
    }
  }

  it('refuses control characters in text that is stored, with 400 rather than a database error', async () => {
    const admin = await token(`fz-${crypto.randomUUID().slice(0, 8)}`, { roles: ['admin'] });
    for (const name of ['a\u0000b', 'line\r\nbreak', '\u001b[31mred']) {
      const res = await api('POST', '/api/v1/admin/sites', {
        token: admin,
        body: { id: `fz-nul-${crypto.randomUUID().slice(0, 6)}`, name },
      });
      expect(res.status, res.text).toBe(400);
    }
  });

  it('keeps the database reachable past 200 requests (each closes its connection)', async () => {
    // The local relay used to leave every connection open: the 201st request got 503.
    const statuses = new Set<number>();
    for (let i = 0; i < 210; i++) {
      const tok = await token(`fz-db-${i}-${crypto.randomUUID().slice(0, 6)}`, { roles: ['admin'] });
      statuses.add((await api('GET', '/api/v1/admin/sites', { token: tok })).status);
    }
    expect([...statuses]).toEqual([200]);
  }, 60_000);

  it('lost nothing that was stored before, and polluted no prototype', async () => {
    const d = bystander.desktop!;
    const tok = await token(bystander.user);
    const now = await api<Desktop>('GET', `/api/v1/desktops/${d.id}`, { token: tok });
    expect(now.status).toBe(200);
    // No bridge serves the bystander's site here: when fuzzing runs long (a busy machine), its create is given up as
    // undeliverable. That is its own lifecycle, not the fuzzer's doing: the history only grew by it, and every
    // other field is as stored before.
    const events = (await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: tok })).body!.data;
    expect(events.slice(0, bystanderEvents.length)).toEqual(bystanderEvents);
    expect(events.slice(bystanderEvents.length).map((e) => e.event)).toEqual(
      events.length > bystanderEvents.length ? ['command_undeliverable'] : [],
    );
    const { status, statusMessage, errorMessage, updatedAt, ...stored } = now.body!.data;
    if (events.length === bystanderEvents.length) {
      expect({ status, statusMessage, errorMessage, updatedAt }).toEqual({
        status: d.status,
        statusMessage: d.statusMessage,
        errorMessage: d.errorMessage,
        updatedAt: d.updatedAt,
      });
    } else expect(status).toBe('FAILED');
    expect({ ...d, ...stored }).toEqual(d);
    const admin = await token('fuzz-admin', { roles: ['admin'] });
    const quota = await api<{ maxDesktops: number; active: number }>('GET', `/api/v1/admin/users/${bystander.user}/quota`, {
      token: admin,
    });
    expect(quota.body!.data).toMatchObject({ maxDesktops: 2, active: 1 });
    const sites = await api<{ id: string }[]>('GET', '/api/v1/admin/sites', { token: admin });
    expect(sites.body!.data.map((s) => s.id)).toContain(bystander.site);
    // The site key was not rotated: its bridge still gets in.
    await (await FakeBridge.connect(bystander.site, bystander.key)).close();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});
