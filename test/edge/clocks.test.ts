/**
 * Idle stop, session limits and expiry, driven by the Durable Object's alarm. No
 * sleeping: "time passes" by moving the desktop's recorded times back, then the alarm
 * is run with the workerd test helper.
 */
import { env, exports } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../src/schemas/desktop';
import type { LiveMessage } from '../../src/schemas/live';
import { seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, settled, token } from './helpers';

const SITE = 'clock-site';
const MIN = 60_000;
let bridge: FakeBridge;

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});

async function runningDesktop(user: string, overrides: Parameters<typeof seedDesktop>[2] = {}): Promise<Desktop> {
  const running = await bridge.runningDesktop(user, overrides);
  await quiet(running.id);
  return running;
}

/**
 * Waits until the desktop has done its own work (outbox empty, Postgres caught up) and its
 * alarm is its next clock, minutes away. A test that then moves time and runs the alarm
 * does not race an alarm the object set for itself (a write-through retry a few hundred ms
 * out), which the runtime would fire on its own, with the moved times, at the same moment.
 */
async function quiet(id: string): Promise<void> {
  await settled(id);
  await vi.waitFor(async () => {
    const at = await runInDurableObject(env.DESKTOP_SESSION.getByName(id), (_o, state) => state.storage.getAlarm());
    expect(at).toBeGreaterThan(Date.now() + 1000);
  });
}

/** Moves every time the desktop recorded `ms` into the past: for its clocks, that much time has passed. */
async function timeTravel(id: string, ms: number): Promise<void> {
  // A write-through alarm firing meanwhile would run the clocks on the times before the change.
  await settled(id);
  await runInDurableObject(env.DESKTOP_SESSION.getByName(id), (obj, state) => {
    const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one();
    const s = JSON.parse(row.value) as {
      statusSince: number;
      runningSince: number | null;
      expiryTriedAt?: number | null;
      warned: Record<string, number>;
      desktop: Record<string, unknown>;
    };
    s.statusSince -= ms;
    if (s.runningSince !== null) s.runningSince -= ms;
    if (s.expiryTriedAt) s.expiryTriedAt -= ms;
    for (const k of Object.keys(s.warned)) s.warned[k] = (s.warned[k] ?? 0) - ms;
    for (const k of ['lastActivityAt', 'expiresAt', 'lastAccessedAt']) {
      const v = s.desktop[k];
      if (typeof v === 'string') s.desktop[k] = new Date(Date.parse(v) - ms).toISOString();
    }
    state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'state'`, JSON.stringify(s));
    state.storage.sql.exec('UPDATE usage SET started_at = started_at - ?, stopped_at = stopped_at - ?, rev = rev + 1', ms, ms);
    (obj as unknown as { cachedState: unknown }).cachedState = undefined;
  });
}

async function alarmAt(id: string): Promise<number | null> {
  await settled(id);
  return runInDurableObject(env.DESKTOP_SESSION.getByName(id), (_o, state) => state.storage.getAlarm());
}

async function live(id: string, user: string): Promise<LiveMessage[]> {
  const res = await exports.default.fetch(
    new Request(`http://edge.test/api/v1/desktops/${id}/live`, {
      headers: { upgrade: 'websocket', authorization: `Bearer ${await token(user)}` },
    }),
  );
  if (!res.webSocket) throw new Error(`no live WebSocket: ${res.status}`);
  const messages: LiveMessage[] = [];
  res.webSocket.accept();
  res.webSocket.addEventListener('message', (ev) => {
    messages.push(JSON.parse(String(ev.data)) as LiveMessage);
  });
  await vi.waitFor(() => expect(messages.length).toBeGreaterThan(0));
  return messages;
}

const get = async (id: string) => (await env.DESKTOP_SESSION.getByName(id).get()) as Desktop;

