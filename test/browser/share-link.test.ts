/**
 * A share link end to end, in chromium, against the whole local stack (edge, bridge,
 * Guacamole and Proxmox simulators): the owner has the desktop open, a guest without an
 * account opens a view-only link and joins the owner's session with their keys ignored,
 * the guest is dropped when the owner disconnects, and the link is refused after it is
 * revoked and after it expires.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { CreatedShareLink } from '../../src/schemas/share-link';
import { checkScreen, devSignIn, hasChromium, launchChromium, newProfile } from './support/browser';

let stack: Stack;
let browser: Browser;

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; data: T; message: string }> {
  const res = await fetch(`${stack.edgeUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { data: T; message: string };
  return { status: res.status, data: json.data, message: json.message };
}

interface SimState {
  activeConnections: { username: string; sharedFrom?: string; readOnly: boolean; input: { accepted: number; ignored: number } }[];
}
const simState = async () => (await (await fetch(`${stack.guacamoleUrl}/__sim/state`)).json()) as SimState;

describe.skipIf(!hasChromium)('a share link in chromium', () => {
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack({ edgeVars: { DEV_SIGN_IN: 'true' } }), launchChromium()]);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('opens read-only for a guest without an account, and is refused after revoke and after expiry', async () => {
    const owner = await stack.token('share-owner');
    const made = await api<{ id: string }>('POST', '/api/v1/desktops', owner, { name: 'Shared desktop', plan: 'BASIC' });
    expect(made.status).toBe(202);
    const id = made.data.id;
    for (let status = ''; status !== 'RUNNING'; ) {
      status = (await api<{ status: string }>('GET', `/api/v1/desktops/${id}/status`, owner)).data.status;
      expect(status).not.toBe('FAILED');
      await new Promise((r) => setTimeout(r, 250));
    }

    // Made early, so it has lapsed by the time it is tried below.
    const expiring = (await api<CreatedShareLink>('POST', `/api/v1/desktops/${id}/share-links`, owner, { mode: 'view', ttlSeconds: 5 }))
      .data;
    const link = await api<CreatedShareLink>('POST', `/api/v1/desktops/${id}/share-links`, owner, { mode: 'view', maxUses: 5 });
    expect(link.status).toBe(201);
    expect(link.message).toMatch(/disconnected when the owner disconnects/);

    // The owner has the desktop open (Guacamole shares a live session).
    const ownerView = await newProfile(browser);
    const connect = await api<{ connectionUrl: string }>('GET', `/api/v1/desktops/${id}/connect`, owner);
    await ownerView.page.goto(connect.data.connectionUrl);
    await ownerView.page.locator('#status[data-state="connected"]').waitFor();

    // A guest, in a browser profile of their own, with no account and no token.
    const guest = await newProfile(browser);
    await guest.page.goto(link.data.url);
    await guest.page.locator('#status[data-state="connected"]').waitFor();
    expect(await guest.page.locator('#connection-name').textContent()).toBe(`desk-${id}`);
    await guest.page.keyboard.press('a');
    await expect
      .poll(async () => (await simState()).activeConnections.filter((a) => a.sharedFrom !== undefined))
      .toEqual([expect.objectContaining({ username: '', readOnly: true, input: { accepted: 0, ignored: 1 } })]);
    expect(guest.problems).toEqual([]);

    // The owner disconnects: Guacamole ends the guest's session with the owner's.
    await ownerView.page.getByRole('button', { name: 'Disconnect' }).click();
    await guest.page.locator('#status[data-state="disconnected"]').waitFor();

    // The owner's Share page lists both links, makes another (its URL shown once), and revokes the first.
    const dashboard = await newProfile(browser);
    await devSignIn(dashboard.page, stack.edgeUrl, 'share-owner', 'user', `/desktops/${id}/share`);
    await dashboard.page.getByRole('heading', { name: '“Shared desktop”', level: 1 }).waitFor();
    expect(await dashboard.page.locator('[data-share-link-id]').count()).toBe(2);
    await dashboard.page.getByLabel('Use it too (full control)').check();
    await dashboard.page.getByRole('button', { name: 'Make link' }).click();
    await dashboard.page.locator('#new-share-link:not([hidden])').waitFor();
    expect(await dashboard.page.locator('#new-share-url').inputValue()).toMatch(/\/api\/v1\/share#/);
    await checkScreen(dashboard.page, 'share-links');
    await dashboard.page
      .locator(`[data-share-link-id="${link.data.id}"]`)
      .getByRole('button', { name: /Revoke/ })
      .click();
    await dashboard.page.locator(`[data-share-link-id="${link.data.id}"] [data-field="share-state"]`, { hasText: 'Revoked' }).waitFor();
    expect(dashboard.problems).toEqual([]);

    // Revoked: the next guest is told so, in words.
    const late = await newProfile(browser);
    await late.page.goto(link.data.url);
    await late.page.locator('body[data-refused="SHARE_LINK_GONE"]').waitFor();
    expect(await late.page.locator('#m').textContent()).toMatch(/revoked by the desktop’s owner/);
    expect(late.page.url()).toBe(`${stack.edgeUrl}/api/v1/share`);

    // Expired: past its five seconds, the same refusal with its own reason.
    while (Date.now() <= Date.parse(expiring.expiresAt)) await new Promise((r) => setTimeout(r, 200));
    const later = await newProfile(browser);
    await later.page.goto(expiring.url);
    await later.page.locator('body[data-refused="SHARE_LINK_GONE"]').waitFor();
    expect(await later.page.locator('#m').textContent()).toMatch(/has expired/);

    await Promise.all([ownerView, guest, late, later, dashboard].map((p) => p.context.close()));
  }, 120_000);
});
