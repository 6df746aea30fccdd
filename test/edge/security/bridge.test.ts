/**
 * The bridge endpoint (GET /api/v1/sites/{siteId}/bridge) opens a WebSocket only for the
 * site's own key, and a site that holds a socket still cannot move another site's desktop.
 */
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Desktop } from '../../../src/schemas/desktop';
import { FakeBridge, registerSite } from '../fake-bridge';
import { api, token, uniqueUser } from '../helpers';
import { call, expectErrorEnvelope, expectSecurityHeaders } from './support';

const bridgePath = (site: string) => `/api/v1/sites/${site}/bridge`;
const UPGRADE = {
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
};

let siteA: string;
let keyA: string;
let siteB: string;
let keyB: string;

beforeAll(async () => {
  siteA = `sec-a-${crypto.randomUUID().slice(0, 8)}`;
  siteB = `sec-b-${crypto.randomUUID().slice(0, 8)}`;
  [keyA, keyB] = await Promise.all([registerSite(siteA), registerSite(siteB)]);
});

describe('bridge endpoint credentials', () => {
  const refusals: [string, () => Promise<{ site: string; authorization?: string }>][] = [
    ['no Authorization header', async () => ({ site: siteA })],
    ['an empty bearer', async () => ({ site: siteA, authorization: 'Bearer ' })],
    ['Basic credentials instead of a bearer key', async () => ({ site: siteA, authorization: `Basic ${btoa(`${siteA}:${keyA}`)}` })],
    ['a wrong key', async () => ({ site: siteA, authorization: 'Bearer sk_wrong-key-wrong-key-wrong-key-wrong-key' })],
    [
      'the key with one character changed',
      async () => ({ site: siteA, authorization: `Bearer ${keyA.slice(0, -1)}${keyA.endsWith('A') ? 'B' : 'A'}` }),
    ],
    ['the key of another site', async () => ({ site: siteA, authorization: `Bearer ${keyB}` })],
    ['a valid key for an unregistered site', async () => ({ site: `${siteA}-x`, authorization: `Bearer ${keyA}` })],
    ['a site id in upper case', async () => ({ site: siteA.toUpperCase(), authorization: `Bearer ${keyA}` })],
    ['an encoded path in the site id', async () => ({ site: `..%2F${siteA}`, authorization: `Bearer ${keyA}` })],
    ['an overlong site id', async () => ({ site: 'a'.repeat(300), authorization: `Bearer ${keyA}` })],
    ['the site key’s SHA-256 (what the database holds)', async () => ({ site: siteA, authorization: `Bearer ${await sha256Hex(keyA)}` })],
    ['an admin JWT', async () => ({ site: siteA, authorization: `Bearer ${await token('root', { roles: ['admin'] })}` })],
  ];

  it.each(refusals)('refuses %s with 401 and no WebSocket', async (_name, make) => {
    const { site, authorization } = await make();
    const res = await call('GET', bridgePath(site), { headers: { ...UPGRADE, ...(authorization ? { authorization } : {}) } });
    expect(res.status, res.text).toBe(401);
    expect(res.webSocket).toBeNull();
    expect(res.body?.error?.code).toBe('UNAUTHORIZED');
    expectErrorEnvelope(res, 'bridge refusal');
    expectSecurityHeaders(res, 'bridge refusal');
  });

  it('opens the WebSocket for the site’s own key, and only as a WebSocket', async () => {
    const plain = await call('GET', bridgePath(siteA), { headers: { authorization: `Bearer ${keyA}` } });
    expect(plain.status).toBe(400);
    expect(plain.webSocket).toBeNull();
    const bridge = await FakeBridge.connect(siteA, keyA);
    await bridge.close();
  });
});

describe('a site reporting on another site’s desktop', () => {
  let intruder: FakeBridge;
  beforeAll(async () => {
    intruder = await FakeBridge.connect(siteB, keyB);
  });
  afterAll(() => intruder.close());

  it('is refused by the DesktopSession, over the second site’s own WebSocket', async () => {
    const user = uniqueUser();
    const made = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { name: 'Not yours', plan: 'BASIC' } });
    expect(made.status).toBe(202);
    const d = made.body!.data;
    expect(d.siteId).not.toBe(siteB);
    // The command the desktop's own site was sent, so that the only thing wrong with the reports is who sends them.
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    const commandId = await runInDurableObject(stub, (_obj, state) => {
      const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one();
      return (JSON.parse(row.value) as { activeCommand: { id: string } | null }).activeCommand?.id;
    });
    expect(commandId).toBeTruthy();

    const logs = vi.spyOn(console, 'log');
    try {
      intruder.send({ type: 'accepted', commandId: commandId!, desktopId: d.id });
      intruder.send({
        type: 'progress',
        commandId: commandId!,
        desktopId: d.id,
        step: 'clone',
        message: 'cloning',
        facts: { vmId: 666, node: 'evil' },
      });
      intruder.send({
        type: 'complete',
        commandId: commandId!,
        desktopId: d.id,
        facts: { vmId: 666, ipAddress: '10.6.6.6', connectionId: '666' },
      });
      intruder.send({ type: 'fail', commandId: commandId!, desktopId: d.id, message: 'owned' });
      // The hub logs each report the desktop refused, with the desktop's reason.
      await vi.waitFor(
        () => {
          const refused = logs.mock.calls
            .map((args) => String(args[0]))
            .filter((line) => line.includes('bridge report ignored') && line.includes(d.id));
          expect(refused.length).toBe(4);
          for (const line of refused) expect(line).toContain(`desktop belongs to site ${d.siteId}`);
        },
        { timeout: 5000, interval: 20 },
      );
    } finally {
      logs.mockRestore();
    }
    const after = (await api<Desktop>('GET', `/api/v1/desktops/${d.id}`, { token: await token(user) })).body!.data;
    expect(after).toMatchObject({ status: 'PENDING', vmId: null, node: null, ipAddress: null, connectionId: null, errorMessage: null });
    const events = await stub.history();
    expect(events.map((e) => e.to)).toEqual(['PENDING']);
  });
});

async function sha256Hex(s: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}
