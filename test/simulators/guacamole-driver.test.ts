/**
 * The bridge's Guacamole driver against the simulator: idempotent writes, re-login when the web app forgets the
 * token, and how failures are classified into InfraError.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGuacamoleDriver, guacamoleClientId } from '../../on-prem-bridge/src/drivers/guacamole';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { startGuacamoleSimulator, type GuacamoleSimulator } from '../../simulators/guacamole/server';

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

const driver = (overrides: Partial<Parameters<typeof createGuacamoleDriver>[0]> = {}) =>
  createGuacamoleDriver({ url: sim.url, username: 'guacadmin', password: 'guacadmin', ...overrides });

async function infraError(promise: Promise<unknown>): Promise<InfraError> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  if (!(error instanceof InfraError)) throw new Error(`expected an InfraError, got ${String(error)}`);
  return error;
}

const vnc = (hostname: string) => ({ name: 'desk-1', protocol: 'vnc', parameters: { hostname, port: '5900', password: 'pw' } });

describe('guacamole driver', () => {
  it('creates, lists and finds connections by name', async () => {
    const guac = driver();
    const id = await guac.createConnection(vnc('10.0.0.1'));
    expect(id).toMatch(/^\d+$/);
    expect(await guac.listConnections()).toEqual([{ identifier: id, name: 'desk-1', protocol: 'vnc', activeConnections: 0 }]);
    expect(await guac.findConnectionByName('desk-1')).toMatchObject({ identifier: id });
    expect(await guac.findConnectionByName('desk-2')).toBeNull();
  });

  it('treats a duplicate name as "already there": same identifier, parameters brought up to date', async () => {
    const guac = driver();
    const first = await guac.createConnection(vnc('10.0.0.1'));
    const again = await guac.createConnection({ name: 'desk-1', protocol: 'rdp', parameters: { hostname: '10.0.0.2', port: '3389' } });
    expect(again).toBe(first);
    expect(sim.connections()).toMatchObject([{ identifier: first, protocol: 'rdp', parameters: { hostname: '10.0.0.2', port: '3389' } }]);
  });

  it('updates with a full PUT that keeps attributes it does not manage', async () => {
    const guac = driver();
    const id = await guac.createConnection(vnc('10.0.0.1'));
    // An operator pinned the connection to a guacd; the bridge must not undo that.
    const token = (await guac.loginAs('guacadmin', 'guacadmin')).authToken;
    const pin = await fetch(`${sim.url}/api/session/data/postgresql/connections/${id}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'Guacamole-Token': token },
      body: JSON.stringify({
        name: 'desk-1',
        protocol: 'vnc',
        parameters: { hostname: '10.0.0.1' },
        attributes: { 'guacd-hostname': 'guacd-2' },
      }),
    });
    expect(pin.status).toBe(204);

    await guac.updateConnection(id, vnc('10.0.0.9'));
    expect(sim.connections()).toMatchObject([
      { parameters: { hostname: '10.0.0.9', port: '5900', password: 'pw' }, attributes: { 'guacd-hostname': 'guacd-2' } },
    ]);
    const missing = await infraError(guac.updateConnection('999', vnc('10.0.0.9')));
    expect(missing).toMatchObject({ status: 404, retryable: false, system: 'guacamole' });
  });

  it('deletes connections and users, and a missing one is fine', async () => {
    const guac = driver();
    const id = await guac.createConnection(vnc('10.0.0.1'));
    await guac.deleteConnection(id);
    await guac.deleteConnection(id);
    await guac.deleteConnection('12345');
    expect(sim.connections()).toEqual([]);
    await guac.ensureUser('desk-1-user', 'pw', {});
    await guac.deleteUser('desk-1-user');
    await guac.deleteUser('desk-1-user');
    expect(sim.users().map((user) => user.username)).toEqual(['guacadmin']);
  });

  it('ensureUser creates the user once and never resets its password; setUserPassword does, once', async () => {
    const guac = driver();
    expect(await guac.ensureUser('alice', 'one', { 'guac-organization': 'cdaas site=a deployment=b' })).toBe('created');
    expect((await guac.loginAs('alice', 'one')).dataSource).toBe('postgresql');
    expect(await guac.ensureUser('alice', 'two', { 'guac-organization': 'cdaas site=a deployment=b' })).toBe('exists');
    await guac.loginAs('alice', 'one');
    expect((await guac.listUsers()).find((u) => u.username === 'alice')?.attributes).toMatchObject({
      'guac-organization': 'cdaas site=a deployment=b',
    });
    await guac.setUserPassword('alice', 'two');
    await guac.loginAs('alice', 'two');
    const stale = await infraError(guac.loginAs('alice', 'one'));
    expect(stale).toMatchObject({ status: 403, retryable: false });
    expect(stale.message).toContain('INVALID_CREDENTIALS');
  });

  it('grants READ so the user token sees just that connection, and builds the client URL', async () => {
    const guac = driver({ publicUrl: 'https://desk.example.com/guacamole/' });
    const id = await guac.createConnection(vnc('10.0.0.1'));
    await guac.createConnection({ ...vnc('10.0.0.2'), name: 'desk-2' });
    await guac.ensureUser('alice', 'pw', {});
    await guac.grantConnectionRead('alice', id);
    expect(sim.users().find((user) => user.username === 'alice')?.permissions.connectionPermissions).toEqual({ [id]: ['READ'] });

    const session = await guac.loginAs('alice', 'pw');
    expect(session.authToken).toMatch(/^[0-9A-F]{64}$/);
    const visible = await fetch(`${sim.url}/api/session/data/${session.dataSource}/connections`, {
      headers: { 'Guacamole-Token': session.authToken },
    });
    expect(Object.keys((await visible.json()) as object)).toEqual([id]);

    const url = guac.clientUrl(id, session.dataSource, session.authToken);
    expect(url).toBe(`https://desk.example.com/guacamole/#/client/${guacamoleClientId(id, 'postgresql')}?token=${session.authToken}`);
  });

  it('encodes client ids as the web client does', () => {
    expect(guacamoleClientId('1', 'postgresql')).toBe('MQBjAHBvc3RncmVzcWw');
    expect(guacamoleClientId('My Connection', 'json')).toBe('TXkgQ29ubmVjdGlvbgBjAGpzb24');
    expect(driver().clientUrl('1', 'postgresql', 'ABC')).toBe(`${sim.url}/#/client/MQBjAHBvc3RncmVzcWw?token=ABC`);
  });

  it('logs in again once when the web app has forgotten the token (http_403 fault, restart)', async () => {
    const guac = driver();
    await guac.listConnections();
    expect(sim.stats().logins).toBe(1);

    sim.setFaults({ rate: 1, kinds: ['http_403'], max: 1 });
    await guac.createConnection(vnc('10.0.0.1'));
    expect(sim.stats()).toMatchObject({ logins: 2, faultsInjected: { http_403: 1 } });

    sim.restart();
    expect(await guac.listConnections()).toHaveLength(1);
    expect(sim.stats().logins).toBe(3);
  });

  it("leaves a session that ends again right after the fresh login to the caller's backoff (retryable)", async () => {
    const guac = driver();
    await guac.listConnections();
    sim.setFaults({ rate: 1, kinds: ['http_403'], max: 2 });
    const error = await infraError(guac.listConnections());
    expect(error).toMatchObject({ system: 'guacamole', status: 403, retryable: true });
    expect(error.message).toContain('the session ended again right after a fresh login');
    // The next call logs in once more and goes through.
    expect(await guac.listConnections()).toEqual([]);
    expect(sim.stats()).toMatchObject({ logins: 3, faultsInjected: { http_403: 2 } });
  });

  it('classifies http_500 as retryable and recovers once the fault is gone', async () => {
    const guac = driver();
    sim.setFaults({ rate: 1, kinds: ['http_500'] });
    const error = await infraError(guac.listConnections());
    expect(error).toMatchObject({ system: 'guacamole', status: 500, retryable: true });
    expect(error.message).toContain('INTERNAL_ERROR');
    sim.setFaults(null);
    expect(await guac.listConnections()).toEqual([]);
  });

  it('classifies refused requests as permanent: bad admin password, 403 after a fresh login, 400 on bad input', async () => {
    expect(await infraError(driver({ password: 'wrong' }).listConnections())).toMatchObject({ status: 403, retryable: false });

    await driver().ensureUser('viewer', 'pw', {});
    const viewer = driver({ username: 'viewer', password: 'pw' });
    const denied = await infraError(viewer.createConnection(vnc('10.0.0.1')));
    expect(denied).toMatchObject({ status: 403, retryable: false });
    // One admin login for ensureUser, then the viewer's first login and the single retry after the first 403.
    expect(sim.stats().logins).toBe(3);

    const blank = await infraError(driver().createConnection({ name: ' ', protocol: 'vnc', parameters: {} }));
    expect(blank).toMatchObject({ status: 400, retryable: false });
  });

  it('classifies network failures and time-outs as retryable (status 0)', async () => {
    const unreachable = createGuacamoleDriver({ url: 'http://127.0.0.1:9/guacamole', username: 'a', password: 'b', timeoutMs: 2_000 });
    expect(await infraError(unreachable.listConnections())).toMatchObject({ status: 0, retryable: true });

    const slow = await startGuacamoleSimulator({ port: 0, requestDelayMs: 500 });
    try {
      const impatient = createGuacamoleDriver({ url: slow.url, username: 'guacadmin', password: 'guacadmin', timeoutMs: 50 });
      const timedOut = await infraError(impatient.listConnections());
      expect(timedOut).toMatchObject({ status: 0, retryable: true });
      expect(timedOut.message).toContain('timed out');
    } finally {
      await slow.stop();
    }
  });

  it('shares one login between concurrent calls', async () => {
    const guac = driver();
    await Promise.all([guac.listConnections(), guac.listConnections(), guac.findConnectionByName('x')]);
    expect(sim.stats().logins).toBe(1);
  });
});
