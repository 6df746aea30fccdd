/**
 * The embed example (examples/embed-app) in chromium, against the whole local stack: a
 * streaming app's page on an origin of its own loads <cloud-desktop> from the edge, launches
 * a desktop through its backend, follows it into the desktop frame, answers the idle warning
 * with a keepalive, and ends it; the element's events arrive in order, the browser only ever
 * holds desktop tokens, and the page keeps a strict CSP. Screens are photographed and checked
 * with axe-core like the dashboard's. The element's decisions alone: cloud-desktop-state.test.ts.
 */
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbedExample } from '../../examples/embed-app/server';
import { type Stack, freePort, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import { checkScreen, frameAllows, hasChromium, launchChromium, newProfile } from './support/browser';
import { setTimeout as sleep } from 'node:timers/promises';

let stack: Stack;
let browser: Browser;
let app: { url: string; close(): Promise<void> };
let edge: string;
let service: string;

/** Idle stop 30 s after the last activity, warned 24 s before (WARNING_LEAD_MINUTES below): time to photograph the warning and answer it. */
const UBUNTU = {
  id: 'ubuntu-desktop',
  name: 'Ubuntu Desktop',
  os: 'Ubuntu 24.04',
  description: 'A VM on Proxmox, in the browser over VNC',
  backend: 'proxmox',
  protocol: 'vnc',
  defaultPlan: 'STANDARD',
  idleTimeoutMinutes: 0.5,
};
/** Names a VM template the site does not have: its launches fail, with the bridge's reason. */
const LEGACY = {
  id: 'legacy-image',
  name: 'Legacy Image',
  os: 'Windows 10',
  description: 'An image this site no longer has',
  backend: 'proxmox',
  protocol: 'rdp',
  defaultPlan: 'BASIC',
  vmTemplate: 'retired-image',
};

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; data: T }> {
  const res = await fetch(`${edge}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, data: ((await res.json()) as { data: T }).data };
}

const typ = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { typ?: string }).typ;
const eventTypes = (page: Page) =>
  page.locator('#event-log li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.type ?? ''));

/** Presses Tab until focus, through the element's shadow root, is on `part` (the keyboard reaches it), or fails. */
async function tabTo(page: Page, part: string): Promise<void> {
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    const at = await page.evaluate(() => document.activeElement?.shadowRoot?.activeElement?.getAttribute('part') ?? null);
    if (at === part) return;
  }
  throw new Error(`Tab never reached the ${part}`);
}

describe.skipIf(!hasChromium)('the embed example in chromium', () => {
  beforeAll(async () => {
    const appPort = await freePort();
    [stack, browser] = await Promise.all([
      startStack({ edgeVars: { CORS_ORIGINS: `http://127.0.0.1:${appPort}`, WARNING_LEAD_MINUTES: '0.4' } }),
      launchChromium(),
    ]);
    edge = stack.edgeUrl;
    service = await stack.token('streaming-app', ['service']);
    const admin = await stack.token('setup-admin', ['admin']);
    for (const t of [UBUNTU, LEGACY]) expect((await api('POST', '/api/v1/admin/templates', admin, t)).status).toBe(201);
    app = await startEmbedExample({
      port: appPort,
      edgeUrl: edge,
      serviceToken: async () => service,
      userNamespace: 'streaming-app:',
      frameSources: ['http://127.0.0.1:*'],
    });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await browser?.close();
    await stack?.stop();
  });

  it('launches a desktop into the page, through progress to the desktop frame and an idle warning answered with keepalive, to its end; the events fire in order', async () => {
    const { context, page, problems } = await newProfile(browser);
    const bearers: string[] = [];
    const script: { status: number; headers: Record<string, string> }[] = [];
    page.on('request', (r) => {
      const auth = r.headers().authorization;
      if (r.url().startsWith(edge) && auth) bearers.push(auth.replace(/^Bearer /, ''));
    });
    page.on('response', (r) => {
      if (r.url() === `${edge}/embed/cloud-desktop.js`) script.push({ status: r.status(), headers: r.headers() });
    });

    await page.goto(app.url);
    await page.getByRole('heading', { name: 'Your cloud studio', level: 1 }).waitFor();
    const launch = page.getByRole('button', { name: 'Launch Ubuntu Desktop' });
    await launch.waitFor();
    await checkScreen(page, 'embed-example');

    // With the site's bridge away, the desktop waits at its first step: its progress can be seen for sure.
    await stack.bridge.stop();
    await launch.click();
    const element = page.locator('cloud-desktop');
    const status = element.locator('[part="status"]');
    await status.filter({ hasText: 'Queued' }).waitFor();
    expect(await element.getByText('Step 1 of 6: Queued').isVisible()).toBe(true);
    expect(await element.getByRole('status').textContent()).toBe('Ubuntu Desktop: Queued, step 1 of 6.');
    await checkScreen(page, 'embed-progress');

    await stack.startBridge();
    const frame = element.locator('iframe');
    await frame.waitFor({ timeout: 30_000 });
    expect(await frame.getAttribute('title')).toBe('Remote desktop: Ubuntu Desktop');
    await page.frameLocator('cloud-desktop iframe').locator('#status[data-state="connected"]').waitFor();
    expect(await status.textContent()).toBe('Running');
    // The clipboard reaches Guacamole's page, though the frame got there through the edge's redirect.
    expect(await frameAllows(page, stack.guacamoleUrl, 'clipboard-write')).toBe(true);
    await checkScreen(page, 'embed-running');

    // Nobody uses it: the warning, then "I'm still here", by keyboard.
    const warning = element.getByRole('alert').filter({ hasText: 'will stop at' });
    await warning.waitFor({ timeout: 20_000 });
    expect(await warning.textContent()).toMatch(/^Ubuntu Desktop will stop at .+ because nobody has used it for a while\./);
    await checkScreen(page, 'embed-idle-warning');
    await page.getByRole('heading', { name: 'Your desktop' }).click();
    await tabTo(page, 'keepalive-button');
    await page.keyboard.press('Enter');
    await warning.waitFor({ state: 'hidden' });
    await element.getByRole('status').filter({ hasText: 'Thanks. Ubuntu Desktop keeps running.' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.shadowRoot?.activeElement?.getAttribute('part'))).toBe('panel');
    const id = (await element.getAttribute('desktop-id')) ?? '';
    expect((await api<Desktop>('GET', `/api/v1/desktops/${id}`, service)).data.lastActivitySource).toBe('keepalive');

    // The app ends the session: the frame closes and the element says so.
    await page.getByRole('button', { name: 'End session' }).click();
    await status.filter({ hasText: 'Terminated' }).waitFor({ timeout: 30_000 });
    expect(await frame.count()).toBe(0);
    await checkScreen(page, 'embed-ended');

    const types = await eventTypes(page);
    const ready = types.indexOf('ready');
    expect(types[0], types.join(' ')).toBe('progress');
    expect(
      types.slice(0, ready).every((t) => t === 'progress'),
      types.join(' '),
    ).toBe(true);
    expect(types.slice(ready, ready + 3), types.join(' ')).toEqual(['ready', 'idle-warning', 'keepalive']);
    expect(types.at(-1), types.join(' ')).toBe('stopped');
    expect(types).not.toContain('failed');
    expect(await page.locator('#event-log li').last().textContent()).toBe('stopped — DELETED');

    // The browser held desktop tokens only, never the app's service token; the element came cross-origin, cacheable.
    expect(bearers.length).toBeGreaterThan(0);
    expect(bearers.filter((b) => typ(b) !== 'desktop-token')).toEqual([]);
    expect(bearers).not.toContain(service);
    expect(script[0]).toMatchObject({ status: 200 });
    expect(script[0]?.headers).toMatchObject({
      'cross-origin-resource-policy': 'cross-origin',
      'cache-control': 'public, max-age=300',
    });
    expect(problems).toEqual([]);

    // The audit trail: the service minted the tokens; the keepalive came through one, as the viewer.
    const admin = await stack.token('audit-reader', ['admin']);
    const trail = async () =>
      (
        await api<{ items: { action: string; actor: string; role: string }[] }>(
          'GET',
          `/api/v1/admin/audit?target=${id}&pageSize=100`,
          admin,
        )
      ).data.items;
    const deadline = Date.now() + 20_000;
    let items = await trail();
    while (!items.some((r) => r.action === 'desktop.delete') && Date.now() < deadline) {
      await sleep(250);
      items = await trail();
    }
    expect(items).toContainEqual(expect.objectContaining({ action: 'desktop.embed-token', actor: 'streaming-app', role: 'service' }));
    expect(items).toContainEqual(expect.objectContaining({ action: 'desktop.keepalive', role: 'embed' }));
    expect(items).toContainEqual(expect.objectContaining({ action: 'desktop.connect', role: 'embed' }));
    await context.close();
  }, 180_000);

  it('tells the page why when the desktop fails, when the app refuses a token for someone else’s desktop, and when the API refuses the token', async () => {
    const { context, page, problems } = await newProfile(browser);
    await page.goto(app.url);
    await page.getByRole('button', { name: 'Launch Legacy Image' }).click();
    const element = page.locator('cloud-desktop');
    await element.locator('[part="status"]').filter({ hasText: 'Failed' }).waitFor({ timeout: 30_000 });
    expect(await element.locator('[part="ended"]').textContent()).toMatch(/retired-image/);
    const failed = page.locator('#event-log li[data-type="failed"]');
    expect(await failed.textContent()).toMatch(/^failed — DESKTOP_FAILED: .*retired-image/);
    await checkScreen(page, 'embed-failed');
    const mine = (await element.getAttribute('desktop-id')) ?? '';

    // Another viewer of the app (another browser) cannot embed that desktop: the app's backend refuses the token.
    const other = await newProfile(browser);
    await other.page.goto(app.url);
    await other.page.getByRole('button', { name: 'Launch Ubuntu Desktop' }).waitFor();
    const embedHere = (p: Page, desktopId: string, tokenEndpoint: string) =>
      p.evaluate(
        ([id, endpoint]) => {
          const el = document.createElement('cloud-desktop');
          el.setAttribute('desktop-id', id);
          el.setAttribute('token-endpoint', endpoint);
          el.addEventListener('failed', (e) => {
            el.dataset.failed = JSON.stringify((e as CustomEvent).detail);
          });
          document.querySelector('main')?.append(el);
        },
        [desktopId, tokenEndpoint] as const,
      );
    const failureOf = async (el: Locator) => JSON.parse((await el.getAttribute('data-failed')) ?? '{}') as unknown;
    await embedHere(other.page, mine, '/api/embed-token');
    const refused = other.page.locator('cloud-desktop').first();
    await refused.getByRole('alert').filter({ hasText: 'No such desktop' }).waitFor();
    expect(await failureOf(refused)).toEqual({ desktopId: mine, code: 'TOKEN_REFUSED', reason: 'No such desktop' });
    expect(await refused.getByRole('button', { name: 'Try again' }).isVisible()).toBe(true);

    // A token the API does not take: the element asks its endpoint once more, then gives up and says why.
    let asked = 0;
    await other.page.route('**/bad-token-endpoint', (route) => {
      asked++;
      return route.fulfill({ json: { token: 'not-a-token', expiresAt: new Date(Date.now() + 600_000).toISOString() } });
    });
    await embedHere(other.page, mine, '/bad-token-endpoint');
    const rejected = other.page.locator('cloud-desktop').nth(1);
    await rejected.getByRole('alert').filter({ hasText: 'The API refused the desktop token' }).waitFor();
    expect(await failureOf(rejected)).toMatchObject({ code: 'TOKEN_REFUSED', reason: 'The API refused the desktop token: Invalid token' });
    expect(asked).toBe(2);
    // Its console shows only the refused requests' "Failed to load resource", which newProfile lets pass.
    expect(other.problems).toEqual([]);
    expect(problems).toEqual([]);
    await page.getByRole('button', { name: 'End session' }).click();
    await element.locator('[part="status"]').filter({ hasText: 'Terminated' }).waitFor({ timeout: 30_000 });
    await other.context.close();
    await context.close();
  }, 120_000);
});