describe('idle stop', () => {
  it('warns the lead time before the stop, then stops and says why', async () => {
    const d = await runningDesktop('idle-1', { idleTimeoutMinutes: 30 });
    const messages = await live(d.id, 'idle-1');
    const started = Date.parse(d.lastActivityAt ?? '');
    expect(d).toMatchObject({ lastActivitySource: 'started', idleStopAt: new Date(started + 30 * MIN).toISOString() });
    // The alarm is set for the warning: 5 minutes (WARNING_LEAD_MINUTES) before the stop.
    expect(await alarmAt(d.id)).toBe(started + 25 * MIN);

    await timeTravel(d.id, 25 * MIN);
    expect(await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id))).toBe(true);
    const warning = messages.find((m) => m.type === 'warning');
    expect(warning).toMatchObject({ type: 'warning', warning: 'idle' });
    expect(Date.parse((warning as { at: string }).at)).toBe(Date.parse((await get(d.id)).idleStopAt ?? ''));
    expect((await get(d.id)).status).toBe('RUNNING');
    await quiet(d.id);

    await timeTravel(d.id, 5 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    const stopped = await get(d.id);
    expect(stopped.status).toBe('STOPPING');
    expect(stopped.stopReason).toMatch(/^No activity for 30 minutes \(last activity: started at .+\): stopping the desktop$/);
    await bridge.command(d.id, 'stop');
    const events = await env.DESKTOP_SESSION.getByName(d.id).history();
    expect(events.at(-1)).toMatchObject({ from: 'RUNNING', to: 'STOPPING', event: 'idle_timeout', actor: 'system:idle' });
  });

  it('repeats a warning in force to a viewer who arrives after it went out, and not once activity moved the deadline', async () => {
    const d = await runningDesktop('idle-late', { idleTimeoutMinutes: 30 });
    await timeTravel(d.id, 25 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    const late = await live(d.id, 'idle-late');
    await vi.waitFor(() => expect(late).toHaveLength(2));
    expect(late[0]).toMatchObject({ type: 'snapshot' });
    expect(late[1]).toMatchObject({ type: 'warning', warning: 'idle', at: (await get(d.id)).idleStopAt });

    await api('POST', `/api/v1/desktops/${d.id}/keepalive`, { token: await token('idle-late') });
    const after = await live(d.id, 'idle-late');
    // Another activity is broadcast after anything the stream sent on opening: once it is here, so is all of that.
    await api('POST', `/api/v1/desktops/${d.id}/keepalive`, { token: await token('idle-late') });
    await vi.waitFor(() => expect(after.at(-1)?.type).toBe('activity'));
    expect(after.map((m) => m.type)).toEqual(['snapshot', 'activity']);
  });

  it('cancels the stop on activity, and records the keepalive reason', async () => {
    const d = await runningDesktop('idle-2', { idleTimeoutMinutes: 30 });
    await timeTravel(d.id, 25 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    const res = await api<Desktop>('POST', `/api/v1/desktops/${d.id}/keepalive`, {
      token: await token('idle-2'),
      body: { reason: 'rendering a video' },
    });
    expect(res.status).toBe(200);
    const after = res.body!.data;
    expect(after).toMatchObject({ lastActivitySource: 'keepalive', lastActivityReason: 'rendering a video' });
    expect(Date.parse(after.idleStopAt ?? '') - Date.parse(after.lastActivityAt ?? '')).toBe(30 * MIN);

    // Past the old deadline: nothing happens, the desktop keeps running.
    await timeTravel(d.id, 6 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    expect((await get(d.id)).status).toBe('RUNNING');
  });

  it('counts /connect as activity', async () => {
    const d = await runningDesktop('idle-3', { idleTimeoutMinutes: 30 });
    await timeTravel(d.id, 20 * MIN);
    const res = await api('GET', `/api/v1/desktops/${d.id}/connect`, { token: await token('idle-3') });
    expect(res.status).toBe(200);
    const after = await get(d.id);
    expect(after.lastActivitySource).toBe('connect');
    expect(Date.parse(after.idleStopAt ?? '')).toBeGreaterThan(Date.now() + 29 * MIN);
  });

  it('counts viewers the bridge reports as activity, for its own desktops only', async () => {
    const d = await runningDesktop('idle-5', { idleTimeoutMinutes: 30 });
    const foreign = await seedDesktop('another-site', 'idle-5b');
    await timeTravel(d.id, 20 * MIN);
    bridge.send({
      type: 'activity',
      desktops: [
        { desktopId: d.id, viewers: 2 },
        { desktopId: foreign.id, viewers: 1 },
      ],
    });
    await vi.waitFor(async () => expect((await get(d.id)).lastActivitySource).toBe('viewer'));
    const after = await get(d.id);
    expect(after.lastActivityReason).toBe('2 viewers connected');
    expect(Date.parse(after.idleStopAt ?? '')).toBeGreaterThan(Date.now() + 29 * MIN);
    expect((await get(foreign.id)).lastActivitySource).toBeNull();
  });

  it('refuses a keepalive for a desktop that is not RUNNING', async () => {
    const d = await seedDesktop(SITE, 'idle-4');
    const res = await api('POST', `/api/v1/desktops/${d.id}/keepalive`, { token: await token('idle-4') });
    expect(res.status).toBe(409);
    expect(res.body?.message).toMatch(/PENDING/);
  });
});

describe('session limit and expiry', () => {
  it('stops a session at maxSessionMinutes, warning first', async () => {
    const d = await runningDesktop('limit-1', { idleTimeoutMinutes: 600, maxSessionMinutes: 60 });
    const messages = await live(d.id, 'limit-1');
    expect(d.sessionEndsAt).not.toBeNull();
    await timeTravel(d.id, 55 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    expect(messages.some((m) => m.type === 'warning' && m.warning === 'session_limit')).toBe(true);
    await quiet(d.id);
    await timeTravel(d.id, 5 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    const stopped = await get(d.id);
    expect(stopped.status).toBe('STOPPING');
    expect(stopped.stopReason).toBe('Session limit of 60 minutes reached: stopping the desktop');
  });

  it('deletes the desktop at expiresAt, warning first', async () => {
    const expiresAt = new Date(Date.now() + 120 * MIN).toISOString();
    const d = await runningDesktop('expiry-1', { idleTimeoutMinutes: 600, expiresAt });
    const messages = await live(d.id, 'expiry-1');
    await timeTravel(d.id, 115 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    expect(messages.some((m) => m.type === 'warning' && m.warning === 'expiry')).toBe(true);
    await quiet(d.id);
    await timeTravel(d.id, 5 * MIN);
    await runDurableObjectAlarm(env.DESKTOP_SESSION.getByName(d.id));
    expect((await get(d.id)).status).toBe('STOPPING');
    await bridge.command(d.id, 'delete');
    const events = await env.DESKTOP_SESSION.getByName(d.id).history();
    expect(events.at(-1)).toMatchObject({ event: 'expired', actor: 'system:expiry' });
  });

  it('waits an hour before trying again to delete an expired desktop whose bridge was offline, instead of looping FAILED → STOPPING', async () => {
    // A site without a bridge: the deletion cannot be delivered.
    const d = await seedDesktop('expiry-offline-site', 'expiry-2', { expiresAt: new Date(Date.now() + 10 * MIN).toISOString() });
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    await timeTravel(d.id, 11 * MIN);
    await runDurableObjectAlarm(stub);
    expect((await get(d.id)).status).toBe('STOPPING');
    // The jobs queue gives up on the delete command (its dead-letter consumer says so).
    const deleteCommand = await runInDurableObject(stub, (_o, state) => {
      const s = JSON.parse(state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one().value);
      return (s as { activeCommand: { id: string } }).activeCommand.id;
    });
    await stub.commandUndeliverable(deleteCommand, 9);
    expect((await get(d.id)).status).toBe('FAILED');
    const transitions = (await stub.history()).length;

    // The alarm runs again (and again): the desktop stays FAILED.
    await timeTravel(d.id, 5 * MIN);
    await runDurableObjectAlarm(stub);
    await timeTravel(d.id, 30 * MIN);
    await runDurableObjectAlarm(stub);
    expect((await get(d.id)).status).toBe('FAILED');
    expect(await stub.history()).toHaveLength(transitions);

    // An hour after the first try, it tries once more.
    await timeTravel(d.id, 30 * MIN);
    await runDurableObjectAlarm(stub);
    expect((await get(d.id)).status).toBe('STOPPING');
    expect((await stub.history()).at(-1)).toMatchObject({ from: 'FAILED', to: 'STOPPING', event: 'expired' });
  });
});

describe('live status', () => {
  it('streams the state at once and then every transition of a create, in order', async () => {
    const d = await seedDesktop(SITE, 'live-1');
    const messages = await live(d.id, 'live-1');
    expect(messages[0]).toMatchObject({ type: 'snapshot', desktop: { id: d.id, status: 'PENDING' } });
    await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId: 31001, ipAddress: '10.30.0.2', connectionId: '32' });
    await vi.waitFor(() => expect(messages.some((m) => m.type === 'transition' && m.transition.to === 'RUNNING')).toBe(true));
    const path = messages.flatMap((m) => (m.type === 'transition' ? [m.transition.to] : []));
    expect(path).toEqual(['PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);
    expect(messages.some((m) => m.type === 'progress')).toBe(true);
  });

  it('serves the same stream as Server-Sent Events', async () => {
    const d = await runningDesktop('live-2');
    const res = await exports.default.fetch(
      new Request(`http://edge.test/api/v1/desktops/${d.id}/live`, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${await token('live-2')}` },
      }),
    );
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += decoder.decode(value);
      }
    };
    await readUntil(/event: snapshot\ndata: .*"status":"RUNNING"/);
    await api('POST', `/api/v1/desktops/${d.id}/stop`, { token: await token('live-2') });
    await readUntil(/event: transition\ndata: .*"to":"STOPPING"/);
    await reader.cancel();
  });

  it('is authorised like GET /{id}', async () => {
    const d = await seedDesktop(SITE, 'live-3');
    const res = await api('GET', `/api/v1/desktops/${d.id}/live`, {
      token: await token('someone-else'),
      headers: { accept: 'text/event-stream' },
    });
    expect(res.status).toBe(404);
    expect((await api('GET', `/api/v1/desktops/${d.id}/live`)).status).toBe(401);
  });
});

describe('usage', () => {
  it('records running time as intervals with the stop reason, and sums hours per plan', async () => {
    const d = await runningDesktop('usage-1', { plan: 'STANDARD' });
    await timeTravel(d.id, 90 * MIN);
    await api('POST', `/api/v1/desktops/${d.id}/stop`, { token: await token('usage-1') });
    const intervals = await env.DESKTOP_SESSION.getByName(d.id).usage();
    expect(intervals).toHaveLength(1);
    expect(intervals[0]).toMatchObject({ plan: 'STANDARD', stopReason: 'stop requested' });
    await vi.waitFor(
      async () => {
        const res = await api<{ totalHours: number; byPlan: { plan: string; hours: number }[] }>('GET', '/api/v1/usage', {
          token: await token('usage-1'),
        });
        expect(res.body?.data.byPlan).toEqual([{ plan: 'STANDARD', hours: expect.closeTo(1.5, 2), intervals: 1 }]);
      },
      { timeout: 4000, interval: 100 },
    );
    const other = await api('GET', '/api/v1/usage?userId=usage-1', { token: await token('not-usage-1') });
    expect(other.status).toBe(403);
  });
});
