/**
 * Share links through the API: the owner makes, lists and revokes them; a guest without an
 * account opens one (the bridge mints a share key on the owner's live session), and is
 * refused, each time with its own code and words, after revoke, after expiry, once used up,
 * while the desktop is not running, while the owner is not connected, and for Selkies desktops.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { and, eq } from 'drizzle-orm';
import { withDb } from '../../src/db/client';
import { auditLog } from '../../src/db/schema';
import { config } from '../../src/env';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Bindings } from '../../src/env';
import type { CreatedShareLink, RevokedShareLink, ShareLink } from '../../src/schemas/share-link';
import { seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;
const SITE = `share-${crypto.randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});
afterAll(async () => {
  await bridge.close();
});

async function makeLink(desktopId: string, owner: string, body: Record<string, unknown> = { mode: 'view' }) {
  const res = await api<CreatedShareLink>('POST', `/api/v1/desktops/${desktopId}/share-links`, { token: await token(owner), body });
  expect(res.status, res.text).toBe(201);
  return res.body!.data;
}

const tokenOf = (link: CreatedShareLink) => decodeURIComponent(new URL(link.url).hash.slice(1));

/** The guest's POST, answered by the fake bridge as the real one would (`answer`), or not asked at all. */
async function redeem(
  link: CreatedShareLink,
  answer?: { ok: true; url: string } | { ok: false; refusal?: 'owner_not_connected'; error: string },
) {
  const opening = api<{ url: string; mode: string }>('POST', '/api/v1/share', { body: { token: tokenOf(link) } });
  if (!answer) return opening;
  const req = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'share_session' && !answered.has(f.requestId));
  if (req.type !== 'request') throw new Error('unreachable');
  answered.add(req.requestId);
  expect(req.request).toMatchObject({ op: 'share_session', desktopId: link.desktopId, mode: link.mode });
  bridge.send({ type: 'response', requestId: req.requestId, ...answer });
  return opening;
}
const answered = new Set<string>();
const KEY_URL = { ok: true as const, url: 'http://guac.test/guacamole/#/?key=SHAREKEY' };

/** The owner's DELETE, with the fake bridge answering the end_shared_sessions it is asked (as the real one would). */
async function revoke(owner: string, link: CreatedShareLink, answer: { ok: true; ended: number } | { ok: false; error: string }) {
  const revoking = api<RevokedShareLink>('DELETE', `/api/v1/desktops/${link.desktopId}/share-links/${link.id}`, {
    token: await token(owner),
  });
  const req = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'end_shared_sessions' && !answered.has(f.requestId));
  if (req.type !== 'request') throw new Error('unreachable');
  answered.add(req.requestId);
  bridge.send({ type: 'response', requestId: req.requestId, ...answer });
  return { res: await revoking, asked: req.request };
}

