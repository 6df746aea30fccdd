/**
 * share_session: a share key on the owner's live Guacamole session, under the desktop connection's view-only or
 * full-control sharing profile (made on first use, then reused), refused when the owner is not connected, and never
 * for a connection that is not the desktop's own. The profiles go with the connection when the desktop is deleted.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../on-prem-bridge/src/logger';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteDesktop } from '../../on-prem-bridge/src/tasks/delete-desktop';
import { shareSession } from '../../on-prem-bridge/src/tasks/share-session';
import { type Infra, desktopId, makeDeps, makeInfra, makeSpec, recordingContext } from './support/harness';

async function createdDesktop(infra: Infra) {
  const id = desktopId();
  const facts = await createDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
  return { id, connectionId: facts.connectionId ?? '' };
}

const share = (infra: Infra, id: string, connectionId: string, mode: 'view' | 'control') =>
  shareSession(makeDeps(infra), { op: 'share_session', desktopId: id, connectionId, mode }, new AbortController().signal, silentLogger);

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
