/**
 * Connection sharing in the Guacamole simulator, as guacamole-client's JDBC extension does it: sharing profiles are
 * children of a connection, sharing credentials are minted on a live (active) connection, a share key alone logs in
 * to the `-shared` data source and joins that live session with the profile's parameters (read-only honoured), and
 * the guests' sessions end with the sharer's. The bridge's driver does the admin side, as it does in production.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createGuacamoleDriver } from '../../on-prem-bridge/src/drivers/guacamole';
import { type GuacamoleSimulator, startGuacamoleSimulator } from '../../simulators/guacamole/server';

let sim: GuacamoleSimulator;

beforeAll(async () => {
  sim = await startGuacamoleSimulator({ port: 0 });
});
afterAll(async () => {
  await sim.stop();
});
beforeEach(() => {
  sim.reset();
});

const DS = '/session/data/postgresql';
const driver = () => createGuacamoleDriver({ url: sim.url, username: 'guacadmin', password: 'guacadmin' });

async function api(method: string, path: string, opts: { token?: string; json?: unknown; form?: Record<string, string> } = {}) {
  const headers: Record<string, string> = {};
  let body: string | undefined;
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
  return { status: response.status, body: (text === '' ? null : JSON.parse(text)) as Record<string, unknown> };
}

async function login(form: Record<string, string>) {
  const reply = await api('POST', '/tokens', { form });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body as { authToken: string; username: string; dataSource: string; availableDataSources: string[] };
}

function openTunnel(token: string, id: string, dataSource: string) {
  const query = new URLSearchParams({
    token,
    GUAC_DATA_SOURCE: dataSource,
    GUAC_ID: id,
    GUAC_TYPE: 'c',
    GUAC_WIDTH: '800',
    GUAC_HEIGHT: '600',
  });
  const ws = new WebSocket(`${sim.url.replace(/^http/, 'ws')}/websocket-tunnel?${query}`, 'guacamole');
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const connected = vi.waitFor(() => expect(messages.join('')).toContain('4.sync,'));
  return { ws, closed, connected };
}

/** A desktop's connection and user, and the user's own live tunnel to it (what open_session gives the owner). */
async function ownerConnected() {
  const guac = driver();
  const connectionId = await guac.createConnection({ name: 'desk-a', protocol: 'vnc', parameters: { hostname: '10.0.0.9', port: '5900' } });
  await guac.ensureUser('desk-a', 'Owner-pw-1', {});
  await guac.grantConnectionRead('desk-a', connectionId);
  const owner = await login({ username: 'desk-a', password: 'Owner-pw-1' });
  const tunnel = openTunnel(owner.authToken, connectionId, 'postgresql');
  await tunnel.connected;
  return { guac, connectionId, owner, tunnel };
}

describe('sharing profiles', () => {
  it('are children of a connection, keep their parameters for those allowed to read them, and go with the connection', async () => {
    const guac = driver();
    const connectionId = await guac.createConnection({
      name: 'desk-a',
      protocol: 'vnc',
      parameters: { hostname: '10.0.0.9', port: '5900' },
    });
    const id = await guac.createSharingProfile({
      name: 'desk-a view only',
      primaryConnectionIdentifier: connectionId,
      parameters: { 'read-only': 'true' },
    });
    expect(await guac.listSharingProfiles()).toEqual([
      { identifier: id, name: 'desk-a view only', primaryConnectionIdentifier: connectionId },
    ]);

    const admin = (await login({ username: 'guacadmin', password: 'guacadmin' })).authToken;
    expect((await api('GET', `${DS}/sharingProfiles/${id}/parameters`, { token: admin })).body).toEqual({ 'read-only': 'true' });
    const again = await api('POST', `${DS}/sharingProfiles`, {
      token: admin,
      json: { name: 'desk-a view only', primaryConnectionIdentifier: connectionId, parameters: {}, attributes: {} },
    });
    expect(again).toMatchObject({
      status: 400,
      body: { type: 'BAD_REQUEST', message: 'The sharing profile "desk-a view only" already exists.' },
    });

    // A user who may only read the connection may not add profiles to it (CREATE_SHARING_PROFILE, UPDATE on the parent).
    await guac.ensureUser('alice', 'Alice-pw-1', {});
    await guac.grantConnectionRead('alice', connectionId);
    const alice = (await login({ username: 'alice', password: 'Alice-pw-1' })).authToken;
    const refused = await api('POST', `${DS}/sharingProfiles`, {
      token: alice,
      json: { name: 'mine', primaryConnectionIdentifier: connectionId, parameters: {}, attributes: {} },
    });
    expect(refused).toMatchObject({ status: 403, body: { type: 'PERMISSION_DENIED', message: 'Permission denied.' } });

    await guac.deleteConnection(connectionId);
    expect(await guac.listSharingProfiles()).toEqual([]);
  });
});