describe('share links', () => {
  it('lets the owner make a view link that a guest without an account opens, once, then lists it used up', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'view', ttlSeconds: 600, maxUses: 1 });
    expect(link).toMatchObject({ desktopId: d.id, mode: 'view', state: 'active', maxUses: 1, uses: 0, createdBy: `user:${owner}` });
    expect(new URL(link.url).pathname).toBe('/api/v1/share');

    const page = await api('GET', '/api/v1/share');
    expect(page.status).toBe(200);
    expect(page.text).toContain('disconnected when the owner disconnects');

    const opened = await redeem(link, KEY_URL);
    expect(opened.status, opened.text).toBe(200);
    expect(opened.body?.data).toMatchObject({ url: KEY_URL.url, mode: 'view' });
    expect(opened.body?.message).toMatch(/View only/);

    const again = await redeem(link);
    expect(again.status).toBe(410);
    expect(again.body?.error?.code).toBe('SHARE_LINK_GONE');
    expect(again.body?.message).toMatch(/used as many times/);

    const listed = await api<ShareLink[]>('GET', `/api/v1/desktops/${d.id}/share-links`, { token: await token(owner) });
    expect(listed.body?.data).toEqual([expect.objectContaining({ id: link.id, state: 'used_up', uses: 1 })]);
    expect(JSON.stringify(listed.body)).not.toContain(tokenOf(link).split('.')[2]);
  });

  it('refuses a revoked link, an expired one, and a wrong secret', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const revoked = await makeLink(d.id, owner, { mode: 'control', maxUses: 5 });
    const del = await api<ShareLink>('DELETE', `/api/v1/desktops/${d.id}/share-links/${revoked.id}`, { token: await token(owner) });
    expect(del.body?.data).toMatchObject({ state: 'revoked', revokedBy: `user:${owner}` });
    const afterRevoke = await redeem(revoked);
    expect(afterRevoke.status).toBe(410);
    expect(afterRevoke.body?.message).toMatch(/revoked by the desktop’s owner/);

    const expiring = await makeLink(d.id, owner, { mode: 'view', ttlSeconds: 60 });
    // Its expiry moved into the past, as a minute passing would.
    await runInDurableObject((env as Bindings).DESKTOP_SESSION.getByName(d.id), async (_obj, state) => {
      state.storage.sql.exec('UPDATE share_links SET expires_at = ? WHERE id = ?', Date.now() - 1, expiring.id);
    });
    const afterExpiry = await redeem(expiring);
    expect(afterExpiry.status).toBe(410);
    expect(afterExpiry.body?.message).toMatch(/has expired/);

    const good = await makeLink(d.id, owner);
    const forged = tokenOf(good).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const wrong = await api('POST', '/api/v1/share', { body: { token: forged } });
    expect(wrong.status).toBe(404);
  });

  it('disconnects the guests who came in through a revoked link, through the site’s bridge, and says how many', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'control', maxUses: 3 });
    expect((await redeem(link, KEY_URL)).status).toBe(200);
    const { res, asked } = await revoke(owner, link, { ok: true, ended: 2 });
    expect(asked).toEqual({ op: 'end_shared_sessions', desktopId: d.id, connectionId: d.connectionId, linkId: link.id });
    expect(res.status).toBe(200);
    expect(res.body?.data).toMatchObject({ id: link.id, state: 'revoked', guestsEnded: 2 });
    expect(res.body?.message).toMatch(/revoked: it opens no more\. 2 guests who came in through it disconnected/);
    // The guests' share keys were minted under the link's own sharing profile, which is what lets the bridge find them.
    const shareAsk = bridge.received.find((f) => f.type === 'request' && f.request.op === 'share_session' && f.request.desktopId === d.id);
    expect(shareAsk?.type === 'request' && shareAsk.request).toMatchObject({ linkId: link.id });
  });

  it('refuses a guest whose link was revoked while the bridge minted the key, and has the bridge lock that key out', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'view', maxUses: 2 });
    const opening = api('POST', '/api/v1/share', { body: { token: tokenOf(link) } });
    const minting = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'share_session' && !answered.has(f.requestId));
    if (minting.type !== 'request') throw new Error('unreachable');
    answered.add(minting.requestId);
    // The owner revokes before the bridge has answered; nobody is in yet.
    expect((await revoke(owner, link, { ok: true, ended: 0 })).res.body?.data).toMatchObject({ state: 'revoked', guestsEnded: 0 });
    bridge.send({ type: 'response', requestId: minting.requestId, ...KEY_URL });
    const again = await bridge.waitFor((f) => f.type === 'request' && f.request.op === 'end_shared_sessions' && !answered.has(f.requestId));
    if (again.type !== 'request') throw new Error('unreachable');
    answered.add(again.requestId);
    expect(again.request).toMatchObject({ linkId: link.id });
    bridge.send({ type: 'response', requestId: again.requestId, ok: true, ended: 0 });
    const refused = await opening;
    expect(refused.status).toBe(410);
    expect(refused.body?.error?.code).toBe('SHARE_LINK_GONE');
    expect(JSON.stringify(refused.body)).not.toContain('SHAREKEY');
  });

  it('does not ask the bridge about a link nobody opened', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner);
    const res = await api<RevokedShareLink>('DELETE', `/api/v1/desktops/${d.id}/share-links/${link.id}`, { token: await token(owner) });
    expect(res.body?.data).toMatchObject({ state: 'revoked', guestsEnded: 0 });
    expect(
      bridge.received.some((f) => f.type === 'request' && f.request.op === 'end_shared_sessions' && f.request.linkId === link.id),
    ).toBe(false);
  });

  it('revokes even when the guests cannot be disconnected now, and says they stay until the owner disconnects', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'view', maxUses: 2 });
    expect((await redeem(link, KEY_URL)).status).toBe(200);
    const failed = await revoke(owner, link, { ok: false, error: 'guacamole GET /activeConnections → 503' });
    expect(failed.res.status).toBe(200);
    expect(failed.res.body?.data).toMatchObject({ state: 'revoked', guestsEnded: null });
    expect(failed.res.body?.message).toMatch(
      /could not be disconnected now .*they stay until the owner disconnects\. Revoke it again to retry/,
    );
    expect((await redeem(link)).status).toBe(410);

    // With the site's bridge offline altogether, the same: the link is revoked at once, the guests stay for now.
    const offlineSite = `share-off-${crypto.randomUUID().slice(0, 8)}`;
    const offline = await FakeBridge.connect(offlineSite, await registerSite(offlineSite));
    const there = await offline.runningDesktop(owner);
    const other = await makeLink(there.id, owner, { mode: 'view', maxUses: 2 });
    const opening = api('POST', '/api/v1/share', { body: { token: tokenOf(other) } });
    const ask = await offline.waitFor((f) => f.type === 'request' && f.request.op === 'share_session');
    if (ask.type !== 'request') throw new Error('unreachable');
    offline.send({ type: 'response', requestId: ask.requestId, ...KEY_URL });
    expect((await opening).status).toBe(200);
    await offline.close();
    const res = await api<RevokedShareLink>('DELETE', `/api/v1/desktops/${there.id}/share-links/${other.id}`, {
      token: await token(owner),
    });
    expect(res.status).toBe(200);
    expect(res.body?.data).toMatchObject({ state: 'revoked', guestsEnded: null });
    expect(res.body?.message).toMatch(/is offline.*they stay until the owner disconnects/);
  });

  it('says so when the owner is not connected, and does not spend a use on it', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'view', maxUses: 1 });
    const refused = await redeem(link, { ok: false, refusal: 'owner_not_connected', error: 'nobody has it open' });
    expect(refused.status).toBe(409);
    expect(refused.body?.error?.code).toBe('OWNER_NOT_CONNECTED');
    expect(refused.body?.message).toMatch(/works only while the owner has the desktop open/);
    const later = await redeem(link, KEY_URL);
    expect(later.status).toBe(200);
  });

  it('refuses while the desktop is not running, and refuses to share a Selkies desktop', async () => {
    const owner = uniqueUser();
    const pending = await seedDesktop(SITE, owner);
    const link = await makeLink(pending.id, owner);
    const notYet = await redeem(link);
    expect(notYet.status).toBe(409);
    expect(notYet.body?.error?.code).toBe('INVALID_STATE');

    const gpu = await seedDesktop(SITE, owner, { backend: 'selkies', protocol: 'webrtc' } as never);
    const res = await api('POST', `/api/v1/desktops/${gpu.id}/share-links`, { token: await token(owner), body: { mode: 'view' } });
    expect(res.status).toBe(409);
    expect(res.body?.error?.code).toBe('SHARING_UNSUPPORTED');
  });

  it('validates the expiry and uses, and keeps links to the desktop’s owner', async () => {
    const owner = uniqueUser();
    const d = await seedDesktop(SITE, owner);
    const mine = await token(owner);
    for (const body of [
      { mode: 'edit' },
      { mode: 'view', ttlSeconds: 8 * 24 * 3600 },
      { mode: 'view', maxUses: 0 },
      { mode: 'view', ttlSeconds: 60, expiresAt: '2030-01-01T00:00:00Z' },
    ]) {
      const res = await api('POST', `/api/v1/desktops/${d.id}/share-links`, { token: mine, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const other = await api('GET', `/api/v1/desktops/${d.id}/share-links`, { token: await token(uniqueUser()) });
    expect(other.status).toBe(404);
  });

  it('audits making, opening (by an anonymous guest, refused or not) and revoking a link', async () => {
    const owner = uniqueUser();
    const d = await bridge.runningDesktop(owner);
    const link = await makeLink(d.id, owner, { mode: 'view', maxUses: 3 });
    expect((await redeem(link, KEY_URL)).status).toBe(200);
    expect((await revoke(owner, link, { ok: true, ended: 1 })).res.status).toBe(200);
    expect((await redeem(link)).status).toBe(410);

    const rows = await vi.waitFor(
      async () => {
        const found = await withDb(config(env as Bindings), (db) =>
          db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.target, d.id))),
        );
        expect(found.filter((r) => r.action.startsWith('share_link.'))).toHaveLength(4);
        return found.filter((r) => r.action.startsWith('share_link.'));
      },
      { timeout: 10_000, interval: 100 },
    );
    const summary = rows
      .map((r) => [r.action, r.actor, r.outcome, (JSON.parse(r.details ?? 'null') as { linkId?: string } | null)?.linkId])
      .sort((a, b) => String(a).localeCompare(String(b)));
    expect(JSON.parse(rows.find((r) => r.action === 'share_link.revoke')?.details ?? 'null')).toMatchObject({ guestsEnded: 1 });
    expect(summary).toEqual(
      [
        ['share_link.create', owner, '201', link.id],
        ['share_link.redeem', 'anonymous', '200', link.id],
        ['share_link.redeem', 'anonymous', '410', link.id],
        ['share_link.revoke', owner, '200', link.id],
      ].sort((a, b) => String(a).localeCompare(String(b))),
    );
  });
});
