/**
 * `cdaas login --issuer …`: the OAuth device flow against a real OpenID provider
 * (oidc-provider with its deviceFlow feature), whose JWT access tokens the edge accepts
 * through JWKS_URL. The person's part (open the link, confirm the code, sign in) is played
 * by submitting the provider's own pages.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/local-config';
import { type Stack, freePort, startStack } from '../../scripts/lib/stack';
import { API_RESOURCE, CLI_CLIENT_ID, approve, startDeviceFlowProvider } from './support/device-flow-provider';

const run = promisify(execFile);
let stack: Stack;
let idp: Awaited<ReturnType<typeof startDeviceFlowProvider>>;
let config: string;

beforeAll(async () => {
  config = mkdtempSync(join(tmpdir(), 'cdaas-device-'));
  idp = await startDeviceFlowProvider({ port: await freePort(), audience: 'cdaas-api' });
  const [started] = await Promise.all([
    startStack({ edgeVars: { JWKS_URL: idp.jwksUrl, JWT_ISSUER: idp.issuer } }),
    run('npm', ['run', '-s', 'build'], { cwd: ROOT }),
  ]);
  stack = started;
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  await idp?.close();
  rmSync(config, { recursive: true, force: true });
});

const env = () => ({ ...process.env, XDG_CONFIG_HOME: config, CDAAS_TOKEN: '', CDAAS_URL: '' });

/** Runs `npx cdaas login …`, or the program npx finds for other commands; `onStderr` sees its stderr as it comes. */
function cdaas(args: string[], onStderr: (text: string) => void = () => {}) {
  const [command, prefix] = args[0] === 'login' ? ['npx', ['cdaas']] : [join(ROOT, 'node_modules/.bin/cdaas'), []];
  const child: ChildProcess = spawn(command, [...prefix, ...args], { cwd: ROOT, env: env() });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
    onStderr(stderr);
  });
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}

describe('cdaas login with the device flow', { timeout: 180_000 }, () => {
  it('shows a link and a code, and once they are confirmed saves a token the API accepts', async () => {
    let approving: Promise<void> | undefined;
    const login = await cdaas(
      ['login', '--url', stack.edgeUrl, '--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--resource', API_RESOURCE, '--json'],
      (stderr) => {
        const link = /open (http\S+)/.exec(stderr)?.[1];
        if (link && !approving) approving = approve(link, 'dana');
      },
    );
    await approving;
    expect(login.stderr).toMatch(/confirm the code [A-Z]{4}-[A-Z]{4}/);
    expect(login.code).toBe(0);

    const file = join(config, 'cdaas', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { token: string; refresh?: { refreshToken: string } };
    expect(saved.refresh?.refreshToken).toBeTruthy();

    // The saved token is dana's: the desktop she creates is hers.
    const created = await cdaas(['desktops', 'create', '--name', 'From the device flow', '--json']);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ userId: 'dana', status: 'PENDING' });
  });

  it('says so when the provider does not offer the device flow', async () => {
    const plain: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: 'x', token_endpoint: 'http://127.0.0.1/token' }));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const login = await cdaas(['login', '--url', stack.edgeUrl, '--issuer', issuer]);
    plain.close();
    expect(login.code).toBe(2);
    expect(login.stderr).toMatch(/does not offer the device flow.*cdaas login --token/);
  });
});