describe('sharing a live session', () => {
  it('mints a key on the owner’s active connection; the key alone logs in, anonymously, to the -shared data source', async () => {
    const { guac, connectionId } = await ownerConnected();
    const profile = await guac.createSharingProfile({
      name: 'view',
      primaryConnectionIdentifier: connectionId,
      parameters: { 'read-only': 'true' },
    });
    const [live] = await guac.listActiveConnections();
    expect(live).toMatchObject({ connectionIdentifier: connectionId, username: 'desk-a' });
    const key = await guac.sharingCredentials(live!.identifier, profile);
    expect(key).toMatch(/^[A-Za-z0-9_-]{44}$/);
    expect(guac.shareUrl(key)).toBe(`${sim.url}/#/?key=${key}`);

    const guest = await login({ key });
    expect(guest).toMatchObject({ username: '', dataSource: 'postgresql-shared', availableDataSources: ['postgresql-shared'] });
    const shared = await api('GET', '/session/data/postgresql-shared/connections', { token: guest.authToken });
    expect(shared.body).toEqual({
      [key]: {
        name: 'desk-a',
        identifier: key,
        parentIdentifier: 'ROOT',
        protocol: 'vnc',
        attributes: { 'jdbc-shared-by': 'desk-a' },
        activeConnections: 0,
      },
    });
    // The guest sees nothing of the JDBC data source.
    expect((await api('GET', `${DS}/connections`, { token: guest.authToken })).status).toBe(404);
    // An unknown key is an ordinary bad login.
    expect(await api('POST', '/tokens', { form: { key: 'A'.repeat(44) } })).toMatchObject({
      status: 403,
      body: { type: 'INVALID_CREDENTIALS' },
    });
  });

  it('refuses credentials on a profile of another connection, and on an active connection that is not there', async () => {
    const { guac } = await ownerConnected();
    const other = await guac.createConnection({ name: 'desk-b', protocol: 'vnc', parameters: { hostname: '10.0.0.8', port: '5900' } });
    const foreign = await guac.createSharingProfile({ name: 'view', primaryConnectionIdentifier: other, parameters: {} });
    const [live] = await guac.listActiveConnections();
    await expect(guac.sharingCredentials(live!.identifier, foreign)).rejects.toThrow(/403 PERMISSION_DENIED: Permission denied\./);
    await expect(guac.sharingCredentials('00000000-0000-4000-8000-000000000000', foreign)).rejects.toThrow(/404 NOT_FOUND/);
  });

  it('lets the sharer mint credentials through its own tunnel, and nobody through someone else’s', async () => {
    const { guac, connectionId, owner } = await ownerConnected();
    const profile = await guac.createSharingProfile({ name: 'view', primaryConnectionIdentifier: connectionId, parameters: {} });
    const [tunnel] = (await api('GET', '/session/tunnels', { token: owner.authToken })).body as unknown as string[];
    const path = `/session/tunnels/${tunnel}/activeConnection/sharingCredentials/${profile}`;
    // Sharing under a profile needs READ on it (SharingProfileService#retrieveObject), which the owner lacks at first.
    expect(await api('GET', path, { token: owner.authToken })).toMatchObject({ status: 403, body: { message: 'Permission denied.' } });
    const admin = (await login({ username: 'guacadmin', password: 'guacadmin' })).authToken;
    const grant = [{ op: 'add', path: `/sharingProfilePermissions/${profile}`, value: 'READ' }];
    expect((await api('PATCH', `${DS}/users/desk-a/permissions`, { token: admin, json: grant })).status).toBe(204);
    const mine = await api('GET', `/session/tunnels/${tunnel}/activeConnection/sharingCredentials/${profile}`, { token: owner.authToken });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ expected: [{ name: 'key', type: 'QUERY_PARAMETER' }] });
    const theirs = await api('GET', `/session/tunnels/${tunnel}/activeConnection/sharingCredentials/${profile}`, { token: admin });
    expect(theirs).toMatchObject({ status: 404, body: { message: 'No such tunnel.' } });
  });

  it('joins the guest to the live session read-only, and ends the guest’s session (and the key) with the owner’s', async () => {
    const { guac, connectionId, tunnel: ownerTunnel } = await ownerConnected();
    const view = await guac.createSharingProfile({
      name: 'view',
      primaryConnectionIdentifier: connectionId,
      parameters: { 'read-only': 'true' },
    });
    const control = await guac.createSharingProfile({ name: 'control', primaryConnectionIdentifier: connectionId, parameters: {} });
    const [live] = await guac.listActiveConnections();
    const viewKey = await guac.sharingCredentials(live!.identifier, view);
    const controlKey = await guac.sharingCredentials(live!.identifier, control);

    const viewer = openTunnel((await login({ key: viewKey })).authToken, viewKey, 'postgresql-shared');
    const helper = openTunnel((await login({ key: controlKey })).authToken, controlKey, 'postgresql-shared');
    await Promise.all([viewer.connected, helper.connected]);
    viewer.ws.send('3.key,5.65307,1.1;');
    helper.ws.send('3.key,5.65307,1.1;');
    await vi.waitFor(() => {
      const joined = sim.activeTunnels().filter((a) => a.sharedFrom === live!.identifier);
      expect(joined.map((a) => [a.username, a.readOnly, a.input]).sort()).toEqual([
        ['', false, { accepted: 1, ignored: 0 }],
        ['', true, { accepted: 0, ignored: 1 }],
      ]);
    });
    // Guests do not count as the connection's active connections (only primary ones do).
    expect((await guac.getConnection(connectionId)) && (await guac.listConnections())[0]?.activeConnections).toBe(1);

    ownerTunnel.ws.close();
    expect(await viewer.closed).toMatchObject({ code: 1000 });
    expect(await helper.closed).toMatchObject({ code: 1000 });
    expect(sim.activeTunnels()).toEqual([]);
    // The key died with the owner's connection.
    expect(await api('POST', '/tokens', { form: { key: viewKey } })).toMatchObject({ status: 403, body: { type: 'INVALID_CREDENTIALS' } });
  });
});

