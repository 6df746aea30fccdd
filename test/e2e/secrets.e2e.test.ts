/**
 * No secret in a log line or an API answer. A whole stack (edge under wrangler dev,
 * bridge at LOG_LEVEL=debug, simulators, database) runs a desktop's life, opens it
 * through /connect, and meets failed logins of every kind; then every process's output
 * and every response body is searched for each secret the run involved.
 *
 * The site key and BRIDGE_SECRET are the bridge's own: they are read from its process
 * environment (/proc/<pid>/environ), exactly what the stack handed it.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { desktopPassword, guacamoleUserPassword, guacamoleUsername } from '../../on-prem-bridge/src/desktop-identity';
import { type Stack, startStack } from '../../scripts/lib/stack';
import { signToken } from '../../scripts/lib/tokens';
import type { Desktop } from '../../src/schemas/desktop';
import { setTimeout as sleep } from 'node:timers/promises';

let stack: Stack;
let bridgeEnv: Record<string, string>;

/** Every response body of the run, with what was asked. */
const answers: { what: string; status: number; body: string }[] = [];

beforeAll(async () => {
  stack = await startStack({ bridgeEnv: { LOG_LEVEL: 'debug' } });
  const pid = stack.bridge.child.pid;
  if (!pid) throw new Error('the bridge has no pid');
  bridgeEnv = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

async function http(what: string, url: string, init: RequestInit = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const body = await res.text();
  answers.push({ what, status: res.status, body });
  return { status: res.status, body, headers: res.headers };
}

async function api<T>(method: string, path: string, tok: string | undefined, body?: unknown) {
  const headers: Record<string, string> = tok ? { authorization: `Bearer ${tok}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await http(`${method} ${path}`, `${stack.edgeUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { ...res, json: JSON.parse(res.body) as { data: T } };
}

async function waitFor(tok: string, id: string, status: Desktop['status']): Promise<Desktop> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const d = (await api<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).json.data;
    if (d.status === status) return d;
    if (d.status === 'FAILED' || Date.now() > deadline)
      throw new Error(`desktop ${id} is ${d.status} (${d.errorMessage}), wanted ${status}`);
    await sleep(150);
  }
}

describe('secrets', () => {
  it('appear in no log line and no API answer across a lifecycle with /connect and failed logins', async () => {
    const user = 'secrets-alice';
    const tok = await stack.token(user);
    const admin = await stack.token('secrets-admin', ['admin']);
    const siteKey = bridgeEnv.SITE_KEY ?? '';
    const bridgeSecret = bridgeEnv.BRIDGE_SECRET ?? '';
    expect(siteKey).toMatch(/^sk_/);
    expect(bridgeSecret.length).toBeGreaterThanOrEqual(32);

    // --- a desktop's life, through the real bridge ---
    const created = await api<Desktop>('POST', '/api/v1/desktops', tok, { name: 'Secret keeper', plan: 'BASIC' });
    expect(created.status).toBe(202);
    const id = created.json.data.id;
    const running = await waitFor(tok, id, 'RUNNING');

    const connect = await api<{ connectionUrl: string }>('GET', `/api/v1/desktops/${id}/connect`, tok);
    expect(connect.status).toBe(200);
    const ticketUrl = new URL(connect.json.data.connectionUrl);
    // The ticket rides in the fragment, which a browser never sends (so no access log has it).
    const ticket = decodeURIComponent(ticketUrl.hash.slice(1));
    const ticketSecret = ticket.split('.')[1] ?? '';
    expect(ticketSecret.length).toBeGreaterThanOrEqual(20);
    // What a browser (or a link preview) fetches: the page, which holds no secret and spends nothing.
    const page = await http('GET connect page', `${stack.edgeUrl}${ticketUrl.pathname}`);
    expect(page.status).toBe(200);
    const hop = await api<{ url: string }>('POST', ticketUrl.pathname, undefined, { ticket });
    expect(hop.status).toBe(200);
    // The answer carries a Guacamole token: it must not leak through a Referer, nor be cached.
    expect(hop.headers.get('referrer-policy')).toBe('no-referrer');
    expect(hop.headers.get('cache-control')).toBe('no-store');
    expect(hop.headers.get('content-security-policy')).toBeTruthy();
    const location = hop.json.data.url;
    const guacToken = /[?&]token=([^&#]+)/.exec(location)?.[1] ?? '';
    expect(guacToken).toMatch(/^[0-9A-F]{64}$/);

    // The per-desktop passwords the bridge derived are the real ones (so searching for them means something).
    const guacUser = guacamoleUsername(id);
    const guacUserPassword = guacamoleUserPassword(bridgeSecret, id);
    const login = await http('Guacamole login as the desktop user', `${stack.guacamoleUrl}/api/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: guacUser, password: guacUserPassword }).toString(),
    });
    expect(login.status).toBe(200);
    const desktopLoginPassword = desktopPassword(bridgeSecret, id);

    // --- failed logins of every kind ---
    const forged = await signToken('not-the-secret-not-the-secret-not-the-secret', 'mallory', { roles: ['admin'] });
    expect((await api('GET', '/api/v1/admin/sites', forged)).status).toBe(401);
    // Someone pastes a secret where a token goes: it must not be echoed or logged.
    expect((await api('GET', '/api/v1/desktops', stack.jwtSecret)).status).toBe(401);
    expect((await api('GET', '/api/v1/desktops', siteKey)).status).toBe(401);
    const bridgePath = `/api/v1/sites/${stack.siteId}/bridge`;
    for (const key of ['sk_wrong-key', `${siteKey}x`]) {
      const r = await http('bridge with a bad key', `${stack.edgeUrl}${bridgePath}`, { headers: { authorization: `Bearer ${key}` } });
      expect(r.status).toBe(401);
    }
    expect(
      (
        await http('bridge of another site with this key', `${stack.edgeUrl}/api/v1/sites/elsewhere/bridge`, {
          headers: { authorization: `Bearer ${siteKey}` },
        })
      ).status,
    ).toBe(401);
    expect((await api('POST', ticketUrl.pathname, undefined, { ticket })).status).toBe(404);
    const badGuac = await http('Guacamole login with a wrong password', `${stack.guacamoleUrl}/api/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'guacadmin', password: 'wrong-password' }).toString(),
    });
    expect(badGuac.status).toBe(403);

    // --- and the rest of its life ---
    expect((await api('POST', `/api/v1/desktops/${id}/stop`, tok)).status).toBe(202);
    await waitFor(tok, id, 'STOPPED');
    expect((await api('POST', `/api/v1/desktops/${id}/start`, tok)).status).toBe(202);
    await waitFor(tok, id, 'RUNNING');
    expect((await api('DELETE', `/api/v1/desktops/${id}`, tok)).status).toBe(202);
    await waitFor(tok, id, 'DELETED');
    await api('GET', '/api/v1/admin/sites', admin);
    await api('GET', `/api/v1/desktops/${id}/events`, tok);
    await http('healthz', `${stack.edgeUrl}/healthz`);
    // Let the last log lines arrive.
    await sleep(1000);

    const logs = stack.logs();
    // The search is not vacuous: every process spoke, and the bridge logged the desktop's work.
    for (const name of ['edge', 'bridge', 'proxmox', 'guacamole']) expect(logs).toContain(`--- ${name}`);
    expect(logs).toContain(id);
    expect(running.vmId).toBeTruthy();

    const secrets: Record<string, string> = {
      JWT_SECRET: stack.jwtSecret,
      'site key': siteKey,
      BRIDGE_SECRET: bridgeSecret,
      'Proxmox token secret': '11111111-2222-3333-4444-555555555555',
      'Guacamole password of the desktop user': guacUserPassword,
      'desktop login password (VNC/RDP, cloud-init)': desktopLoginPassword,
      'Guacamole auth token of the connect redirect': guacToken,
      'connect ticket': ticketSecret,
      'a user’s bearer JWT': tok,
      'an admin’s bearer JWT': admin,
      'a forged JWT': forged,
    };
    // Any other secret-looking value the bridge was started with (the stack may add some).
    for (const [k, v] of Object.entries(bridgeEnv)) {
      if (/SECRET|KEY|PASSWORD/.test(k) && v.length >= 12 && !Object.values(secrets).includes(v)) secrets[`bridge env ${k}`] = v;
    }
    // A connect link's ticket is in its fragment and in a POST body: no access log line (wrangler
    // dev's, like Workers Logs in production) records it.
    const leaks: string[] = [];
    for (const [name, value] of Object.entries(secrets)) {
      expect(value.length, name).toBeGreaterThanOrEqual(12);
      for (const line of logs.split('\n')) {
        if (line.includes(value)) leaks.push(`log: ${name}: ${line.slice(0, 300)}`);
      }
      // The /connect answer hands out its ticket, and the ticket's POST the Guacamole URL with its token: by design.
      for (const a of answers) {
        if (name === 'connect ticket' && a.what === `GET /api/v1/desktops/${id}/connect`) continue;
        if (name === 'Guacamole auth token of the connect redirect' && a.what === `POST ${ticketUrl.pathname}` && a.status === 200)
          continue;
        if (a.body.includes(value)) leaks.push(`answer to ${a.what} (${a.status}): ${name}`);
      }
    }
    // The Guacamole admin password is also its user name ("guacadmin"), which logs may name: search for it as a password only.
    const asPassword = [
      /password["'\s]*[:=]\s*["']?guacadmin/i,
      /guacadmin:guacadmin/,
      /Z3VhY2FkbWluOmd1YWNhZG1pbg/, // base64 of guacadmin:guacadmin (HTTP Basic)
      /GUACAMOLE_PASSWORD/,
    ];
    for (const re of asPassword) {
      for (const line of logs.split('\n')) if (re.test(line)) leaks.push(`log: Guacamole admin password (${re}): ${line.slice(0, 300)}`);
      for (const a of answers) if (re.test(a.body)) leaks.push(`answer to ${a.what}: Guacamole admin password (${re})`);
    }
    expect(leaks).toEqual([]);
    console.log(
      `secrets: ${Object.keys(secrets).length + 1} secrets searched for in ${logs.split('\n').length} log lines and ${answers.length} answers`,
    );
  }, 240_000);
});
