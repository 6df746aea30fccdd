/**
 * The bridge and TLS as a person setting up a site meets them: plain http/ws is refused outside loopback at
 * configuration time, and a backend whose certificate does not verify stops the bridge at start with a sentence
 * naming the backend and the fix.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../on-prem-bridge/src/config';
import { type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { throwawayCa } from '../simulators/support/dev-ca';

const REQUIRED = {
  SITE_KEY: 'sk_live_abcdefghijklmnop',
  PROXMOX_TOKEN_SECRET: '11111111-2222-3333-4444-555555555555',
  GUACAMOLE_USERNAME: 'guacadmin',
  GUACAMOLE_PASSWORD: 'guacadmin-password',
  BRIDGE_SECRET: 'a-very-long-bridge-secret-of-40-chars!!',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...REQUIRED, ...env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('bridge configuration: cleartext', () => {
  it('refuses http:// and ws:// outside loopback, naming the variable and the fix', () => {
    expect(problemsOf({ PROXMOX_URL: 'http://pve1.lan:8006/api2/json', EDGE_URL: 'ws://edge.example.com' })).toEqual([
      'EDGE_URL: plain ws is only allowed to a loopback address; use wss://',
      'PROXMOX_URL: plain http is only allowed to a loopback address; use https://',
    ]);
    expect(problemsOf({ PROXMOX_URL: 'http://127.0.0.1:8006/api2/json', EDGE_URL: 'wss://edge.example.com' })).toEqual([]);
  });

  it('takes a CA file or a fingerprint, and says what is wrong with either', () => {
    expect(problemsOf({ PROXMOX_CA_FILE: '/nonexistent/ca.pem', GUACAMOLE_FINGERPRINT: 'not-a-fingerprint' })).toEqual([
      expect.stringMatching(/^PROXMOX_CA_FILE: cannot read \/nonexistent\/ca.pem/),
      'GUACAMOLE_FINGERPRINT: must be a SHA-256 fingerprint (32 hex bytes)',
    ]);
  });
});

describe('bridge start against a certificate it does not trust', () => {
  let ca: Awaited<ReturnType<typeof throwawayCa>>;
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    ca = await throwawayCa();
    sim = await startProxmoxSimulator({ tls: { cert: ca.server.cert, key: ca.server.key } });
  });
  afterAll(async () => {
    await sim.stop();
    ca.remove();
  });

  it('exits before connecting, with a sentence that names Proxmox and the fix', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'on-prem-bridge/src/main.ts'], {
      env: { ...process.env, ...REQUIRED, PROXMOX_URL: sim.url, LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(78);
    expect(stderr).toContain(`Proxmox at ${sim.url} presented a certificate the bridge does not trust`);
    expect(stderr).toContain('set PROXMOX_CA_FILE to the cluster CA (/etc/pve/pve-root-ca.pem on any node), or PROXMOX_FINGERPRINT');
  }, 30_000);
});