describe('ending a guest’s session (an admin, as the bridge does when a share link is revoked)', () => {
  it('lists the guest as an anonymous active connection, names its profile only in the history, and kills it by PATCH', async () => {
    const { guac, connectionId, owner, tunnel: ownerTunnel } = await ownerConnected();
    const linkA = await guac.createSharingProfile({ name: 'link a', primaryConnectionIdentifier: connectionId, parameters: {} });
    const linkB = await guac.createSharingProfile({ name: 'link b', primaryConnectionIdentifier: connectionId, parameters: {} });
    const [live] = await guac.listActiveConnections();
    const keyA = await guac.sharingCredentials(live!.identifier, linkA);
    const keyB = await guac.sharingCredentials(live!.identifier, linkB);
    const guestA = await login({ key: keyA });
    const a = openTunnel(guestA.authToken, keyA, 'postgresql-shared');
    const b = openTunnel((await login({ key: keyB })).authToken, keyB, 'postgresql-shared');
    await Promise.all([a.connected, b.connected]);

    const admin = (await login({ username: 'guacadmin', password: 'guacadmin' })).authToken;
    // APIActiveConnection: the guest is the anonymous user "" on the owner's connection; no field names its profile.
    const listed = Object.values((await api('GET', `${DS}/activeConnections`, { token: admin })).body) as Record<string, unknown>[];
    const guests = listed.filter((x) => x.username === '');
    expect(guests).toHaveLength(2);
    for (const guest of guests) {
      expect(Object.keys(guest).sort()).toEqual([
        'connectable',
        'connectionIdentifier',
        'identifier',
        'remoteHost',
        'startDate',
        'username',
      ]);
      expect(guest).toMatchObject({ connectionIdentifier: connectionId, connectable: true });
    }
    // The connection's history does: each tunnel's row, with the live identifier as its uuid.
    const history = (await guac.connectionHistory(connectionId)).filter((r) => r.endDate === null);
    const joinedA = history.find((r) => r.sharingProfileName === 'link a');
    expect(joinedA).toMatchObject({ username: '', sharingProfileIdentifier: linkA });
    expect(guests.map((g) => g.identifier)).toContain(joinedA!.uuid);
    expect(history.find((r) => r.username === 'desk-a')).toMatchObject({ uuid: live!.identifier, sharingProfileIdentifier: null });
    // APIConnectionRecord, newest first; rows read from the database are never "active" (ModeledActivityRecord).
    const raw = (await api('GET', `${DS}/connections/${connectionId}/history`, { token: admin })).body as unknown as Record<
      string,
      unknown
    >[];
    expect(Object.keys(raw[0]!).sort()).toEqual(
      ['active', 'attributes', 'connectionIdentifier', 'connectionName', 'endDate', 'identifier', 'logs', 'remoteHost']
        .concat(['sharingProfileIdentifier', 'sharingProfileName', 'startDate', 'username', 'uuid'])
        .sort(),
    );
    expect(raw.map((r) => r.active)).toEqual([false, false, false]);

    // Someone who may not delete active connections is refused; the admin's PATCH closes guest A's tunnel only.
    const patch = [{ op: 'remove', path: `/${joinedA!.uuid}` }];
    expect((await api('PATCH', `${DS}/activeConnections`, { token: owner.authToken, json: patch })).status).toBe(403);
    const killed = await api('PATCH', `${DS}/activeConnections`, { token: admin, json: patch });
    expect(killed).toEqual({ status: 200, body: { patches: [{ op: 'remove', identifier: joinedA!.uuid, path: `/${joinedA!.uuid}` }] } });
    expect(await a.closed).toMatchObject({ code: 1000 });
    expect(
      sim
        .activeTunnels()
        .map((x) => x.username)
        .sort(),
    ).toEqual(['', 'desk-a']);
    expect((await guac.connectionHistory(connectionId)).find((r) => r.uuid === joinedA!.uuid)?.endDate).toEqual(expect.any(Number));

    // The key itself lives as long as the owner's connection: the guest's Reconnect gets back in...
    const back = openTunnel(guestA.authToken, keyA, 'postgresql-shared');
    await back.connected;
    // ...until its sharing profile is deleted: the new history row would name a deleted profile, which the schema
    // refuses, so the join fails. The history keeps the profile's name.
    await guac.killActiveConnections([sim.activeTunnels().find((x) => x.sharingProfileIdentifier === linkA)!.identifier]);
    await back.closed;
    await guac.deleteSharingProfile(linkA);
    const locked = openTunnel(guestA.authToken, keyA, 'postgresql-shared');
    expect(await locked.closed).toMatchObject({ reason: '512' });
    expect((await guac.connectionHistory(connectionId)).filter((r) => r.sharingProfileName === 'link a')).toEqual([
      expect.objectContaining({ sharingProfileIdentifier: null, endDate: expect.any(Number) }),
      expect.objectContaining({ sharingProfileIdentifier: null, endDate: expect.any(Number) }),
    ]);
    // Guest B and the owner never noticed; a remove of what is gone is no error.
    expect(
      sim
        .activeTunnels()
        .map((x) => x.username)
        .sort(),
    ).toEqual(['', 'desk-a']);
    expect((await api('PATCH', `${DS}/activeConnections`, { token: admin, json: patch })).status).toBe(200);
    ownerTunnel.ws.close();
    await b.closed;
  });
});
