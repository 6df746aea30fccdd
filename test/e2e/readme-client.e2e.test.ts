/**
 * A client written from the README alone (sections "SDK", "CLI", "Idempotent creates"),
 * against a whole local stack: the SDK walks a desktop from create to DELETED, the CLI
 * does the same with --json, and a create retried with the same Idempotency-Key makes one
 * desktop, whether the SDK retries it, the CLI repeats it, or a plain HTTP client does.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, type Desktop, type DesktopPage, NotFoundError, QuotaExceededError } from '@cdaas/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/local-config';
import { type Stack, startStack } from '../../scripts/lib/stack';

const run = promisify(execFile);
let stack: Stack;
let config: string;

beforeAll(async () => {
  config = mkdtempSync(join(tmpdir(), 'cdaas-cli-'));
  // `npx cdaas` runs the built CLI and SDK: build them from the sources under test.
  const [started] = await Promise.all([startStack(), run('npm', ['run', '-s', 'build'], { cwd: ROOT })]);
  stack = started;
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(config, { recursive: true, force: true });
});

/**
 * The CLI in the repository, with its own config directory and `stdin`; answers the exit code
 * and output. Logins go through `npx cdaas` as the README says; the other calls run the
 * program npx finds (node_modules/.bin/cdaas) directly, without npm's few seconds of start-up.
 */
