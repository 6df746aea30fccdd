/**
 * The dashboard end to end, in Debian's chromium, against the whole local stack (edge
 * under wrangler dev, bridge, simulators, Postgres) and a real OpenID provider: sign-in
 * both ways, a desktop's whole life as a user sees it, an admin watching, the console's
 * pages, and the session's defences (cookie flags, CSRF, WebSocket origin, dev flag).
 * Every screen is photographed at desktop and phone width and checked with axe-core.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Stack, freePort, startStack } from '../../scripts/lib/stack';
import type { Desktop } from '../../src/schemas/desktop';
import { checkScreen, devSignIn, frameAllows, hasChromium, launchChromium, newProfile } from './support/browser';
import { OIDC_CLIENT_ID, startIdentityProvider } from './support/identity-provider';

let stack: Stack;
let browser: Browser;
let idp: { issuer: string; close(): Promise<void> };
let edge: string;

const ACCOUNTS = {
  'oidc-olivia': { name: 'Olivia Okafor', roles: ['staff', 'admin'] },
  'oidc-umar': { name: 'Umar Ulloa', roles: ['staff'] },
};

/**
 * Idle stop 24 s after the last activity, warned 15 s before (WARNING_LEAD_MINUTES below): the warning comes while
 * the test waits, and a loaded machine still photographs each screen before the desktop stops by itself.
 */
