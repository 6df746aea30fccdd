/**
 * The desktop lifecycle through the edge: API → DesktopSession → jobs queue → SiteHub →
 * bridge WebSocket, and reports back, with a stand-in bridge speaking the protocol.
 */
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, settled, token, uniqueUser } from './helpers';

let bridge: FakeBridge;

beforeAll(async () => {
  bridge = await FakeBridge.connect('local', await registerSite('local'));
});

async function createDesktop(user: string, plan = 'PREMIUM') {
  const res = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { name: 'Lab', plan } });
  expect(res.status).toBe(202);
  return res.body!.data;
}

async function statusOf(user: string, id: string) {
  return (await api<Desktop>('GET', `/api/v1/desktops/${id}`, { token: await token(user) })).body!.data;
}

const waitForStatus = (user: string, id: string, status: Desktop['status']) =>
  vi.waitFor(
    async () => {
      const d = await statusOf(user, id);
      expect(d.status).toBe(status);
      return d;
    },
    { timeout: 10_000, interval: 20 },
  );

describe('lifecycle through the bridge', () => {
  it('walks create → RUNNING → stop → STOPPED → start → RUNNING → delete → DELETED, recording every transition', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const create = await bridge.command(d.id, 'create');
    expect(create.spec).toMatchObject({ cpuCores: 8, memoryMb: 8192, protocol: 'vnc', userId: user });
    await bridge.runCreate(create, { vmId: 20001, ipAddress: '10.20.0.5', connectionId: '7' });
    const running = await waitForStatus(user, d.id, 'RUNNING');
    expect(running).toMatchObject({
      vmId: 20001,
      node: 'pve1',
      ipAddress: '10.20.0.5',
      connectionId: '7',
      errorMessage: null,
      siteBridge: 'connected',
    });

    expect((await api('POST', `/api/v1/desktops/${d.id}/stop`, { token: await token(user) })).status).toBe(202);
    const stop = await bridge.command(d.id, 'stop');
    bridge.progress(stop, 'shutdown', 'shutting down');
    bridge.complete(stop);
    const stopped = await waitForStatus(user, d.id, 'STOPPED');
    expect(stopped.ipAddress).toBeNull();

    expect((await api('POST', `/api/v1/desktops/${d.id}/start`, { token: await token(user) })).status).toBe(202);
    const start = await bridge.command(d.id, 'start');
    bridge.progress(start, 'start_vm', 'starting');
    bridge.progress(start, 'wait_ip', 'waiting for IP');
    bridge.progress(start, 'connection', 'updating connection', { ipAddress: '10.20.0.9' });
    bridge.complete(start, { ipAddress: '10.20.0.9', connectionId: '7' });
    expect((await waitForStatus(user, d.id, 'RUNNING')).ipAddress).toBe('10.20.0.9');

    const del = await api<Desktop>('DELETE', `/api/v1/desktops/${d.id}`, { token: await token(user) });
    expect(del.status).toBe(202);
    expect(del.body?.data.status).toBe('STOPPING');
    const remove = await bridge.command(d.id, 'delete');
    bridge.progress(remove, 'destroy', 'destroying VM 20001');
    bridge.complete(remove);
    const deleted = await waitForStatus(user, d.id, 'DELETED');
    expect(deleted.deletedAt).not.toBeNull();

    const events = (await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(user) })).body!.data;
    expect(events.map((e) => e.to)).toEqual([
      'PENDING',
      'PROVISIONING',
      'STARTING',
      'WAITING_FOR_IP',
      'CONFIGURING',
      'RUNNING',
      'STOPPING',
      'STOPPED',
      'STARTING',
      'WAITING_FOR_IP',
      'CONFIGURING',
      'RUNNING',
      'STOPPING',
      'DELETED',
    ]);
    expect(events[0]).toMatchObject({ from: null, event: 'create', actor: `user:${user}` });
    expect(events[1]).toMatchObject({ actor: 'bridge:local', reason: 'cloning template 9000' });
    for (const e of events) expect(Date.parse(e.at)).not.toBeNaN();
  });

  it('writes every transition through to Postgres', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user, 'BASIC');
    await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId: 20002, ipAddress: '10.20.0.6', connectionId: '8' });
    await waitForStatus(user, d.id, 'RUNNING');
    // An admin's fleet-wide list is read from the Postgres copy.
    const admin = await token('root', { roles: ['admin'] });
    await vi.waitFor(
      async () => {
        const list = await api<{ items: Desktop[] }>('GET', '/api/v1/desktops?status=RUNNING&plan=BASIC&pageSize=100', { token: admin });
        const row = list.body?.data.items.find((x) => x.id === d.id);
        expect([row?.status, row?.vmId]).toEqual(['RUNNING', 20002]);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it('refuses an action the status does not allow with a 409 naming the status', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const res = await api('POST', `/api/v1/desktops/${d.id}/start`, { token: await token(user) });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ success: false, error: { code: 'INVALID_STATE' } });
    expect(res.body?.message).toContain('PENDING');
    const stop = await api('POST', `/api/v1/desktops/${d.id}/stop`, { token: await token(user) });
    expect(stop.status).toBe(409);
    expect(stop.body?.message).toMatch(/it is PENDING/);
  });

  it('ignores results of a superseded command: a delete overtakes a create', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const create = await bridge.command(d.id, 'create');
    await api('DELETE', `/api/v1/desktops/${d.id}`, { token: await token(user) });
    const remove = await bridge.command(d.id, 'delete');
    const cancel = await bridge.waitFor((f) => f.type === 'cancel' && f.commandId === create.id);
    expect(cancel).toMatchObject({ reason: 'superseded by delete' });
    // The late create result must not resurrect the desktop.
    await bridge.runCreate(create, { vmId: 20003, ipAddress: '10.20.0.7', connectionId: '9' });
    bridge.complete(remove);
    await waitForStatus(user, d.id, 'DELETED');
    const events = (await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(user) })).body!.data;
    expect(events.map((e) => e.to)).toEqual(['PENDING', 'STOPPING', 'DELETED']);
  });

  it('treats a duplicate completion as a no-op', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const create = await bridge.command(d.id, 'create');
    await bridge.runCreate(create, { vmId: 20004, ipAddress: '10.20.0.8', connectionId: '10' });
    await waitForStatus(user, d.id, 'RUNNING');
    const before = (await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(user) })).body!.data;
    bridge.complete(create, { vmId: 99999 });
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    await vi.waitFor(async () => expect(await stub.isActiveCommand(create.id)).toBe(false));
    const after = (await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(user) })).body!.data;
    expect(after).toEqual(before);
    expect((await statusOf(user, d.id)).vmId).toBe(20004);
  });

  it('refuses reports from a site about a desktop of another site', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const create = await bridge.command(d.id, 'create');
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    const r = await stub.bridgeReport('intruder', { type: 'complete', commandId: create.id, desktopId: d.id, facts: { vmId: 1 } });
    expect(r).toEqual({ applied: false, reason: 'desktop belongs to site local' });
    expect((await statusOf(user, d.id)).status).toBe('PENDING');
  });

  it('frees the quota slot of a desktop the moment it is DELETED, even before its release has run', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    expect((await api('DELETE', `/api/v1/desktops/${d.id}`, { token: await token(user) })).status).toBe(202);
    bridge.complete(await bridge.command(d.id, 'delete'));
    await waitForStatus(user, d.id, 'DELETED');
    // As if the desktop's outbox had not reached the user's account yet: the slot is still taken there.
    await runInDurableObject(env.USER_ACCOUNT.getByName(user), (_o, state) => {
      state.storage.sql.exec('INSERT OR REPLACE INTO active_desktops (desktop_id, reserved_at) VALUES (?, ?)', d.id, Date.now());
    });
    const again = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { plan: 'BASIC' } });
    expect(again.status).toBe(202);
  });

  it('fails a stuck step with a watchdog and says why', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const create = await bridge.command(d.id, 'create');
    bridge.progress(create, 'clone', 'cloning template 9000');
    await waitForStatus(user, d.id, 'PROVISIONING');
    // The step's write-through to Postgres runs from the alarm a moment later; let it finish,
    // or the alarm below may be mid-flight on its own and not be there to run.
    await settled(d.id);
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    // Pretend the step began an hour ago, then let the alarm fire.
    await runInDurableObject(stub, (obj, state) => {
      const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one();
      const s = JSON.parse(row.value) as { statusSince: number };
      s.statusSince -= 3_600_000;
      state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'state'`, JSON.stringify(s));
      // Drop the object's parsed copy so it reads the edited storage.
      (obj as unknown as { cachedState: unknown }).cachedState = undefined;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const failed = await statusOf(user, d.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.errorMessage).toBe('Timed out after 600 s in PROVISIONING (cloning the template VM)');
    await bridge.waitFor((f) => f.type === 'cancel' && f.commandId === create.id);
  });

  it('connects once through a short-lived link that the bridge turns into a Guacamole session', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId: 20005, ipAddress: '10.20.0.10', connectionId: '11' });
    await waitForStatus(user, d.id, 'RUNNING');
    const res = await api<{ url: string; expiresAt: string }>('GET', `/api/v1/desktops/${d.id}/connect`, { token: await token(user) });
    expect(res.status).toBe(200);
    const { url, expiresAt } = res.body!.data;
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(300_000);
    expect((await statusOf(user, d.id)).lastAccessedAt).not.toBeNull();

    // The ticket rides in the fragment: never sent by a browser, never in an access log.
    const link = new URL(url);
    expect(link.pathname).toBe('/api/v1/connect');
    const ticket = link.hash.slice(1);
    expect(ticket).toMatch(new RegExp(`^${d.id}\\.`));
    // Fetching the page (a chat app's link preview does) spends nothing and shows no secret.
    const page = await api('GET', link.pathname);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).not.toContain(ticket.split('.')[1]);
    const opening = api<{ url: string }>('POST', link.pathname, { body: { ticket } });
    const req = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'open_session' && f.request.desktopId === d.id);
    if (req.type !== 'request') throw new Error('unreachable');
    expect(req.request).toEqual({ op: 'open_session', desktopId: d.id, connectionId: '11' });
    bridge.send({
      type: 'response',
      requestId: req.requestId,
      ok: true,
      url: 'http://guac.test/guacamole/#/client/MTEAYwBwb3N0Z3Jlc3Fs?token=AB',
    });
    const opened = await opening;
    expect(opened.status).toBe(200);
    expect(opened.body?.data.url).toBe('http://guac.test/guacamole/#/client/MTEAYwBwb3N0Z3Jlc3Fs?token=AB');
    expect(opened.headers.get('cache-control')).toBe('no-store');

    const again = await api('POST', link.pathname, { body: { ticket } });
    expect(again.status).toBe(404);
    expect(again.body?.message).toMatch(/expired or was already used/);
  });

  it('refuses to connect to a desktop that is not RUNNING', async () => {
    const user = uniqueUser();
    const d = await createDesktop(user);
    const res = await api('GET', `/api/v1/desktops/${d.id}/connect`, { token: await token(user) });
    expect(res.status).toBe(409);
    expect(res.body?.message).toContain('PENDING');
  });
});
