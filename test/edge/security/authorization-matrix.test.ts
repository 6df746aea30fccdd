/**
 * Who may call what: every endpoint of the running app × {anonymous, another user, the
 * owner, an admin, a service token}, with the status each must get. The cases come from
 * the route table (OpenAPI document + Hono routes), so an endpoint added without a row
 * below fails here, and so does a row whose endpoint is gone.
 *
 * Every case gets fresh users and a fresh desktop (PENDING: no bridge serves the default
 * site in this file), so no case depends on another's side effects. On a PENDING desktop,
 * 409 means "past the ownership check, refused by the state machine".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Desktop } from '../../../src/schemas/desktop';
import { registerSite } from '../fake-bridge';
import { token, uniqueUser } from '../helpers';
import { call, expectErrorEnvelope, expectSecurityHeaders, routeTable } from './support';

type Who = 'anonymous' | 'otherUser' | 'owner' | 'admin' | 'service';

/**
 * `desktop`: the path names one desktop; "owner" is its user. `webhook`: the path names a
 * webhook subscription; "owner" made it. For both, a service is asked twice: about one it
 * did not create (it must get another user's answer) and about one it created, for the
 * owner (it must get the owner's answer).
 * `user`: the path, query or body names the owner (a user id).
 * `public`: no user in the request.
 */
type Owned = 'desktop' | 'webhook';
type Row =
  | { subject: Owned; expect: Record<Exclude<Who, 'service'>, number>; body?: unknown }
  | {
      subject: 'user' | 'public';
      expect: Record<Who, number>;
      body?: (f: Fixture) => unknown;
      query?: (f: Fixture) => string;
      /** `fresh`: {siteId} is a site registered for this case alone (the case may remove it). */
      site?: 'fresh';
    };

type OwnedRow = Extract<Row, { subject: Owned }>;
type OtherRow = Exclude<Row, OwnedRow>;
const isOwned = (row: Row): row is OwnedRow => row.subject === 'desktop' || row.subject === 'webhook';

interface Fixture {
  ownerId: string;
  /** The desktop or webhook the path names. */
  resourceId: string;
  siteId: string;
}

const everyone = (status: number): Record<Who, number> => ({
  anonymous: status,
  otherUser: status,
  owner: status,
  admin: status,
  service: status,
});
const adminOnly = (ok: number): Record<Who, number> => ({ anonymous: 401, otherUser: 403, owner: 403, admin: ok, service: 403 });
const ownDesktop = (ok: number) => ({ anonymous: 401, otherUser: 404, owner: ok, admin: ok });
const ownWebhook = ownDesktop;
const signedIn = (ok: number): Record<Who, number> => ({ anonymous: 401, otherUser: ok, owner: ok, admin: ok, service: ok });