function cdaas(args: string[], env: Record<string, string> = {}, stdin = '') {
  const [command, prefix] = args[0] === 'login' ? ['npx', ['cdaas']] : [join(ROOT, 'node_modules/.bin/cdaas'), []];
  const child = spawn(command, [...prefix, ...args], {
    cwd: ROOT,
    env: { ...process.env, XDG_CONFIG_HOME: config, CDAAS_TOKEN: '', CDAAS_URL: '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdin.end(stdin);
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}
const json = <T>(r: { stdout: string }) => JSON.parse(r.stdout) as T;

describe('the SDK, as the README shows it', () => {
  it('creates a desktop, waits until it is RUNNING, connects, stops and deletes it', async () => {
    const cdaas = createClient({ baseUrl: stack.edgeUrl, token: await stack.token('readme-alice') });

    const desktop = await cdaas.desktops.create({ name: 'Studio', plan: 'STANDARD' });
    expect(desktop.status).toBe('PENDING');
    const seen: string[] = [];
    const running = await cdaas.desktops.waitUntil(desktop.id, 'RUNNING', {
      onProgress: ({ status, via }) => seen.push(`${status}/${via}`),
    });
    expect(running.status).toBe('RUNNING');
    // It followed the live stream (no polling) to RUNNING.
    expect(seen.at(-1)).toBe('RUNNING/live');
    expect(seen.every((s) => s.endsWith('/live'))).toBe(true);
    expect((await cdaas.desktops.list({ status: 'RUNNING' })).items.map((d) => d.id)).toEqual([desktop.id]);

    // Refusals are typed errors: alice may have one active desktop.
    await expect(cdaas.desktops.create({ plan: 'PREMIUM' })).rejects.toBeInstanceOf(QuotaExceededError);

    const { connectionUrl } = await cdaas.desktops.connect(desktop.id);
    // What the link's page does in a browser: POST the ticket from the fragment, open the answer.
    const link = new URL(connectionUrl);
    const opened = await fetch(`${link.origin}${link.pathname}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ticket: decodeURIComponent(link.hash.slice(1)) }),
    });
    expect(opened.status).toBe(200);
    expect(((await opened.json()) as { data: { url: string } }).data.url).toContain(stack.guacamoleUrl);

    await cdaas.desktops.stop(desktop.id);
    expect((await cdaas.desktops.waitUntil(desktop.id, 'STOPPED')).status).toBe('STOPPED');
    await cdaas.desktops.delete(desktop.id);
    expect((await cdaas.desktops.waitUntil(desktop.id, 'DELETED')).status).toBe('DELETED');
    await expect(cdaas.desktops.get('dknosuchdesktop00000000')).rejects.toBeInstanceOf(NotFoundError);
  });
});

// Each CLI call is a new process: seconds apiece on a busy machine.
describe('the CLI with --json, as the README shows it', { timeout: 180_000 }, () => {
  it('logs in with a token, then creates, waits, lists, connects, stops and removes a desktop', async () => {
    // `npm run -s token -- bob | npx cdaas login --url … --token -`
    const login = await cdaas(['login', '--url', stack.edgeUrl, '--token', '-', '--json'], {}, await stack.token('readme-bob'));
    expect(login).toMatchObject({ code: 0 });
    const file = json<{ configFile: string }>(login).configFile;
    expect(file).toBe(join(config, 'cdaas', 'config.json'));
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const created = await cdaas(['desktops', 'create', '--name', 'Studio', '--plan', 'standard', '--wait', '--json']);
    expect(created).toMatchObject({ code: 0 });
    const desktop = json<Desktop>(created);
    expect([desktop.status, desktop.plan]).toEqual(['RUNNING', 'STANDARD']);
    // The progress display went to stderr; stdout held only the JSON document.
    expect(created.stderr).toContain(desktop.id);

    const listed = json<DesktopPage>(await cdaas(['desktops', 'ls', '--status', 'RUNNING', '--json']));
    expect(listed.items.map((d) => d.id)).toEqual([desktop.id]);
    const connect = json<{ connectionUrl: string }>(await cdaas(['desktops', 'connect', desktop.id, '--json']));
    expect(connect.connectionUrl).toMatch(/\/api\/v1\/connect#dk/);
    expect((await cdaas(['templates', 'ls', '--json'])).code).toBe(0);

    const stopped = await cdaas(['desktops', 'stop', desktop.id, '--wait', '--json']);
    expect([stopped.code, json<Desktop>(stopped).status]).toEqual([0, 'STOPPED']);
    const removed = await cdaas(['desktops', 'rm', desktop.id, '--wait', '--json']);
    expect([removed.code, json<Desktop>(removed).status]).toEqual([0, 'DELETED']);
  });

  it('says what went wrong with an exit code by outcome, as JSON on stdout', async () => {
    const savedLogin = readFileSync(join(config, 'cdaas', 'config.json'), 'utf8');
    const badLogin = await cdaas(['login', '--url', stack.edgeUrl, '--token', 'not-a-token']);
    expect(badLogin.code).toBe(3);
    // A token the API refuses is not saved over the good one.
    expect(readFileSync(join(config, 'cdaas', 'config.json'), 'utf8')).toBe(savedLogin);

    const env = { CDAAS_URL: stack.edgeUrl, CDAAS_TOKEN: await stack.token('readme-carol') };
    const missing = await cdaas(['desktops', 'get', 'dknosuchdesktop00000000', '--json'], env);
    expect(missing.code).toBe(5);
    expect(json<{ error: { code: string } }>(missing).error.code).toBe('NOT_FOUND');
    const refused = await cdaas(['desktops', 'ls'], { CDAAS_URL: stack.edgeUrl, CDAAS_TOKEN: 'not-a-token' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^cdaas: /);
    expect((await cdaas(['desktops', 'ls', '--status', 'SLEEPING'], env)).code).toBe(2);
    const first = json<Desktop>(await cdaas(['desktops', 'create', '--json'], env));
    const second = await cdaas(['desktops', 'create', '--json'], env);
    expect(second.code).toBe(6);
    expect(json<{ error: { code: string } }>(second).error.code).toBe('QUOTA_EXCEEDED');
    expect((await cdaas(['desktops', 'rm', first.id, '--json'], env)).code).toBe(0);
  });
});

describe('a create retried with the same Idempotency-Key', { timeout: 180_000 }, () => {
  it('makes one desktop when the SDK retries a create whose answer was lost', async () => {
    const user = 'readme-dave';
    const admin = createClient({ baseUrl: stack.edgeUrl, token: await stack.token('root', ['admin']) });
    // Room for more than one desktop, so only the key can stop a second one.
    const quota = await fetch(`${stack.edgeUrl}/api/v1/admin/users/${user}/quota`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${await stack.token('root', ['admin'])}`, 'content-type': 'application/json' },
      body: JSON.stringify({ maxDesktops: 5 }),
    });
    expect(quota.status).toBe(200);
    let lost = 0;
    const cdaas = createClient({
      baseUrl: stack.edgeUrl,
      token: await stack.token(user),
      retry: { baseDelayMs: 10 },
      // The first create reaches the API, but its answer never comes back.
      fetch: async (request) => {
        const answer = await fetch(request);
        if (request.method === 'POST' && lost++ === 0) throw new TypeError('connection reset');
        return answer;
      },
    });
    const desktop = await cdaas.desktops.create({ name: 'Retried' });
    expect(lost).toBe(2);
    const mine = await cdaas.desktops.list();
    expect(mine.items.map((d) => d.id)).toEqual([desktop.id]);
    expect((await admin.desktops.list({ userId: user })).total).toBe(1);
  });

  it('makes one desktop when the CLI or a plain HTTP client repeats it', async () => {
    const token = await stack.token('readme-erin');
    const env = { CDAAS_URL: stack.edgeUrl, CDAAS_TOKEN: token };
    const key = crypto.randomUUID();
    const a = json<Desktop>(await cdaas(['desktops', 'create', '--name', 'Once', '--idempotency-key', key, '--json'], env));
    const b = json<Desktop>(await cdaas(['desktops', 'create', '--name', 'Once', '--idempotency-key', key, '--json'], env));
    expect(b.id).toBe(a.id);

    const post = () =>
      fetch(`${stack.edgeUrl}/api/v1/desktops`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ name: 'Once' }),
      });
    const replayed = await post();
    expect(replayed.status).toBe(202);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replayed.json()) as { data: Desktop }).data.id).toBe(a.id);
    const other = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ name: 'Something else' }),
    });
    expect(other.status).toBe(422);
    const page = json<DesktopPage>(await cdaas(['desktops', 'ls', '--json'], env));
    expect(page.items.map((d) => d.id)).toEqual([a.id]);
  });
});
