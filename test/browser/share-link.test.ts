/**
 * A share link end to end, in chromium, against the whole local stack (edge, bridge,
 * Guacamole and Proxmox simulators): the owner has the desktop open, a guest without an
 * account opens a view-only link and joins the owner's session with their keys ignored,
 * the owner revokes that link and its guest is out at once (and cannot reconnect) while the
 * owner and another link's guest stay, that guest is dropped when the owner disconnects,
 * and the link is refused after it is revoked and after it expires.
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

  it('opens read-only for a guest without an account, drops that guest when revoked, and is refused after revoke and after expiry', async () => {
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

    // A second guest, on a full-control link of their own.
    const helperLink = await api<CreatedShareLink>('POST', `/api/v1/desktops/${id}/share-links`, owner, { mode: 'control', maxUses: 1 });
    const helper = await newProfile(browser);
    await helper.page.goto(helperLink.data.url);
    await helper.page.locator('#status[data-state="connected"]').waitFor();
    const guests = async () => (await simState()).activeConnections.filter((a) => a.sharedFrom !== undefined).map((a) => a.readOnly);
    await expect.poll(guests).toEqual(expect.arrayContaining([true, false]));

    // The owner's Share page lists the three links, makes another (its URL shown once), and revokes the view link
    // while everyone is connected.
    const dashboard = await newProfile(browser);
    await devSignIn(dashboard.page, stack.edgeUrl, 'share-owner', 'user', `/desktops/${id}/share`);
    await dashboard.page.getByRole('heading', { name: '“Shared desktop”', level: 1 }).waitFor();
    expect(await dashboard.page.locator('[data-share-link-id]').count()).toBe(3);
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
    await dashboard.page.locator('#announcer', { hasText: '1 guest who came in through it was disconnected' }).waitFor();
    expect(dashboard.problems).toEqual([]);

    // Its guest is out at once; the owner and the other link's guest are not.
    await guest.page.locator('#status[data-state="disconnected"]').waitFor();
    await expect.poll(guests).toEqual([false]);
    expect(await ownerView.page.locator('#status').getAttribute('data-state')).toBe('connected');
    expect(await helper.page.locator('#status').getAttribute('data-state')).toBe('connected');
    // The guest's Guacamole session still holds the share key, which lives as long as the owner's connection; its
    // Reconnect fails all the same, for the key's sharing profile went with the revoke.
    await guest.page.reload();
    await guest.page.locator('#status[data-state="error"]').waitFor();
    expect(await guests()).toEqual([false]);

    // The owner disconnects: Guacamole ends the other guest's session with the owner's.
    await ownerView.page.getByRole('button', { name: 'Disconnect' }).click();
    await helper.page.locator('#status[data-state="disconnected"]').waitFor();

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

    await Promise.all([ownerView, guest, helper, late, later, dashboard].map((p) => p.context.close()));
  }, 120_000);
});
