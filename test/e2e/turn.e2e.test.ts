/**
 * A real coturn (Debian's `coturn` package) accepts the TURN credentials the edge mints
 * and refuses expired and forged ones (issue 4, item 3).
 *
 * coturn runs on loopback on free ports with the shared-secret scheme, as an unprivileged
 * process would: no config file (-n), pid file and SQLite user db in a temp dir, log to
 * stdout. Each credential is probed with coturn's own client, turnutils_uclient, which
 * asks for an allocation. The signal, checked on both sides:
 *  - accepted: the client prints "Received relay addr" (a successful ALLOCATE response
 *    carries the relayed address) and coturn logs "user <name>: incoming packet ALLOCATE
 *    processed, success". The client is stopped there: it would otherwise spend seconds
 *    relaying test packets, which proves nothing more about the credentials.
 *  - refused: the client gives up ("Cannot complete Allocation", exit code 255) without a
 *    relay address, and coturn logs "user <name>: ... error 401: Unauthorized" for it.
 *    uclient itself never prints the 401: it treats it as a challenge and retries until it
 *    gives up, so the server's log is what names the reason.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Managed, startProcess } from '../../scripts/lib/processes';
import { freePort } from '../../scripts/lib/stack';
import { mintTurnCredentials } from '../../src/lib/turn';
import { setTimeout as sleep } from 'node:timers/promises';

const REALM = 'cdaas.test';
const secret = randomBytes(32).toString('hex');

/** A port free for both TCP and UDP: coturn listens on both. */
async function freeTcpUdpPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => {
      try {
        udp.close(() => resolve());
      } catch {
        resolve();
      }
    });
    if (free) return port;
  }
}

const { turnserver, turnutilsUclient } = inject('systemPrograms');

describe.skipIf(!turnserver)('coturn with --use-auth-secret', () => {
  let coturn: Managed;
  let port: number;
  let workDir: string;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'coturn-'));
    port = await freeTcpUdpPort();
    coturn = startProcess({
      name: 'coturn',
      command: turnserver,
      args: [
        '-n', // no /etc/turnserver.conf: only these flags count
        '-v', // logs each request's outcome with its username, which the assertions read
        '--log-file=stdout',
        '--simple-log',
        `--pidfile=${join(workDir, 'turnserver.pid')}`,
        `--userdb=${join(workDir, 'turndb')}`,
        '--use-auth-secret',
        `--static-auth-secret=${secret}`,
        `--realm=${REALM}`,
        '--listening-ip=127.0.0.1',
        `--listening-port=${port}`,
        '--relay-ip=127.0.0.1',
        '--allow-loopback-peers',
        '--no-cli',
        '--no-tls',
        '--no-dtls',
      ],
      readyWhen: new RegExp(`UDP listener opened on: 127\\.0\\.0\\.1:${port}\\b`),
      readyTimeoutMs: 10_000,
    });
    await coturn.ready;
  }, 15_000);

  afterAll(async () => {
    await coturn?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  interface Probe {
    code: number | null;
    relayed: boolean;
    output: string;
  }

  /** One allocation attempt with turnutils_uclient; stops it once an allocation has succeeded. */
  function probe(username: string, credential: string): Promise<Probe> {
    return new Promise((resolve) => {
      const child = spawn(
        turnutilsUclient,
        ['-v', '-y', '-c', '-n', '0', '-m', '1', '-p', String(port), '-u', username, '-w', credential, '127.0.0.1'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      let relayed = false;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const onData = (buf: Buffer) => {
        output += buf.toString();
        if (!relayed && /Received relay addr/.test(output)) {
          relayed = true;
          child.kill('SIGTERM');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, relayed, output });
      });
    });
  }

  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

  const verdicts = {
    allocated: (username: string) => new RegExp(`user <${escapeRegExp(username)}>: incoming packet ALLOCATE processed, success`),
    unauthorized: (username: string) =>
      new RegExp(`user <${escapeRegExp(username)}>: incoming packet \\w+ processed, error 401: Unauthorized`),
  };

  /** coturn's verdict on a username, from its log (the line can trail the client's exit a little). */
  async function serverSaid(verdict: keyof typeof verdicts, username: string): Promise<boolean> {
    const line = verdicts[verdict](username);
    const deadline = Date.now() + 3_000;
    while (!line.test(coturn.output()) && Date.now() < deadline) await sleep(50);
    return line.test(coturn.output());
  }

  async function expectAccepted(username: string, credential: string) {
    const r = await probe(username, credential);
    expect(r.relayed, `uclient output:\n${r.output}`).toBe(true);
    expect(await serverSaid('allocated', username), `coturn log:\n${coturn.output().slice(-3000)}`).toBe(true);
    expect(coturn.output()).not.toMatch(verdicts.unauthorized(username));
  }

  async function expectRefused(username: string, credential: string) {
    const r = await probe(username, credential);
    expect(r.relayed, `uclient output:\n${r.output}`).toBe(false);
    expect(r.code).toBe(255);
    expect(r.output).toContain('Cannot complete Allocation');
    expect(await serverSaid('unauthorized', username), `coturn log:\n${coturn.output().slice(-3000)}`).toBe(true);
    expect(coturn.output()).not.toMatch(verdicts.allocated(username));
  }

  it('accepts credentials minted by mintTurnCredentials (user with ":" as Selkies writes it)', async () => {
    const c = await mintTurnCredentials({ secret, user: 'site-a:desk-valid', ttlSeconds: 600 });
    expect(c.username).toMatch(/^\d+:site-a-desk-valid$/);
    await expectAccepted(c.username, c.credential);
  });

  it('refuses credentials whose expiry has passed', async () => {
    const c = await mintTurnCredentials({ secret, user: 'desk-expired', ttlSeconds: 60, now: Date.now() - 3_600_000 });
    expect(Date.parse(c.expiresAt)).toBeLessThan(Date.now());
    await expectRefused(c.username, c.credential);
  });

  it('refuses credentials signed with another secret', async () => {
    const c = await mintTurnCredentials({ secret: `${secret}-not`, user: 'desk-forged', ttlSeconds: 600 });
    await expectRefused(c.username, c.credential);
  });

  it('refuses a valid credential presented with a later expiry', async () => {
    const c = await mintTurnCredentials({ secret, user: 'desk-extended', ttlSeconds: 600 });
    const [expiry, user] = c.username.split(':') as [string, string];
    await expectRefused(`${Number(expiry) + 86_400}:${user}`, c.credential);
  });

  it("refuses a valid credential presented under another user's name", async () => {
    const c = await mintTurnCredentials({ secret, user: 'desk-owner', ttlSeconds: 600 });
    await expectRefused(c.username.replace('desk-owner', 'desk-thief'), c.credential);
  });
});
