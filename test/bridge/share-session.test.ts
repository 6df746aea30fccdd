/**
 * share_session: a share key on the owner's live Guacamole session, under the link's own sharing profile (view only or
 * full control; made on the link's first use, then reused), refused when the owner is not connected, and never for a
 * connection that is not the desktop's own. The profiles go with the connection when the desktop is deleted.
 * end_shared_sessions: a revoked link's profile is deleted and its guests' live connections, found through the
 * connection's history, are ended; nobody else's.
 */
import { describe, expect, it } from 'vitest';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { silentLogger } from '../../on-prem-bridge/src/logger';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteDesktop } from '../../on-prem-bridge/src/tasks/delete-desktop';
import { endSharedSessions } from '../../on-prem-bridge/src/tasks/end-shared-sessions';
import { shareSession } from '../../on-prem-bridge/src/tasks/share-session';
import { type Infra, desktopId, makeDeps, makeInfra, makeSpec, recordingContext } from './support/harness';

async function createdDesktop(infra: Infra) {
  const id = desktopId();
  const facts = await createDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
  return { id, connectionId: facts.connectionId ?? '' };
}

const share = (infra: Infra, id: string, connectionId: string, mode: 'view' | 'control', linkId?: string) =>
  shareSession(
    makeDeps(infra),
    { op: 'share_session', desktopId: id, connectionId, mode, ...(linkId ? { linkId } : {}) },
    new AbortController().signal,
    silentLogger,
  );

const endShared = (infra: Infra, id: string, connectionId: string, linkId: string) =>
  endSharedSessions(
    makeDeps(infra),
    { op: 'end_shared_sessions', desktopId: id, connectionId, linkId },
    new AbortController().signal,
    silentLogger,
  );

describe('share_session', () => {
  it('refuses while the owner has no live session, saying why', async () => {
    const infra = makeInfra();
    const { id, connectionId } = await createdDesktop(infra);
    // Someone who joined through an earlier key is listed as the anonymous user; that is not the owner.
    infra.guacamole.activeConnections.push({ identifier: 'guest-1', connectionIdentifier: connectionId, username: '', startDate: 1 });
    const result = await share(infra, id, connectionId, 'view');
    expect(result).toMatchObject({ ok: false, refusal: 'owner_not_connected' });
    expect(result.ok ? '' : result.error).toContain('its owner must be connected');
    expect(infra.guacamole.callsOf('sharingCredentials')).toEqual([]);
  });

  it('mints the key on the owner’s newest session under the profile of the mode, making both profiles once', async () => {
    const infra = makeInfra();
    const { id, connectionId } = await createdDesktop(infra);
    const owner = `desk-${id}`;
    infra.guacamole.activeConnections.push(
      { identifier: 'old', connectionIdentifier: connectionId, username: owner, startDate: 1 },
      { identifier: 'new', connectionIdentifier: connectionId, username: owner, startDate: 2 },
    );

    const view = await share(infra, id, connectionId, 'view');
    const control = await share(infra, id, connectionId, 'control');

    const profiles = [...infra.guacamole.sharingProfiles.values()];
    expect(profiles.map((p) => [p.name, p.primaryConnectionIdentifier, p.parameters])).toEqual([
      [`desk-${id} view only`, connectionId, { 'read-only': 'true' }],
      [`desk-${id} full control`, connectionId, {}],
    ]);
    expect(infra.guacamole.callsOf('createSharingProfile')).toHaveLength(2);
    const [viewProfile, controlProfile] = profiles.map((p) => p.identifier);
    expect(view).toEqual({ ok: true, url: `https://desk.example.test/guacamole/#/?key=KEY-new-${viewProfile}` });
    expect(control).toEqual({ ok: true, url: `https://desk.example.test/guacamole/#/?key=KEY-new-${controlProfile}` });
  });

  it('gives each link a sharing profile of its own, made on its first use and reused after', async () => {
    const infra = makeInfra();
    const { id, connectionId } = await createdDesktop(infra);
    infra.guacamole.activeConnections.push({
      identifier: 'live',
      connectionIdentifier: connectionId,
      username: `desk-${id}`,
      startDate: 1,
    });

    expect((await share(infra, id, connectionId, 'view', 'slA')).ok).toBe(true);
    expect((await share(infra, id, connectionId, 'view', 'slA')).ok).toBe(true);
    expect((await share(infra, id, connectionId, 'control', 'slB')).ok).toBe(true);

    expect([...infra.guacamole.sharingProfiles.values()].map((p) => [p.name, p.primaryConnectionIdentifier, p.parameters])).toEqual([
      [`desk-${id} view only (link slA)`, connectionId, { 'read-only': 'true' }],
      [`desk-${id} full control (link slB)`, connectionId, {}],
    ]);
  });

  it('refuses a connection that is not the desktop’s own', async () => {
    const infra = makeInfra();
    const a = await createdDesktop(infra);
    const b = await createdDesktop(infra);
    infra.guacamole.activeConnections.push({
      identifier: 'x',
      connectionIdentifier: b.connectionId,
      username: `desk-${a.id}`,
      startDate: 1,
    });
    const result = await share(infra, a.id, b.connectionId, 'control');
    expect(result).toEqual({ ok: false, error: `connection ${b.connectionId} does not belong to desktop ${a.id}` });
    expect(infra.guacamole.sharingProfiles.size).toBe(0);
  });

  it('leaves no sharing profile behind once the desktop is deleted', async () => {
    const infra = makeInfra();
    const { id, connectionId } = await createdDesktop(infra);
    infra.guacamole.activeConnections.push({
      identifier: 'live',
      connectionIdentifier: connectionId,
      username: `desk-${id}`,
      startDate: 1,
    });
    expect((await share(infra, id, connectionId, 'view')).ok).toBe(true);
    await deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    expect(infra.guacamole.sharingProfiles.size).toBe(0);
  });
});