const EXPECTED: Record<string, Row> = {
  'GET /healthz': { subject: 'public', expect: everyone(200) },
  'GET /api/v1/openapi.json': { subject: 'public', expect: everyone(200) },
  'GET /api/v1/plans': { subject: 'public', expect: everyone(200) },
  // The connect link's page holds no secret; the ticket (from its fragment) is POSTed.
  'GET /api/v1/connect': { subject: 'public', expect: everyone(200) },
  // The ticket is the credential: a bearer token neither opens nor replaces it; a forged one is 404 for all.
  'POST /api/v1/connect': {
    subject: 'public',
    body: () => ({ ticket: `dk0000000000000000000000.${'A'.repeat(43)}` }),
    expect: everyone(404),
  },
  // The bridge authenticates with a site key; no JWT, not even an admin's, opens it.
  'GET /api/v1/sites/{siteId}/bridge': { subject: 'public', expect: everyone(401) },

  'POST /api/v1/desktops': {
    subject: 'user',
    body: (f) => ({ userId: f.ownerId, name: 'Matrix', plan: 'BASIC' }),
    expect: { anonymous: 401, otherUser: 403, owner: 202, admin: 202, service: 202 },
  },
  'GET /api/v1/desktops': {
    subject: 'user',
    query: (f) => `?userId=${f.ownerId}`,
    expect: { anonymous: 401, otherUser: 403, owner: 200, admin: 200, service: 200 },
  },
  'GET /api/v1/desktops/user/{userId}': {
    subject: 'user',
    expect: { anonymous: 401, otherUser: 403, owner: 200, admin: 200, service: 200 },
  },
  'GET /api/v1/desktops/{id}': { subject: 'desktop', expect: ownDesktop(200) },
  'GET /api/v1/desktops/{id}/status': { subject: 'desktop', expect: ownDesktop(200) },
  'GET /api/v1/desktops/{id}/events': { subject: 'desktop', expect: ownDesktop(200) },
  'GET /api/v1/desktops/{id}/connect': { subject: 'desktop', expect: ownDesktop(409) },
  'POST /api/v1/desktops/{id}/start': { subject: 'desktop', expect: ownDesktop(409) },
  'POST /api/v1/desktops/{id}/stop': { subject: 'desktop', expect: ownDesktop(409) },
  'DELETE /api/v1/desktops/{id}': { subject: 'desktop', expect: ownDesktop(202) },
  // Authorised like GET /{id}; without Upgrade: websocket it answers Server-Sent Events.
  'GET /api/v1/desktops/{id}/live': { subject: 'desktop', expect: ownDesktop(200) },
  'POST /api/v1/desktops/{id}/keepalive': { subject: 'desktop', expect: ownDesktop(409) },
  // A token scoped to the desktop, for a page that embeds it (desktop-tokens.test.ts: what such a token may do).
  'POST /api/v1/desktops/{id}/embed-token': { subject: 'desktop', expect: ownDesktop(200) },
  // Share links: made on a PENDING desktop (they open only once it runs); {linkId} names no link.
  'POST /api/v1/desktops/{id}/share-links': { subject: 'desktop', body: { mode: 'view' }, expect: ownDesktop(201) },
  'GET /api/v1/desktops/{id}/share-links': { subject: 'desktop', expect: ownDesktop(200) },
  'DELETE /api/v1/desktops/{id}/share-links/{linkId}': { subject: 'desktop', expect: ownDesktop(404) },
  // Snapshots: a PENDING desktop has no VM yet, so it lists none and refuses the rest in its status; {name} is a valid name.
  'GET /api/v1/desktops/{id}/snapshots': { subject: 'desktop', expect: ownDesktop(200) },
  'POST /api/v1/desktops/{id}/snapshots': { subject: 'desktop', body: { name: 'matrix' }, expect: ownDesktop(409) },
  'DELETE /api/v1/desktops/{id}/snapshots/{name}': { subject: 'desktop', expect: ownDesktop(409) },
  'POST /api/v1/desktops/{id}/snapshots/{name}/restore': { subject: 'desktop', expect: ownDesktop(409) },
  // A PENDING desktop is not RUNNING or STOPPED: refused in its status.
  'POST /api/v1/desktops/{id}/rebuild': { subject: 'desktop', expect: ownDesktop(409) },
  'GET /api/v1/desktops/{id}/snapshot-schedule': { subject: 'desktop', expect: ownDesktop(200) },
  'PUT /api/v1/desktops/{id}/snapshot-schedule': {
    subject: 'desktop',
    body: { everyHours: 24, retention: { keepLast: 7 } },
    expect: ownDesktop(200),
  },
  'DELETE /api/v1/desktops/{id}/snapshot-schedule': { subject: 'desktop', expect: ownDesktop(200) },
  // The guest's page holds no secret; the link's token is the credential, and a forged one is 404 for all.
  'GET /api/v1/share': { subject: 'public', expect: everyone(200) },
  'POST /api/v1/share': {
    subject: 'public',
    body: () => ({ token: `dk0000000000000000000000.sl00000000000000000000.${'A'.repeat(43)}` }),
    expect: everyone(404),
  },

  'GET /api/v1/admin/users': { subject: 'public', expect: adminOnly(200) },
  'GET /api/v1/admin/users/{userId}/quota': { subject: 'user', expect: adminOnly(200) },
  'PUT /api/v1/admin/users/{userId}/quota': { subject: 'user', body: () => ({ maxDesktops: 3 }), expect: adminOnly(200) },
  'GET /api/v1/admin/sites': { subject: 'public', expect: adminOnly(200) },
  'POST /api/v1/admin/sites': {
    subject: 'public',
    body: () => ({ id: `matrix-${crypto.randomUUID().slice(0, 8)}`, name: 'Matrix' }),
    expect: adminOnly(201),
  },
  'DELETE /api/v1/admin/sites/{siteId}': { subject: 'public', site: 'fresh', expect: adminOnly(200) },
  'GET /api/v1/admin/reconcile': { subject: 'public', expect: adminOnly(200) },
  'GET /api/v1/admin/health': { subject: 'public', expect: adminOnly(200) },
  'GET /api/v1/admin/audit': { subject: 'public', expect: adminOnly(200) },
  'GET /api/v1/admin/overview': { subject: 'public', expect: adminOnly(200) },

  // A service sees the usage of the users of its namespace (that of the desktops it created for them).
  'GET /api/v1/usage': {
    subject: 'user',
    query: (f) => `?userId=${f.ownerId}`,
    expect: { anonymous: 401, otherUser: 403, owner: 200, admin: 200, service: 200 },
  },

  'POST /api/v1/webhooks': { subject: 'public', body: () => ({ url: 'https://hooks.example.com/matrix' }), expect: signedIn(201) },
  // Everyone lists their own subscriptions.
  'GET /api/v1/webhooks': { subject: 'public', expect: signedIn(200) },
  'GET /api/v1/webhooks/{id}': { subject: 'webhook', expect: ownWebhook(200) },
  'GET /api/v1/webhooks/{id}/deliveries': { subject: 'webhook', expect: ownWebhook(200) },
  'DELETE /api/v1/webhooks/{id}': { subject: 'webhook', expect: ownWebhook(200) },
  'GET /api/v1/admin/gpus': { subject: 'public', expect: adminOnly(200) },
  // A PENDING desktop has no VM yet: 200 with an empty series and the reason.
  'GET /api/v1/admin/desktops/{id}/metrics': { subject: 'desktop', expect: { anonymous: 401, otherUser: 403, owner: 403, admin: 200 } },
  'GET /api/v1/templates': { subject: 'public', expect: signedIn(200) },
  // {id} is not a template here: unknown to everyone signed in.
  'GET /api/v1/templates/{id}': { subject: 'public', expect: signedIn(404) },
  'GET /api/v1/admin/templates': { subject: 'public', expect: adminOnly(200) },
  'POST /api/v1/admin/templates': {
    subject: 'public',
    body: () => ({
      id: `matrix-${crypto.randomUUID().slice(0, 8)}`,
      name: 'Matrix',
      os: 'Ubuntu 24.04',
      backend: 'proxmox',
      protocol: 'vnc',
    }),
    expect: adminOnly(201),
  },
  'PUT /api/v1/admin/templates/{id}': {
    subject: 'public',
    body: () => ({ name: 'Matrix', os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc' }),
    expect: adminOnly(200),
  },
  'DELETE /api/v1/admin/templates/{id}': { subject: 'public', expect: adminOnly(404) },
  // Warm pools: {poolId} names no pool; a pool of a template that does not exist is refused past the role check.
  'GET /api/v1/admin/pools': { subject: 'public', expect: adminOnly(200) },
  'GET /api/v1/admin/pools/{poolId}': { subject: 'public', expect: adminOnly(404) },
  'PUT /api/v1/admin/pools/{poolId}': {
    subject: 'public',
    body: () => ({ templateId: 'no-such-template', sizing: { running: 1, cap: 1 } }),
    expect: adminOnly(400),
  },
  'DELETE /api/v1/admin/pools/{poolId}': { subject: 'public', expect: adminOnly(404) },
  // A site with no bridge: reconciliation answers at once that it skipped it.
  'POST /api/v1/admin/reconcile': { subject: 'public', body: (f) => ({ siteId: f.siteId }), expect: adminOnly(200) },
  // No site's last report has this id: an admin is told so.
  'POST /api/v1/admin/reconcile/{reportId}/confirm': { subject: 'public', expect: adminOnly(404) },
};

interface Case {
  route: string;
  who: Who;
  /** For desktop routes asked by a service: did it create the desktop? */
  creator?: boolean;
  want: number;
}

const { keys } = await routeTable();

function casesFor(route: string): Case[] {
  const row = EXPECTED[route];
  if (!row) return [];
  if (isOwned(row)) {
    return [
      ...(['anonymous', 'otherUser', 'owner', 'admin'] as const).map((who) => ({ route, who, want: row.expect[who] })),
      { route, who: 'service' as const, creator: false, want: row.expect.otherUser },
      { route, who: 'service' as const, creator: true, want: row.expect.owner },
    ];
  }
  const other: OtherRow = row;
  return (['anonymous', 'otherUser', 'owner', 'admin', 'service'] as const).map((who) => ({ route, who, want: other.expect[who] }));
}

const CASES = keys.flatMap(casesFor);
const ran = new Set<string>();
const caseName = (c: Case) => `${c.route} as ${c.who}${c.creator === undefined ? '' : c.creator ? ' (its creator)' : ' (not its creator)'}`;

let siteId: string;
beforeAll(async () => {
  siteId = `matrix-${crypto.randomUUID().slice(0, 8)}`;
  await registerSite(siteId);
});

afterAll(() => {
  console.log(`authorisation matrix: ${ran.size} of ${CASES.length} cases over ${keys.length} endpoints`);
});

describe('authorisation matrix', () => {
  it('has a row for every endpoint of the running app, and no row for an endpoint that is gone', () => {
    expect(
      keys.filter((k) => !EXPECTED[k]),
      'endpoints without a row in EXPECTED',
    ).toEqual([]);
    expect(
      Object.keys(EXPECTED).filter((k) => !keys.includes(k)),
      'rows for endpoints the app does not have',
    ).toEqual([]);
    // 5 endpoints are outside the OpenAPI document; all the rest are in it.
    expect(keys.length).toBeGreaterThanOrEqual(21);
  });

  it.each(CASES.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
    const row = EXPECTED[c.route]!;
    // The owner is a user of the service's namespace (`<service>:…`), so a service may act for them
    // at all; services and users outside it are test/edge/tenancy.test.ts's business.
    const serviceSub = `svc-${crypto.randomUUID().slice(0, 8)}`;
    const ownerId = `${serviceSub}:${uniqueUser('owner')}`;
    const service = await token(serviceSub, { roles: ['service'] });
    const tokens: Record<Who, string | undefined> = {
      anonymous: undefined,
      otherUser: await token(uniqueUser('other')),
      owner: await token(ownerId),
      admin: await token(uniqueUser('admin'), { roles: ['admin'] }),
      service,
    };

    let resourceId = 'dk0000000000000000000000';
    if (row.subject === 'desktop') {
      // The owner's desktop; in the creator case the service made it for the owner.
      const made = await call<Desktop>('POST', '/api/v1/desktops', {
        token: c.creator ? service : tokens.owner,
        json: { userId: ownerId, name: 'Matrix', plan: 'BASIC' },
      });
      expect(made.status, made.text).toBe(202);
      resourceId = made.body!.data.id;
    }
    if (row.subject === 'webhook') {
      // The owner's subscription; in the creator case the service's own.
      const made = await call<{ id: string }>('POST', '/api/v1/webhooks', {
        token: c.creator ? service : tokens.owner,
        json: { url: 'https://hooks.example.com/matrix' },
      });
      expect(made.status, made.text).toBe(201);
      resourceId = made.body!.data.id;
    }
    const freshSite = !isOwned(row) && row.site === 'fresh' ? `matrix-${crypto.randomUUID().slice(0, 8)}` : null;
    if (freshSite) await registerSite(freshSite);
    const f: Fixture = { ownerId, resourceId, siteId: freshSite ?? siteId };

    const [method, template] = c.route.split(' ') as [string, string];
    let path = template
      .replace('{id}', f.resourceId)
      .replace('{userId}', f.ownerId)
      .replace('{siteId}', f.siteId)
      .replace('{reportId}', f.resourceId)
      .replace('{name}', 'matrix-snapshot')
      .replace('{poolId}', 'matrix-pool')
      .replace('{ticket}', `${f.resourceId}.${'A'.repeat(43)}`);
    if (!isOwned(row) && row.query) path += row.query(f);
    const body = typeof row.body === 'function' ? row.body(f) : row.body;

    const res = await call(method, path, { token: tokens[c.who], json: body });
    expect(res.status, `${caseName(c)}: ${res.text.slice(0, 300)}`).toBe(c.want);
    expectSecurityHeaders(res, caseName(c));
    if (c.want >= 400) expectErrorEnvelope(res, caseName(c));
    if (c.want === 404 && isOwned(row)) expect(res.body?.error?.code).toBe('NOT_FOUND');
    ran.add(caseName(c));
  });

  it('ran every case of the matrix', () => {
    // it.each above runs before this one (vitest keeps declaration order within a file).
    expect(ran.size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(100);
  });
});