const UBUNTU = {
  id: 'ubuntu-desktop',
  name: 'Ubuntu Desktop',
  os: 'Ubuntu 24.04',
  description: 'A VM on Proxmox, in the browser over VNC',
  backend: 'proxmox',
  protocol: 'vnc',
  defaultPlan: 'STANDARD',
  idleTimeoutMinutes: 0.4,
};
const GPU = {
  id: 'gpu-workstation',
  name: 'GPU Workstation',
  os: 'Ubuntu 24.04 (KDE)',
  description: 'CAD and 3D on a shared GPU, streamed over WebRTC',
  backend: 'selkies',
  protocol: 'webrtc',
  defaultPlan: 'PREMIUM',
  gpuSlots: 2,
  image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000',
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

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; data: T; message: string }> {
  const res = await fetch(`${edge}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { data: T; message: string };
  return { status: res.status, data: json.data, message: json.message };
}

describe.skipIf(!hasChromium)('the dashboard in chromium', () => {
  beforeAll(async () => {
    const idpPort = await freePort();
    const clientSecret = randomBytes(24).toString('hex');
    [stack, browser] = await Promise.all([
      startStack({
        edgeVars: {
          DEV_SIGN_IN: 'true',
          OIDC_ISSUER: `http://127.0.0.1:${idpPort}`,
          OIDC_CLIENT_ID,
          OIDC_SCOPES: 'openid profile roles',
          WARNING_LEAD_MINUTES: '0.25',
        },
        edgeSecrets: { OIDC_CLIENT_SECRET: clientSecret },
      }),
      launchChromium(),
    ]);
    edge = stack.edgeUrl;
    idp = await startIdentityProvider({ port: idpPort, clientSecret, redirectUri: `${edge}/auth/callback`, accounts: ACCOUNTS });
    const admin = await stack.token('setup-admin', ['admin']);
    for (const t of [UBUNTU, GPU, LEGACY]) expect((await api('POST', '/api/v1/admin/templates', admin, t)).status).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await stack?.stop();
  });

  /** Reloads until `target` shows (records reach Postgres through a queue, so a list can lag a moment behind). */
  async function reloadUntil(page: Page, target: Locator, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await target.count()) === 0) {
      if (Date.now() > deadline) throw new Error(`${what}: not shown after ${timeoutMs} ms`);
      await page.reload();
    }
  }

  const focusedText = (page: Page) => page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
  const announced = (page: Page) => page.locator('#announcer');

  describe('sign-in with OpenID Connect', () => {
    it('signs in through a real provider (authorisation code with PKCE), maps roles from the ID token, and signs out', async () => {
      const { context, page, problems } = await newProfile(browser);
      const authorizeRequests: URL[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(`${idp.issuer}/auth`)) authorizeRequests.push(new URL(r.url()));
      });

      await page.goto(`${edge}/admin/audit`);
      await page.waitForURL(`${edge}/sign-in?next=${encodeURIComponent('/admin/audit')}`);
      await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
      await checkScreen(page, 'sign-in');

      await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
      // The provider's own login and consent pages.
      await page.locator('input[name="login"]').fill('oidc-olivia');
      await page.locator('input[name="password"]').fill('correct horse battery staple');
      await page.getByRole('button', { name: 'Sign-in' }).click();
      await page.getByRole('button', { name: 'Continue' }).click();

      await page.waitForURL(`${edge}/admin/audit`);
      await page.getByRole('heading', { name: 'Admin · Audit log', level: 1 }).waitFor();
      expect(await page.locator('.account .who').textContent()).toBe('Signed in as Olivia Okaforadmin');
      const first = authorizeRequests[0];
      expect(first?.searchParams.get('code_challenge_method')).toBe('S256');
      expect(first?.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(first?.searchParams.get('redirect_uri')).toBe(`${edge}/auth/callback`);

      const session = (await context.cookies()).find((c) => c.name === 'cdaas_session');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
      // Plain http is allowed on loopback only, so here the cookie cannot be Secure (https gets __Host- and Secure).
      expect(session?.secure).toBe(false);
      expect((await context.cookies()).some((c) => c.name === 'cdaas_signin')).toBe(false);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByText('You are signed out.').waitFor();
      expect((await context.cookies()).some((c) => c.name === 'cdaas_session')).toBe(false);
      expect(problems).toEqual([]);
      await context.close();
    });

    it('gives someone without the admin role the launcher only', async () => {
      const { context, page, problems } = await newProfile(browser);
      await page.goto(`${edge}/sign-in`);
      await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
      await page.locator('input[name="login"]').fill('oidc-umar');
      await page.locator('input[name="password"]').fill('whatever');
      await page.getByRole('button', { name: 'Sign-in' }).click();
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Your cloud desktops', level: 1 }).waitFor();
      expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).toEqual(['Desktops']);
      const res = await page.goto(`${edge}/admin`);
      expect(res?.status()).toBe(403);
      await page.getByText('The admin console is for administrators').waitFor();
      expect(problems).toEqual([]);
      await context.close();
    });
  });

  describe('a desktop’s life in the launcher', () => {
    it('launches, shows live progress to RUNNING, opens the desktop, answers the idle warning and terminates it; an admin sees the session and the audit trail', async () => {
      const user = await newProfile(browser);
      const { page } = user;
      await devSignIn(page, edge, 'ui-alice', 'user');
      await page.keyboard.press('Tab');
      expect(await focusedText(page)).toBe('Skip to main content');

      const ubuntu = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Ubuntu Desktop' }) });
      expect(await ubuntu.locator('dd').allTextContents()).toEqual(['Ubuntu 24.04', 'No', 'Standard · 4 vCPU, 4 GB']);
      const gpu = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'GPU Workstation' }) });
      expect(await gpu.locator('dd').allTextContents()).toEqual([
        'Ubuntu 24.04 (KDE)',
        'Yes, a shared GPU (2 of 8 slots)',
        'Premium · 8 vCPU, 8 GB',
      ]);
      await checkScreen(page, 'launcher');

      // With the site's bridge away, the new desktop waits at its first step: its progress can be seen (and photographed) for sure.
      await stack.bridge.stop();
      await page.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
      const card = page.locator('#desktop-list > li.desktop');
      await card.waitFor();
      const badge = card.locator('[data-field="status"]');
      expect(await badge.textContent()).toBe('Queued');
      expect(await card.locator('[data-field="step"]').textContent()).toBe('Step 1 of 6');
      await card
        .locator('[data-field="elapsed"]')
        .filter({ hasText: /^0:0[1-9]$/ })
        .waitFor();
      expect(await card.locator('[aria-current="step"]').textContent()).toBe('Queued');
      await page.evaluate(() => {
        const shown: string[] = [];
        Object.assign(window, { shownStatuses: shown });
        const el = document.querySelector('#desktop-list [data-field="status"]');
        const observer = new MutationObserver((records) => {
          for (const r of records) for (const n of r.addedNodes) shown.push(n.textContent ?? '');
        });
        if (el) observer.observe(el, { childList: true });
      });
      await checkScreen(page, 'launcher-progress');

      // An admin, meanwhile, finds the session and the audit record of its creation.
      const admin = await newProfile(browser);
      await devSignIn(admin.page, edge, 'ui-admin', 'admin', '/admin/sessions?userId=ui-alice');
      const row = admin.page.locator('tr[data-desktop-id]').filter({ hasText: 'ui-alice' });
      await reloadUntil(admin.page, row, 'the session of ui-alice');
      expect(await row.locator('[data-field="status"]').textContent()).toBe('Queued');
      await checkScreen(admin.page, 'admin-sessions');

      // The bridge is back: the card walks through the states by itself, and so does the admin's row.
      await stack.startBridge();
      await badge.filter({ hasText: 'Running' }).waitFor({ timeout: 30_000 });
      const shown = await page.evaluate(() => (window as unknown as { shownStatuses: string[] }).shownStatuses);
      const order = ['Queued', 'Creating the machine', 'Starting', 'Waiting for the network', 'Setting up remote access', 'Running'];
      const distinct = shown.filter((s, i) => s !== shown[i - 1]);
      expect(distinct.at(-1)).toBe('Running');
      expect(distinct.map((s) => order.indexOf(s))).toEqual([...distinct.map((s) => order.indexOf(s))].sort((a, b) => a - b));
      expect(distinct.length, `statuses shown: ${distinct.join(' → ')}`).toBeGreaterThanOrEqual(4);
      expect(await card.locator('[data-field="ready"]').textContent()).toMatch(/^Ready after \d+:\d\d\.$/);
      expect(await card.locator('[data-field="progress"]').isHidden()).toBe(true);
      await row.locator('[data-field="status"]').filter({ hasText: 'Running' }).waitFor();
      await checkScreen(page, 'launcher-running');

      // Over quota: the limit, in the API's words.
      await page.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
      const alert = page.locator('#alerts .notice-error');
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/You have reached your desktop limit[\s\S]*may have at most 1 active desktop/);
      await alert.getByRole('button', { name: 'Dismiss' }).click();
      await alert.waitFor({ state: 'detached' });

      // The desktop, embedded: the Guacamole (simulator) client connects inside the frame.
      await card.getByRole('button', { name: 'Open Ubuntu Desktop', exact: true }).click();
      const viewer = page.getByRole('region', { name: 'Desktop view: Ubuntu Desktop' });
      await viewer.waitFor();
      expect(await focusedText(page)).toBe('Desktop view: Ubuntu Desktop');
      await page.frameLocator('#desktop-frame').locator('#status[data-state="connected"]').waitFor();
      // The clipboard reaches Guacamole's page, though the frame got there through the edge's connect page.
      expect(await frameAllows(page, stack.guacamoleUrl, 'clipboard-write')).toBe(true);
      expect(await frameAllows(page, stack.guacamoleUrl, 'clipboard-read')).toBe(true);
      await checkScreen(page, 'desktop-view');
      await viewer.getByRole('button', { name: 'Full screen' }).click();
      await page.waitForFunction(() => document.fullscreenElement?.id === 'viewer');
      await viewer.getByRole('button', { name: 'Exit full screen' }).click();
      await page.waitForFunction(() => document.fullscreenElement === null);
      await viewer.getByRole('button', { name: 'Close desktop view' }).click();
      await viewer.waitFor({ state: 'hidden' });
      expect(await focusedText(page)).toBe('Open');

      // Nobody uses it: the idle warning, with the time left, answered with "I'm still here".
      const warning = page.locator('#warnings [data-warning-for]');
      await warning.waitFor({ timeout: 20_000 });
      expect(await warning.locator('.notice-title').textContent()).toMatch(/^Ubuntu Desktop will stop in 0:[01]\d$/);
      expect(await warning.getAttribute('role')).toBe('alert');
      await checkScreen(page, 'idle-warning');
      await warning.getByRole('button', { name: 'I’m still here: keep Ubuntu Desktop running' }).click();
      await warning.waitFor({ state: 'detached' });
      await announced(page).filter({ hasText: 'Thanks. Ubuntu Desktop keeps running' }).waitFor();
      const id = (await card.getAttribute('data-desktop-id')) ?? '';
      const aliceToken = await stack.token('ui-alice');
      expect((await api<Desktop>('GET', `/api/v1/desktops/${id}`, aliceToken)).data.lastActivitySource).toBe('keepalive');

      // Terminate, by keyboard: the dialog opens on Cancel, Escape cancels, Terminate confirms.
      const terminate = card.getByRole('button', { name: 'Terminate Ubuntu Desktop' });
      await terminate.focus();
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Terminate Ubuntu Desktop?' });
      await dialog.waitFor();
      expect(await focusedText(page)).toBe('Cancel');
      await checkScreen(page, 'terminate-dialog');
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      expect(await focusedText(page)).toBe('Terminate');
      await page.keyboard.press('Enter');
      await dialog.waitFor();
      await page.keyboard.press('Tab');
      expect(await focusedText(page)).toBe('Terminate');
      await page.keyboard.press('Enter');
      await card.waitFor({ state: 'detached', timeout: 30_000 });
      await page.getByText('You have no desktops. Launch one below.').waitFor();
      await announced(page).filter({ hasText: 'Ubuntu Desktop was terminated.' }).waitFor();
      expect((await api<Desktop>('GET', `/api/v1/desktops/${id}`, aliceToken)).data.status).toBe('DELETED');
      await checkScreen(page, 'launcher-after-terminate');

      // The admin's audit log has the whole story, with the user as the actor.
      await admin.page.goto(`${edge}/admin/audit?actor=ui-alice`);
      const deleted = admin.page.locator('tbody tr').filter({ hasText: 'desktop.delete' });
      await reloadUntil(admin.page, deleted, 'the audit record of the delete');
      const actions = await admin.page.locator('tbody th[scope="row"]').allTextContents();
      for (const a of ['desktop.create', 'desktop.connect', 'desktop.keepalive', 'desktop.delete']) expect(actions).toContain(a);
      const created = admin.page.locator('tbody tr').filter({ hasText: 'desktop.create' }).first();
      expect((await created.locator('td').allTextContents()).slice(1, 3)).toEqual(['ui-alice', 'user']);
      await checkScreen(admin.page, 'admin-audit');

      expect(user.problems).toEqual([]);
      expect(admin.problems).toEqual([]);
      await user.context.close();
      await admin.context.close();
    }, 150_000);

    it('says why a launch failed in words, and lets an admin raise a quota from the console', async () => {
      const bob = await newProfile(browser);
      await devSignIn(bob.page, edge, 'ui-bob', 'user');
      await bob.page.getByRole('button', { name: 'Launch Legacy Image' }).click();
      const card = bob.page.locator('#desktop-list > li.desktop');
      await card.locator('[data-field="status"]').filter({ hasText: 'Failed' }).waitFor({ timeout: 30_000 });
      const reason = card.locator('[data-field="error"]');
      expect(await reason.textContent()).toMatch(/^What went wrong: .*Unknown template "retired-image"/);
      expect(await reason.textContent()).not.toMatch(/\b[A-Z]+_[A-Z_]+\b/);
      expect(await card.getByRole('button', { name: 'Terminate Legacy Image' }).isVisible()).toBe(true);
      expect(await card.getByRole('button', { name: 'Open Legacy Image', exact: true }).isHidden()).toBe(true);
      await checkScreen(bob.page, 'launcher-failed');

      const admin = await newProfile(browser);
      await devSignIn(admin.page, edge, 'ui-admin', 'admin', '/admin/users?userId=ui-bob');
      expect(await admin.page.locator('[data-field="quota-summary"]').textContent()).toBe('1 active desktop of at most 1 (the default).');
      await admin.page.getByLabel('Desktop limit for ui-bob').fill('2');
      await admin.page.getByRole('button', { name: 'Save limit' }).click();
      await admin.page.locator('[data-field="quota-summary"]').filter({ hasText: 'of at most 2 (set by an admin)' }).waitFor();
      await announced(admin.page).filter({ hasText: 'ui-bob may now have 2 active desktops.' }).waitFor();
      await checkScreen(admin.page, 'admin-users');

      await bob.page.getByRole('button', { name: 'Launch Ubuntu Desktop' }).click();
      await bob.page.locator('#desktop-list > li.desktop').nth(1).waitFor();
      expect(await bob.page.locator('#alerts .notice-error').count()).toBe(0);
      expect(bob.problems).toEqual([]);
      expect(admin.problems).toEqual([]);
      await bob.context.close();
      await admin.context.close();
    });
  });

  describe('a desktop’s snapshots', () => {
    it('takes a snapshot of a running desktop, lists it, restores it (back to Running), forks it into a new desktop and deletes it; a WebRTC desktop says why it has none', async () => {
      const adminToken = await stack.token('ui-admin', ['admin']);
      expect((await api('PUT', '/api/v1/admin/users/ui-frank/quota', adminToken, { maxDesktops: 3 })).status).toBe(200);
      // Made by an admin so it stays up (no short idle stop) while the snapshot screens are photographed.
      const made = await api<Desktop>('POST', '/api/v1/desktops', adminToken, {
        userId: 'ui-frank',
        name: 'Ubuntu Desktop',
        templateId: 'ubuntu-desktop',
        idleTimeoutMinutes: 60,
      });
      expect(made.status).toBe(202);
      const gpu = await api<Desktop>('POST', '/api/v1/desktops', adminToken, { userId: 'ui-frank', templateId: 'gpu-workstation' });
      expect(gpu.status).toBe(202);
      const id = made.data.id;
      await expect
        .poll(async () => (await api<Desktop>('GET', `/api/v1/desktops/${id}`, adminToken)).data.status, { timeout: 30_000, interval: 250 })
        .toBe('RUNNING');

      const { context, page, problems } = await newProfile(browser);
      await devSignIn(page, edge, 'ui-frank', 'user');
      await page.locator(`#desktop-list [data-desktop-id="${id}"]`).getByRole('link', { name: 'Snapshots of Ubuntu Desktop' }).click();
      await page.getByRole('heading', { name: 'Snapshots of “Ubuntu Desktop”', level: 1 }).waitFor();
      await page.getByText('No snapshots yet.').waitFor();

      // Take one, named, with RAM: it is listed once Proxmox has taken it, and the page says so.
      await page.getByLabel('Name (optional)').fill('before-upgrade');
      await page.getByLabel('Description (optional)').fill('Clean install');
      await page.getByLabel('With RAM').check();
      await page.getByRole('button', { name: 'Take snapshot' }).click();
      const row = page.locator('tr[data-snapshot="before-upgrade"]');
      await row.waitFor({ timeout: 30_000 });
      expect(await row.locator('th, td').allTextContents()).toEqual([
        'before-upgrade',
        expect.stringMatching(/\d/),
        'Yes',
        'Clean install',
        'RestoreForkDelete',
      ]);
      await page.locator('[data-field="snapshot-message"]').filter({ hasText: 'Snapshot before-upgrade taken' }).waitFor();
      expect(await page.getByLabel('Name (optional)').inputValue()).toBe('');
      await checkScreen(page, 'snapshots');

      // A name Proxmox would refuse: the API's words, readable.
      await page.getByLabel('Name (optional)').fill('9lives');
      await page.getByRole('button', { name: 'Take snapshot' }).click();
      const alert = page.locator('#alerts .notice-error');
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/^Taking the snapshot: That did not work.*starts with a letter/);
      await alert.getByRole('button', { name: 'Dismiss' }).click();

      // Restore, by keyboard, after a confirmation that says what is lost: Starting, then Running again.
      await page.evaluate(() => {
        const shown: string[] = [];
        Object.assign(window, { shownStatuses: shown });
        const el = document.querySelector('[data-snapshots] [data-field="status"]');
        const observer = new MutationObserver(() => shown.push(el?.textContent ?? ''));
        if (el) observer.observe(el, { childList: true });
      });
      await row.getByRole('button', { name: 'Restore Ubuntu Desktop to before-upgrade' }).focus();
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Restore Ubuntu Desktop to before-upgrade?' });
      await dialog.waitFor();
      expect(await dialog.textContent()).toContain('Everything that changed on the desktop since before-upgrade was taken is lost.');
      await checkScreen(page, 'snapshot-restore-confirm');
      await dialog.getByRole('button', { name: 'Restore' }).click();
      const badge = page.locator('[data-snapshots] [data-field="status"]');
      await expect.poll(() => page.evaluate(() => (window as unknown as { shownStatuses: string[] }).shownStatuses)).toContain('Starting');
      await badge.filter({ hasText: 'Running' }).waitFor({ timeout: 30_000 });
      expect((await api<Desktop>('GET', `/api/v1/desktops/${id}`, adminToken)).data.status).toBe('RUNNING');
      const events = await api<{ event: string }[]>('GET', `/api/v1/desktops/${id}/events`, adminToken);
      expect(events.data.map((e) => e.event)).toContain('restore');

      // Fork: a new desktop, shown on the launcher with the focus on its name.
      await row.getByRole('button', { name: 'Fork before-upgrade into a new desktop' }).click();
      await page.getByRole('heading', { name: 'Your cloud desktops', level: 1 }).waitFor();
      const fork = page.locator('#desktop-list > li.desktop').filter({ has: page.getByRole('heading', { name: 'Ubuntu Desktop (fork)' }) });
      await fork.waitFor();
      expect(await focusedText(page)).toBe('Ubuntu Desktop (fork)');
      const forkId = (await fork.getAttribute('data-desktop-id')) ?? '';
      await fork.locator('[data-field="status"]').filter({ hasText: 'Running' }).waitFor({ timeout: 30_000 });
      await checkScreen(page, 'launcher-fork');

      // Delete it, after a confirmation; the desktop and its fork stay.
      await page.goto(`${edge}/desktops/${id}/snapshots`);
      await row.getByRole('button', { name: 'Delete snapshot before-upgrade' }).click();
      const confirmDelete = page.getByRole('dialog', { name: 'Delete the snapshot before-upgrade?' });
      await confirmDelete.getByRole('button', { name: 'Delete' }).click();
      await row.waitFor({ state: 'detached', timeout: 30_000 });
      await page.getByText('No snapshots yet.').waitFor();
      await announced(page).filter({ hasText: 'Snapshot before-upgrade deleted' }).waitFor();
      const left = await api<{ snapshots: unknown[] }>('GET', `/api/v1/desktops/${id}/snapshots`, adminToken);
      expect(left.data.snapshots).toEqual([]);

      // A WebRTC desktop: the reason, no form.
      await page.goto(`${edge}/desktops/${gpu.data.id}/snapshots`);
      await page.getByText('This desktop has no snapshots').waitFor();
      expect(await page.getByRole('button', { name: 'Take snapshot' }).count()).toBe(0);
      await checkScreen(page, 'snapshots-webrtc');
      expect(problems).toEqual([]);
      await context.close();
      // Gone before the next test, so their idle stops and webhook deliveries do not slow it down.
      for (const d of [id, forkId, gpu.data.id]) expect((await api('DELETE', `/api/v1/desktops/${d}`, adminToken)).status).toBe(202);
    }, 150_000);
  });

  describe('the admin console', () => {
    it('shows the overview, retires and restores a template, and lists webhook deliveries', async () => {
      const adminToken = await stack.token('ui-admin', ['admin']);
      // A subscriber nobody can reach (a closed network): its delivery attempts fail, and are listed.
      const hook = await api<{ id: string }>('POST', '/api/v1/webhooks', adminToken, { url: 'https://hooks.invalid/desktops' });
      expect(hook.status).toBe(201);
      // Carol's desktop stays up for the test (an admin may set any idle timeout), so the admin can stop it from the console.
      const carol = await api<Desktop>('POST', '/api/v1/desktops', adminToken, {
        userId: 'ui-carol',
        name: 'Ubuntu Desktop',
        templateId: 'ubuntu-desktop',
        idleTimeoutMinutes: 60,
      });
      expect(carol.status).toBe(202);

      const { context, page, problems } = await newProfile(browser);
      await devSignIn(page, edge, 'ui-admin', 'admin', '/admin');
      await page.getByRole('heading', { name: 'Desktops by status' }).waitFor();
      expect(await page.getByRole('heading', { name: 'Capacity in use per site and node' }).isVisible()).toBe(true);
      expect(await page.locator('.site h3').first().textContent()).toContain('bridge connected');
      expect(await page.getByText('Time to running, p95').isVisible()).toBe(true);
      await checkScreen(page, 'admin-overview');

      await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Templates' }).click();
      const gpuRow = page.locator('tr[data-template-id="gpu-workstation"]');
      await gpuRow.getByRole('button', { name: 'Retire GPU Workstation' }).click();
      await gpuRow.getByText('Retired').waitFor();
      expect(await focusedText(page)).toBe('Restore');
      await checkScreen(page, 'admin-templates');
      await gpuRow.getByRole('button', { name: 'Restore GPU Workstation' }).click();
      await gpuRow.getByText('Active').waitFor();
      expect((await api<{ id: string }[]>('GET', '/api/v1/templates', adminToken)).data.map((t) => t.id)).toContain('gpu-workstation');

      // A warm pool for the legacy template, sized to nothing (the site builds nothing): its row says what it aims at and why.
      const pool = { templateId: LEGACY.id, sizing: { running: 0, cap: 0 } };
      expect((await api('PUT', '/api/v1/admin/pools/legacy', adminToken, pool)).status).toBe(200);
      await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Warm pools' }).click();
      const poolRow = page.locator('tr[data-pool-id="legacy"]');
      await poolRow.getByText('outside every window: 0 running, 0 stopped').waitFor();
      expect(await poolRow.getByText('0 / 0 / 0').isVisible()).toBe(true);
      await checkScreen(page, 'admin-pools');

      await page.getByRole('link', { name: 'Sessions' }).click();
      await page.getByLabel('User id').fill('ui-carol');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      const row = page.locator(`tr[data-desktop-id="${carol.data.id}"]`);
      await reloadUntil(page, row, 'the session of ui-carol');
      await row.locator('[data-field="status"]').filter({ hasText: 'Running' }).waitFor({ timeout: 30_000 });

      // The running desktop's use: four small charts read from Proxmox. (On Carol's desktop, which has no idle stop
      // to race: on a busy machine these screens take longer than a short idle timeout.)
      await row.getByRole('link', { name: /^Use of / }).click();
      const usage = page.getByRole('region', { name: /^Use of desktop / });
      await usage.waitFor();
      for (const chart of ['CPU', 'Memory', 'Network', 'Disk']) {
        await usage.getByRole('img', { name: new RegExp(`^${chart} over the last hour`) }).waitFor();
      }
      await checkScreen(page, 'admin-usage');
      await page.goBack();
      await row.getByRole('button', { name: 'Stop Ubuntu Desktop of ui-carol' }).click();
      // The row follows the desktop live: Stopping, then Stopped, and offers Start.
      await row.locator('[data-field="status"]').filter({ hasText: 'Stopped' }).waitFor({ timeout: 30_000 });
      expect(await row.getByRole('button', { name: 'Start Ubuntu Desktop of ui-carol' }).isVisible()).toBe(true);

      await page.goto(`${edge}/admin/webhooks?id=${hook.data.id}`);
      const attempts = page.getByRole('region', { name: 'Delivery attempts' }).locator('tbody tr');
      await reloadUntil(page, attempts, 'a delivery attempt');
      expect(await attempts.first().textContent()).toMatch(/desktop\.\w+[\s\S]*failed/);
      await checkScreen(page, 'admin-webhooks');
      expect(problems).toEqual([]);
      await context.close();
    });
  });

  /** A request to the edge under another host name (node:http, since fetch will not set Host). */
  function asHost(host: string, path: string, form?: string): Promise<{ status: number; body: string }> {
    const { port } = new URL(edge);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { host, origin: `http://${host}` };
      if (form !== undefined)
        Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': form.length });
      const req = request({ host: '127.0.0.1', port, path, method: form === undefined ? 'GET' : 'POST', headers }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(form);
    });
  }

  describe('the session’s defences', () => {
    async function devSession(user: string, role: 'user' | 'admin' = 'user'): Promise<{ cookie: string; csrf: string }> {
      const res = await fetch(`${edge}/auth/dev`, {
        method: 'POST',
        redirect: 'manual',
        headers: { origin: edge, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ userId: user, role }),
      });
      expect(res.status).toBe(303);
      const setCookie = res.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^cdaas_session=[^;]+; Max-Age=7200; Path=\/; HttpOnly; SameSite=Lax$/);
      const cookie = setCookie.split(';')[0] ?? '';
      const page = await (await fetch(`${edge}/`, { headers: { cookie } })).text();
      return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)"/.exec(page)?.[1] ?? '' };
    }

    it('accepts the session cookie on the API only with the page’s CSRF token, and never as a bearer token', async () => {
      const { cookie, csrf } = await devSession('ui-dave');
      const list = (headers: Record<string, string>) => fetch(`${edge}/api/v1/desktops`, { headers });
      expect((await list({ cookie })).status).toBe(403);
      expect((await list({ cookie, 'x-csrf-token': `${csrf}x` })).status).toBe(403);
      expect((await list({ cookie, 'x-csrf-token': csrf })).status).toBe(200);
      const made = await fetch(`${edge}/api/v1/desktops`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ templateId: 'ubuntu-desktop' }),
      });
      expect(made.status).toBe(403);
      // The session token itself is no API credential, and a forged cookie is no session.
      const token = cookie.split('=')[1] ?? '';
      expect((await list({ authorization: `Bearer ${token}` })).status).toBe(401);
      expect((await list({ cookie: `cdaas_session=${token.slice(0, -2)}xx`, 'x-csrf-token': csrf })).status).toBe(401);
      // An explicit bearer token is judged alone, as before the dashboard existed.
      expect((await list({ cookie, authorization: `Bearer ${await stack.token('ui-dave')}` })).status).toBe(200);
      // Pages and fragments without a session: a redirect to sign in, or a 401 for the script.
      expect((await fetch(`${edge}/admin`, { redirect: 'manual' })).headers.get('location')).toBe('/sign-in?next=%2Fadmin');
      expect((await fetch(`${edge}/`, { headers: { 'x-fragment': 'main' } })).status).toBe(401);
    });

    it('opens the live status WebSocket only for the dashboard’s own origin', async () => {
      const { cookie } = await devSession('ui-erin');
      const made = await api<Desktop>('POST', '/api/v1/desktops', await stack.token('ui-erin'), { templateId: 'ubuntu-desktop' });
      const url = `${edge.replace('http', 'ws')}/api/v1/desktops/${made.data.id}/live`;
      const attempt = (origin: string) =>
        new Promise<{ status: number; first?: string }>((resolve) => {
          const ws = new WebSocket(url, { headers: { cookie, origin } });
          ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
          ws.on('message', (data) => {
            resolve({ status: 101, first: String(data) });
            ws.close();
          });
        });
      expect((await attempt('https://evil.example')).status).toBe(403);
      const ok = await attempt(edge);
      expect(ok.status).toBe(101);
      expect(JSON.parse(ok.first ?? '{}')).toMatchObject({ type: 'snapshot', desktop: { id: made.data.id } });
    });

    it('keeps the development sign-in to this origin’s own form, and pages behind their own CSP', async () => {
      const post = (headers: Record<string, string>) =>
        fetch(`${edge}/auth/dev`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: 'userId=mallory&role=admin',
        });
      expect((await post({ origin: 'https://evil.example' })).status).toBe(403);
      expect((await post({})).status).toBe(403);
      // Even with the flag set, a request for any name but a loopback one (as a deployed Worker gets) finds no dev sign-in.
      const elsewhere = await asHost('desk.example.com', '/auth/dev', 'userId=mallory&role=admin');
      expect(elsewhere.status).toBe(404);
      expect((await asHost('desk.example.com', '/sign-in')).body).not.toContain('Development sign-in');
      expect((await asHost(new URL(edge).host, '/sign-in')).body).toContain('Development sign-in');
      const page = await fetch(`${edge}/sign-in`);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(page.headers.get('referrer-policy')).toBe('same-origin');
      // The API keeps its own, strictest policy.
      expect((await fetch(`${edge}/api/v1/plans`)).headers.get('content-security-policy')).toBe(
        "default-src 'none'; frame-ancestors 'none'",
      );
      // The script and stylesheet come from the Worker, cached for good under their content hash.
      const html = await page.text();
      const script = /<script type="module" src="([^"]+)"/.exec(html)?.[1] ?? '';
      const asset = await fetch(`${edge}${script}`);
      expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    });
  });
});