describe('end_shared_sessions', () => {
  /** The owner live, and guests who joined under link slA (two) and link slB (one), as Guacamole's history records them. */
  async function sharedDesktop() {
    const infra = makeInfra();
    const { id, connectionId } = await createdDesktop(infra);
    const g = infra.guacamole;
    g.activeConnections.push({ identifier: 'owner', connectionIdentifier: connectionId, username: `desk-${id}`, startDate: 1 });
    for (const linkId of ['slA', 'slB'])
      expect((await share(infra, id, connectionId, linkId === 'slA' ? 'view' : 'control', linkId)).ok).toBe(true);
    const profileOf = (linkId: string) => [...g.sharingProfiles.values()].find((p) => p.name.endsWith(`(link ${linkId})`))!;
    const joined = (uuid: string, linkId: string, active: boolean, startDate: number) => {
      if (active) g.activeConnections.push({ identifier: uuid, connectionIdentifier: connectionId, username: '', startDate });
      const profile = profileOf(linkId);
      const endDate = active ? null : startDate + 1;
      return { uuid, username: '', sharingProfileIdentifier: profile.identifier, sharingProfileName: profile.name, startDate, endDate };
    };
    g.history.set(connectionId, [
      joined('a2', 'slA', true, 5),
      joined('b1', 'slB', true, 4),
      joined('a1', 'slA', true, 3),
      joined('a0', 'slA', false, 2),
      { uuid: 'owner', username: `desk-${id}`, sharingProfileIdentifier: null, sharingProfileName: null, startDate: 1, endDate: null },
    ]);
    return { infra, id, connectionId, profileOf };
  }

  it('ends the live connections of that link’s guests only, and deletes its profile so its keys cannot join again', async () => {
    const { infra, id, connectionId, profileOf } = await sharedDesktop();
    const slA = profileOf('slA').identifier;
    expect(await endShared(infra, id, connectionId, 'slA')).toEqual({ ok: true, ended: 2 });
    expect(infra.guacamole.callsOf('killActiveConnections')).toEqual([[['a2', 'a1']]]);
    expect(infra.guacamole.activeConnections.map((a) => a.identifier)).toEqual(['owner', 'b1']);
    expect(infra.guacamole.sharingProfiles.has(slA)).toBe(false);
    expect(profileOf('slB')).toBeDefined();
  });

  it('finds the guests by the profile’s name once the profile is gone, so a retried revoke finishes the job', async () => {
    const { infra, id, connectionId } = await sharedDesktop();
    infra.guacamole.failNext('killActiveConnections', new InfraError('guacamole PATCH → 400', 'guacamole', 400, false));
    const failed = await endShared(infra, id, connectionId, 'slA');
    expect(failed.ok).toBe(false);
    // The profile went first: the history rows now name it without its id.
    expect(infra.guacamole.history.get(connectionId)?.filter((r) => r.sharingProfileIdentifier === null && r.username === '')).toHaveLength(
      3,
    );

    expect(await endShared(infra, id, connectionId, 'slA')).toEqual({ ok: true, ended: 2 });
    expect(await endShared(infra, id, connectionId, 'slA')).toEqual({ ok: true, ended: 0 });
  });

  it('ends nobody for a link never opened, and refuses a connection that is not the desktop’s own', async () => {
    const { infra, id, connectionId } = await sharedDesktop();
    expect(await endShared(infra, id, connectionId, 'slNeverOpened')).toEqual({ ok: true, ended: 0 });
    expect(infra.guacamole.callsOf('killActiveConnections')).toEqual([]);
    const other = await createdDesktop(infra);
    expect(await endShared(infra, other.id, connectionId, 'slA')).toEqual({
      ok: false,
      error: `connection ${connectionId} does not belong to desktop ${other.id}`,
    });
    expect(infra.guacamole.activeConnections).toHaveLength(4);
  });
});
