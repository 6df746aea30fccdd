/**
 * The Guacamole simulator as a client sees it: the REST API (tokens, errors, connections, users and permissions), the
 * stand-in web client page and the WebSocket tunnel, and the /__sim control surface. The simulator runs on a random
 * port with a fake clock.
 */
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startGuacamoleSimulator, type GuacamoleSimulator } from '../../simulators/guacamole/server';

let sim: GuacamoleSimulator;
let clock = Date.parse('2026-11-21T10:00:00Z');

beforeAll(async () => {
  sim = await startGuacamoleSimulator({ port: 0, now: () => clock });
});
afterAll(async () => {
  await sim.stop();
});
beforeEach(() => {
  sim.reset();
});

interface Reply {
  status: number;
  body: unknown;
  headers: Headers;
}

async function api(
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; form?: Record<string, string>; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined = opts.rawBody;
  if (opts.token) headers['Guacamole-Token'] = opts.token;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  if (opts.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  }
  const response = await fetch(`${sim.url}/api${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // plain-text answers stay strings
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

const record = (value: unknown): Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`not an object: ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
};

async function login(username = 'guacadmin', password = 'guacadmin'): Promise<string> {
  const reply = await api('POST', '/tokens', { form: { username, password } });
  expect(reply.status).toBe(200);
  return String(record(reply.body).authToken);
}

const DS = '/session/data/postgresql';

async function createConnection(token: string, name: string, parameters: Record<string, string> = { hostname: '10.0.0.42', port: '5900' }) {
  const reply = await api('POST', `${DS}/connections`, {
    token,
    json: { parentIdentifier: 'ROOT', name, protocol: 'vnc', parameters, attributes: {} },
  });
  expect(reply.status).toBe(200);
  return String(record(reply.body).identifier);
}

async function createUserWithRead(adminToken: string, username: string, password: string, connectionId: string) {
  expect((await api('POST', `${DS}/users`, { token: adminToken, json: { username, password, attributes: {} } })).status).toBe(200);
  const grant = await api('PATCH', `${DS}/users/${username}/permissions`, {
    token: adminToken,
    json: [{ op: 'add', path: `/connectionPermissions/${connectionId}`, value: 'READ' }],
  });
  expect(grant.status).toBe(204);
}

const apiError = (message: string, type: string, expected: unknown = null) => ({
  message,
  translatableMessage: { key: 'APP.TEXT_UNTRANSLATED', variables: { MESSAGE: message } },
  statusCode: null,
  expected,
  patches: null,
  type,
});

describe('tokens', () => {
  it('logs in form-encoded and answers exactly the four documented fields with a 64 upper-hex token', async () => {
    const reply = await api('POST', '/tokens', { form: { username: 'guacadmin', password: 'guacadmin' } });
    expect(reply.status).toBe(200);
    const body = record(reply.body);
    expect(Object.keys(body)).toEqual(['authToken', 'username', 'dataSource', 'availableDataSources']);
    expect(body.authToken).toMatch(/^[0-9A-F]{64}$/);
    expect(body).toMatchObject({
      username: 'guacadmin',
      dataSource: 'postgresql',
      availableDataSources: ['postgresql', 'postgresql-shared'],
    });
  });

  it('returns the same token when a still-valid token is posted, and accepts Basic credentials', async () => {
    const token = await login();
    const refreshed = await api('POST', '/tokens', { form: { token } });
    expect(record(refreshed.body).authToken).toBe(token);

    const basic = await api('POST', '/tokens', {
      headers: { Authorization: `Basic ${Buffer.from('guacadmin:guacadmin').toString('base64')}` },
    });
    expect(basic.status).toBe(200);
    expect(record(basic.body).authToken).not.toBe(token);
  });

  it('answers a bad password with 403 INVALID_CREDENTIALS naming the expected fields', async () => {
    const reply = await api('POST', '/tokens', { form: { username: 'guacadmin', password: 'wrong' } });
    expect(reply.status).toBe(403);
    expect(reply.headers.get('content-type')).toContain('application/json');
    expect(reply.body).toEqual(
      apiError('Invalid login', 'INVALID_CREDENTIALS', [
        { name: 'username', type: 'USERNAME' },
        { name: 'password', type: 'PASSWORD' },
      ]),
    );
  });

  it('answers an unknown token with 403 (not 401) PERMISSION_DENIED and the full APIError shape', async () => {
    const reply = await api('GET', `${DS}/connections`, { token: 'F'.repeat(64) });
    expect(reply.status).toBe(403);
    expect(reply.body).toEqual(apiError('Permission Denied.', 'PERMISSION_DENIED'));
  });

  it('takes the token from ?token= and lets the header win over it', async () => {
    const token = await login();
    expect((await fetch(`${sim.url}/api${DS}/connections?token=${token}`)).status).toBe(200);
    const both = await fetch(`${sim.url}/api${DS}/connections?token=${'0'.repeat(64)}`, { headers: { 'Guacamole-Token': token } });
    expect(both.status).toBe(200);
  });

  it('logs out with DELETE /api/tokens/{token}: 204, then 404 "No such token." and the token is dead', async () => {
    const token = await login();
    expect((await api('DELETE', `/tokens/${token}`)).status).toBe(204);
    const again = await api('DELETE', `/tokens/${token}`);
    expect(again.status).toBe(404);
    expect(again.body).toEqual(apiError('No such token.', 'NOT_FOUND'));
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(403);
  });

  it('expires a token after the idle timeout, and activity keeps it alive', async () => {
    const token = await login();
    clock += 59 * 60_000;
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(200);
    clock += 59 * 60_000;
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(200);
    clock += 61 * 60_000;
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(403);
  });
});

describe('connections', () => {
  it('POST answers 200 echoing the body with a DB-assigned numeric identifier and schema-filtered attributes', async () => {
    const token = await login();
    const reply = await api('POST', `${DS}/connections`, {
      token,
      json: {
        parentIdentifier: 'ROOT',
        name: 'vm-42 (alice)',
        protocol: 'vnc',
        parameters: { hostname: '10.0.0.42', port: 5900, password: 's3cret', 'read-only': '' },
        attributes: { 'max-connections': '', 'guacd-hostname': 'guacd', 'not-in-schema': 'x' },
      },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      name: 'vm-42 (alice)',
      identifier: '1',
      parentIdentifier: 'ROOT',
      protocol: 'vnc',
      parameters: { hostname: '10.0.0.42', port: '5900', password: 's3cret', 'read-only': '' },
      attributes: { 'max-connections': '', 'guacd-hostname': 'guacd' },
      activeConnections: 0,
    });
    expect(await createConnection(token, 'vm-43')).toBe('2');
  });

  it('refuses a duplicate name in the same parent with 400 and the real text, and a blank name', async () => {
    const token = await login();
    await createConnection(token, 'vm-1');
    const duplicate = await api('POST', `${DS}/connections`, {
      token,
      json: { parentIdentifier: 'ROOT', name: 'vm-1', protocol: 'rdp', parameters: {}, attributes: {} },
    });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body).toEqual(apiError('The connection "vm-1" already exists.', 'BAD_REQUEST'));

    const blank = await api('POST', `${DS}/connections`, { token, json: { name: '  ', protocol: 'vnc', parameters: {}, attributes: {} } });
    expect(blank.status).toBe(400);
    expect(record(blank.body).message).toBe('Connection names must not be blank.');
  });

  it('GET omits parameters; /parameters returns the stored ones with empty values dropped', async () => {
    const token = await login();
    const id = await createConnection(token, 'vm-1', { hostname: '10.0.0.1', port: '5900', password: '' });
    const list = record((await api('GET', `${DS}/connections`, { token })).body);
    expect(Object.keys(list)).toEqual([id]);
    const one = record((await api('GET', `${DS}/connections/${id}`, { token })).body);
    expect(one).not.toHaveProperty('parameters');
    expect(one).toMatchObject({ identifier: id, name: 'vm-1', parentIdentifier: 'ROOT', protocol: 'vnc', activeConnections: 0 });
    expect(record(one.attributes)['guacd-hostname']).toBeNull();
    expect((await api('GET', `${DS}/connections/${id}/parameters`, { token })).body).toEqual({ hostname: '10.0.0.1', port: '5900' });
  });

  it('PUT answers 204 and replaces everything; without parameters it is a 500 like the real one', async () => {
    const token = await login();
    const id = await createConnection(token, 'vm-1', { hostname: '10.0.0.1', port: '5900', password: 'x' });
    const put = await api('PUT', `${DS}/connections/${id}`, {
      token,
      json: { parentIdentifier: 'ROOT', name: 'vm-1b', protocol: 'rdp', parameters: { hostname: '10.0.0.2' }, attributes: {} },
    });
    expect(put.status).toBe(204);
    expect((await api('GET', `${DS}/connections/${id}/parameters`, { token })).body).toEqual({ hostname: '10.0.0.2' });
    expect(record((await api('GET', `${DS}/connections/${id}`, { token })).body)).toMatchObject({ name: 'vm-1b', protocol: 'rdp' });

    const noParameters = await api('PUT', `${DS}/connections/${id}`, { token, json: { name: 'vm-1b', protocol: 'rdp', attributes: {} } });
    expect(noParameters.status).toBe(500);
    expect(noParameters.body).toEqual(apiError('Unexpected internal error', 'INTERNAL_ERROR'));
  });

  it('DELETE answers 204, then the connection is 404 Not found: "id"', async () => {
    const token = await login();
    const id = await createConnection(token, 'vm-1');
    expect((await api('DELETE', `${DS}/connections/${id}`, { token })).status).toBe(204);
    const gone = await api('GET', `${DS}/connections/${id}`, { token });
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual(apiError(`Not found: "${id}"`, 'NOT_FOUND'));
    expect((await api('DELETE', `${DS}/connections/${id}`, { token })).status).toBe(404);
  });

  it('answers 413 for a parameter value over 4096 characters and for a body over 2 MiB', async () => {
    const token = await login();
    const long = await api('POST', `${DS}/connections`, {
      token,
      json: { name: 'vm-1', protocol: 'vnc', parameters: { password: 'x'.repeat(4097) }, attributes: {} },
    });
    expect(long.status).toBe(413);
    expect(record(long.body).type).toBe('BAD_REQUEST');

    const huge = await api('POST', `${DS}/connections`, {
      token,
      headers: { 'Content-Type': 'application/json' },
      rawBody: JSON.stringify({ name: 'vm-2', padding: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(huge.status).toBe(413);
    expect(record(huge.body).message).toBe('Request body/entity too large.');
    expect(sim.connections()).toHaveLength(0);
  });

  it('answers 404 for a data source the session does not have, and an empty directory for the -shared one', async () => {
    const token = await login();
    const unknown = await api('GET', '/session/data/mysql/connections', { token });
    expect(unknown.status).toBe(404);
    expect(record(unknown.body).message).toBe('Session not associated with authentication provider "mysql".');
    await createConnection(token, 'vm-1');
    expect((await api('GET', '/session/data/postgresql-shared/connections', { token })).body).toEqual({});
  });

  it('lists connections in the ROOT tree', async () => {
    const token = await login();
    await createConnection(token, 'vm-1');
    const tree = record((await api('GET', `${DS}/connectionGroups/ROOT/tree`, { token })).body);
    expect(tree).toMatchObject({ identifier: 'ROOT', type: 'ORGANIZATIONAL', childConnections: [{ name: 'vm-1', identifier: '1' }] });
  });
});

describe('users and permissions', () => {
  it('PATCH grants and revokes with 204 and GET permissions shows the result', async () => {
    const token = await login();
    const id = await createConnection(token, 'vm-1');
    expect((await api('POST', `${DS}/users`, { token, json: { username: 'alice', password: 'pw', attributes: {} } })).status).toBe(200);
    const patch = await api('PATCH', `${DS}/users/alice/permissions`, {
      token,
      json: [
        { op: 'add', path: `/connectionPermissions/${id}`, value: 'READ' },
        { op: 'add', path: '/systemPermissions', value: 'CREATE_CONNECTION' },
      ],
    });
    expect(patch.status).toBe(204);
    expect((await api('GET', `${DS}/users/alice/permissions`, { token })).body).toEqual({
      connectionPermissions: { [id]: ['READ'] },
      connectionGroupPermissions: {},
      sharingProfilePermissions: {},
      activeConnectionPermissions: {},
      userPermissions: { alice: ['READ'] },
      userGroupPermissions: {},
      systemPermissions: ['CREATE_CONNECTION'],
    });
    await api('PATCH', `${DS}/users/alice/permissions`, {
      token,
      json: [{ op: 'remove', path: `/connectionPermissions/${id}`, value: 'READ' }],
    });
    expect(record((await api('GET', `${DS}/users/alice/permissions`, { token })).body).connectionPermissions).toEqual({});
  });

  it('accepts only add/remove (400), rejects unknown paths (400), and answers a lowercase value with 500', async () => {
    const token = await login();
    const id = await createConnection(token, 'vm-1');
    await api('POST', `${DS}/users`, { token, json: { username: 'alice', password: 'pw', attributes: {} } });
    const path = `${DS}/users/alice/permissions`;

    const replace = await api('PATCH', path, { token, json: [{ op: 'replace', path: `/connectionPermissions/${id}`, value: 'READ' }] });
    expect(replace.status).toBe(400);
    expect(record(replace.body).message).toBe('Unsupported patch operation: "replace"');

    const unknownPath = await api('PATCH', path, { token, json: [{ op: 'add', path: '/bogusPermissions/1', value: 'READ' }] });
    expect(unknownPath.status).toBe(400);
    expect(record(unknownPath.body).message).toBe('Unsupported patch path: "/bogusPermissions/1"');

    const lowercase = await api('PATCH', path, { token, json: [{ op: 'add', path: `/connectionPermissions/${id}`, value: 'read' }] });
    expect(lowercase.status).toBe(500);
    expect(lowercase.body).toEqual(apiError('Unexpected internal error', 'INTERNAL_ERROR'));

    const nobody = await api('PATCH', `${DS}/users/nobody/permissions`, { token, json: [] });
    expect(nobody.status).toBe(404);
    expect(record(nobody.body).message).toBe('Not found: "nobody"');
    expect(sim.users().find((user) => user.username === 'alice')?.permissions.connectionPermissions).toEqual({});
  });

  it('a user with READ on one connection sees only that one; others are absent (404), parameters are 403', async () => {
    const admin = await login();
    const mine = await createConnection(admin, 'vm-mine');
    const other = await createConnection(admin, 'vm-other');
    await createUserWithRead(admin, 'alice', 'pw', mine);
    const alice = await login('alice', 'pw');

    expect(Object.keys(record((await api('GET', `${DS}/connections`, { token: alice })).body))).toEqual([mine]);
    expect((await api('GET', `${DS}/connections/${mine}`, { token: alice })).status).toBe(200);
    expect((await api('GET', `${DS}/connections/${other}`, { token: alice })).status).toBe(404);
    const parameters = await api('GET', `${DS}/connections/${mine}/parameters`, { token: alice });
    expect(parameters.status).toBe(403);
    expect(record(parameters.body).type).toBe('PERMISSION_DENIED');
    const create = await api('POST', `${DS}/connections`, {
      token: alice,
      json: { name: 'x', protocol: 'vnc', parameters: {}, attributes: {} },
    });
    expect(create.status).toBe(403);
    expect(Object.keys(record((await api('GET', `${DS}/connections?permission=UPDATE`, { token: alice })).body))).toEqual([]);
  });

  it('creates, re-passwords and deletes users; duplicates are 400; deleting yourself is refused', async () => {
    const token = await login();
    expect((await api('POST', `${DS}/users`, { token, json: { username: 'bob', password: 'one', attributes: {} } })).status).toBe(200);
    const duplicate = await api('POST', `${DS}/users`, { token, json: { username: 'bob', password: 'two', attributes: {} } });
    expect(duplicate.status).toBe(400);
    expect(record(duplicate.body).message).toBe('User "bob" already exists.');

    expect((await api('PUT', `${DS}/users/bob`, { token, json: { username: 'bob', password: 'two', attributes: {} } })).status).toBe(204);
    expect((await api('POST', '/tokens', { form: { username: 'bob', password: 'one' } })).status).toBe(403);
    await login('bob', 'two');
    expect(record((await api('GET', `${DS}/users/bob`, { token })).body)).toMatchObject({ username: 'bob', disabled: false });

    expect((await api('DELETE', `${DS}/users/bob`, { token })).status).toBe(204);
    expect((await api('GET', `${DS}/users/bob`, { token })).status).toBe(404);
    expect((await api('DELETE', `${DS}/users/bob`, { token })).status).toBe(404);
    expect((await api('DELETE', `${DS}/users/guacadmin`, { token })).status).toBe(501);
  });
});

describe('/__sim control surface', () => {
  it('injects seeded faults: http_500 as INTERNAL_ERROR, http_403 drops the token; stats count them', async () => {
    const token = await login();
    const faults = await fetch(`${sim.url}/__sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ rate: 1, kinds: ['http_500'], seed: 7, max: 1 }),
    });
    expect(faults.status).toBe(204);
    const failed = await api('GET', `${DS}/connections`, { token });
    expect(failed.status).toBe(500);
    expect(record(failed.body).type).toBe('INTERNAL_ERROR');
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(200);

    sim.setFaults({ rate: 1, kinds: ['http_403'], max: 1 });
    expect(record((await api('GET', `${DS}/connections`, { token })).body).type).toBe('PERMISSION_DENIED');
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(403);
    expect((await fetch(`${sim.url}/__sim/faults`, { method: 'DELETE' })).status).toBe(204);

    const stats = record(await (await fetch(`${sim.url}/__sim/stats`)).json());
    expect(stats).toMatchObject({ faults: null, faultsInjected: { http_500: 1, http_403: 1 }, logins: 1, sessions: 0 });
    // Counted per endpoint too, with the variable parts named.
    expect(stats.faultsInjectedByRoute).toEqual({ 'GET /session/data/{dataSource}/connections': { http_500: 1, http_403: 1 } });
  });

  it('draws the same faults for the same seed', async () => {
    const run = async () => {
      sim.reset();
      const token = await login();
      sim.setFaults({ rate: 0.5, kinds: ['http_500'], seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await api('GET', `${DS}/connections`, { token })).status);
      return statuses;
    };
    const first = await run();
    expect(first).toContain(500);
    expect(first).toContain(200);
    expect(await run()).toEqual(first);
  });

  it('rejects an invalid fault configuration and resets on POST /__sim/reset', async () => {
    const bad = await fetch(`${sim.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ rate: 2, kinds: ['http_418'] }) });
    expect(bad.status).toBe(400);
    const token = await login();
    await createConnection(token, 'vm-1');
    expect((await fetch(`${sim.url}/__sim/reset`, { method: 'POST' })).status).toBe(204);
    expect(sim.connections()).toEqual([]);
    expect((await api('GET', `${DS}/connections`, { token })).status).toBe(403);
  });
});

// --- the tunnel and the web client page -------------------------------------------------------------

interface TunnelClient {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

function openTunnel(params: Record<string, string>): TunnelClient {
  const url = `${sim.url.replace(/^http/, 'ws')}/websocket-tunnel?${new URLSearchParams(params)}`;
  const ws = new WebSocket(url, 'guacamole');
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return { ws, messages, closed };
}

const tunnelParams = (token: string, id: string, dataSource = 'postgresql') => ({
  token,
  GUAC_DATA_SOURCE: dataSource,
  GUAC_ID: id,
  GUAC_TYPE: 'c',
  GUAC_WIDTH: '1280',
  GUAC_HEIGHT: '720',
  GUAC_DPI: '96',
});

describe('websocket tunnel', () => {
  it('accepts a permitted token, speaks enough protocol to connect, and counts as an active connection', async () => {
    const admin = await login();
    const id = await createConnection(admin, 'vm-1');
    await createUserWithRead(admin, 'alice', 'pw', id);
    const alice = await login('alice', 'pw');

    const tunnel = openTunnel(tunnelParams(alice, id));
    await vi.waitFor(() => expect(tunnel.messages.join('')).toContain('4.sync,'));
    expect(tunnel.ws.protocol).toBe('guacamole');
    expect(tunnel.messages[0]).toMatch(/^0\.,36\.[0-9a-f-]{36};$/);

    const active = record((await api('GET', `${DS}/activeConnections`, { token: admin })).body);
    const entries = Object.values(active).map(record);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ connectionIdentifier: id, username: 'alice', remoteHost: '127.0.0.1', connectable: true });
    expect(typeof entries[0]?.startDate).toBe('number');
    expect(record((await api('GET', `${DS}/connections/${id}`, { token: admin })).body).activeConnections).toBe(1);

    tunnel.ws.close();
    await tunnel.closed;
    await vi.waitFor(() => expect(sim.activeTunnels()).toEqual([]));
    expect(record((await api('GET', `${DS}/connections/${id}`, { token: admin })).body).activeConnections).toBe(0);
  });

  it('refuses another connection (771), a bad token (769), an unknown data source (516) and a missing id (768)', async () => {
    const admin = await login();
    const mine = await createConnection(admin, 'vm-mine');
    const other = await createConnection(admin, 'vm-other');
    await createUserWithRead(admin, 'alice', 'pw', mine);
    const alice = await login('alice', 'pw');

    expect(await openTunnel(tunnelParams(alice, other)).closed).toEqual({ code: 1008, reason: '771' });
    expect(await openTunnel(tunnelParams('0'.repeat(64), mine)).closed).toEqual({ code: 1008, reason: '769' });
    expect(await openTunnel(tunnelParams(alice, mine, 'mysql')).closed).toEqual({ code: 1002, reason: '516' });
    const { GUAC_ID: _omitted, ...withoutId } = tunnelParams(alice, mine);
    expect(await openTunnel(withoutId).closed).toEqual({ code: 1002, reason: '768' });
    expect(sim.activeTunnels()).toEqual([]);
    expect(sim.stats().tunnelsRefused).toBe(4);
  });

  it('echoes tunnel pings and ends the active connection on a disconnect instruction', async () => {
    const admin = await login();
    const id = await createConnection(admin, 'vm-1');
    const tunnel = openTunnel(tunnelParams(admin, id));
    await vi.waitFor(() => expect(tunnel.messages.join('')).toContain('4.sync,'));
    tunnel.ws.send('0.,4.ping,13.1763719200000;');
    await vi.waitFor(() => expect(tunnel.messages).toContain('0.,4.ping,13.1763719200000;'));
    tunnel.ws.send('10.disconnect;');
    expect(await tunnel.closed).toEqual({ code: 1000, reason: '0' });
    await vi.waitFor(() => expect(sim.activeTunnels()).toEqual([]));
  });

  it('closes the tunnels of a session that logs out', async () => {
    const admin = await login();
    const id = await createConnection(admin, 'vm-1');
    const tunnel = openTunnel(tunnelParams(admin, id));
    await vi.waitFor(() => expect(sim.activeTunnels()).toHaveLength(1));
    expect((await api('DELETE', `/tokens/${admin}`)).status).toBe(204);
    expect((await tunnel.closed).code).toBe(1000);
    expect(sim.activeTunnels()).toEqual([]);
  });
});

/**
 * Runs the page's inline script against the simulator with just enough of a browser (location, history,
 * localStorage, fetch resolving relative URLs, Node's WHATWG WebSocket) — no browser needed.
 */
async function runClientPage(href: string) {
  const html = await (await fetch(`${sim.url}/`)).text();
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
  if (!script) throw new Error('no inline script');

  class FakeElement {
    textContent = '';
    hidden = true;
    onclick: (() => void) | null = null;
    private readonly attributes = new Map<string, string>();
    setAttribute(name: string, value: string) {
      this.attributes.set(name, value);
    }
    getAttribute(name: string) {
      return this.attributes.get(name) ?? null;
    }
  }
  const elements = new Map([
    ['status', new FakeElement()],
    ['connection-name', new FakeElement()],
    ['disconnect', new FakeElement()],
  ]);
  let current = new URL(href);
  const storage = new Map<string, string>();
  const window: Record<string, unknown> = {
    // The page listens for key presses on the document (Guacamole.Keyboard); no key is pressed here.
    document: { title: '', getElementById: (id: string) => elements.get(id) ?? null, addEventListener: () => {} },
    location: {
      get pathname() {
        return current.pathname;
      },
      get search() {
        return current.search;
      },
      get hash() {
        return current.hash;
      },
      get host() {
        return current.host;
      },
      get protocol() {
        return current.protocol;
      },
    },
    history: {
      replaceState: (_state: unknown, _title: string, url: string) => {
        current = new URL(url, current);
      },
    },
    localStorage: {
      getItem: (key: string) => storage.get(key) ?? null,
      setItem: (key: string, value: string) => storage.set(key, String(value)),
      removeItem: (key: string) => storage.delete(key),
    },
    fetch: (input: string, init?: RequestInit) => fetch(new URL(input, current), init),
    // Node 22 has the WHATWG WebSocket a browser has; `ws` offers the same onmessage/onclose surface on Node 20.
    WebSocket: globalThis.WebSocket ?? WebSocket,
    URLSearchParams,
    atob,
    Intl,
    innerWidth: 1280,
    innerHeight: 720,
    devicePixelRatio: 1,
  };
  window.window = window;
  runInNewContext(script, window);
  const status = elements.get('status')!;
  await vi.waitFor(() => expect(status.getAttribute('data-state')).toMatch(/^(idle|connected|error)$/), { timeout: 5_000 });
  return { status, window, currentUrl: () => current.href };
}

describe('web client page', () => {
  it('serves a self-contained HTML page at /guacamole/ and /guacamole/index.html', async () => {
    for (const path of ['/', '/index.html']) {
      const response = await fetch(`${sim.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/html');
      const html = await response.text();
      expect(html).toContain('id="status"');
      expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    }
  });

  it('opens #/client/<id>?token=… and shows "Connected to <name>" while the tunnel is open', async () => {
    const admin = await login();
    const id = await createConnection(admin, 'vm-42 (alice)');
    await createUserWithRead(admin, 'alice', 'pw', id);
    const alice = await login('alice', 'pw');
    const clientId = Buffer.from(`${id}\0c\0postgresql`).toString('base64url');

    const page = await runClientPage(`${sim.url}/#/client/${clientId}?token=${alice}`);
    expect(page.status.textContent).toBe('Connected to vm-42 (alice)');
    expect(sim.activeTunnels()).toMatchObject([{ connectionIdentifier: id, username: 'alice' }]);
    (page.window.guacTunnel as globalThis.WebSocket).close();
    await vi.waitFor(() => expect(sim.activeTunnels()).toEqual([]));
  });

  it('moves a pre-hash ?token= behind the hash and accepts standard base64 ids', async () => {
    const admin = await login();
    await createConnection(admin, 'vm-0');
    const id = await createConnection(admin, 'vm-1');
    const standard = Buffer.from(`${id}\0c\0postgresql`).toString('base64');
    const page = await runClientPage(`${sim.url}/?token=${admin}#/client/${standard}`);
    expect(page.status.textContent).toBe('Connected to vm-1');
    expect(page.currentUrl()).toBe(`${sim.url}/#/client/${standard}?token=${admin}`);
    (page.window.guacTunnel as globalThis.WebSocket).close();
  });

  it('shows "Permission denied" for a connection the token may not read, and for an invalid token', async () => {
    const admin = await login();
    const mine = await createConnection(admin, 'vm-mine');
    const other = await createConnection(admin, 'vm-other');
    await createUserWithRead(admin, 'alice', 'pw', mine);
    const alice = await login('alice', 'pw');
    const clientId = (id: string) => Buffer.from(`${id}\0c\0postgresql`).toString('base64url');

    const forbidden = await runClientPage(`${sim.url}/#/client/${clientId(other)}?token=${alice}`);
    expect(forbidden.status.getAttribute('data-state')).toBe('error');
    expect(forbidden.status.textContent).toMatch(/^Permission denied/);

    const invalid = await runClientPage(`${sim.url}/#/client/${clientId(mine)}?token=${'0'.repeat(64)}`);
    expect(invalid.status.textContent).toMatch(/^Permission denied/);
    expect(sim.activeTunnels()).toEqual([]);
  });
});
