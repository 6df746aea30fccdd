/**
 * share_session: a guest redeemed a share link, so the bridge hands out a Guacamole share key on the owner's live
 * session. Guacamole shares active connections, not connections (ConnectionSharingService): the key is minted on the
 * owner's active connection under one of the connection's sharing profiles, and it dies, with every guest who joined
 * through it, when that connection closes. No live session of the desktop's user: refused, with `owner_not_connected`.
 *
 * Each share link gets a sharing profile of its own (view only, with `read-only`; or full control), a child of the
 * desktop's connection made the first time the link is opened, and gone with the connection (the JDBC schema cascades).
 * One profile per link, not per mode, because that is the only way Guacamole can tell one link's guests from
 * another's: an active connection (APIActiveConnection) does not say which profile it joined with, its history row
 * does, and a profile can be deleted to lock out every key minted under it. Revoking a link needs both
 * (./end-shared-sessions.ts). Without a link id (an older edge) the profile is the connection's one for the mode.
 */
import type { ShareMode, ShareSessionRequest } from '../../../src/schemas/bridge-protocol';
import { connectionName, guacamoleUsername } from '../desktop-identity';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { desktopConnection } from './open-session';
import { type Tools, toolsFor } from './tools';

export type ShareSessionResult = { ok: true; url: string } | { ok: false; error: string; refusal?: 'owner_not_connected' };

/** Parameters guacd applies to whoever joins through a profile (`read-only` exists for VNC and RDP alike). */
const PROFILES: Record<ShareMode, { label: string; parameters: Record<string, string> }> = {
  view: { label: 'view only', parameters: { 'read-only': 'true' } },
  control: { label: 'full control', parameters: {} },
};

export const sharingProfileName = (desktopId: string, mode: ShareMode, linkId?: string) =>
  `${connectionName(desktopId)} ${PROFILES[mode].label}${linkId === undefined ? '' : ` (link ${linkId})`}`;

/** The profile named so on the connection, made if missing; a concurrent maker's "already exists" is read back. */
async function ensureProfile(deps: TaskDeps, t: Tools, connectionId: string, name: string, mode: ShareMode): Promise<string> {
  const find = async () =>
    (await t.attempt('list the sharing profiles', () => deps.guacamole.listSharingProfiles())).find(
      (p) => p.primaryConnectionIdentifier === connectionId && p.name === name,
    )?.identifier;
  const existing = await find();
  if (existing) return existing;
  return t
    .attempt(`create the sharing profile ${name}`, () =>
      deps.guacamole.createSharingProfile({ name, primaryConnectionIdentifier: connectionId, parameters: PROFILES[mode].parameters }),
    )
    .catch(async (err: unknown) => {
      if (!String(describeFailure(err, '')).includes('already exists')) throw err;
      const made = await find();
      if (!made) throw err;
      return made;
    });
}

export async function shareSession(
  deps: TaskDeps,
  request: ShareSessionRequest,
  signal: AbortSignal,
  log: Logger,
): Promise<ShareSessionResult> {
  const t = toolsFor(deps, signal, log);
  try {
    const own = await desktopConnection(t, deps, request);
    if (!own.ok) return own;
    const connectionId = own.connection.identifier;
    const owner = guacamoleUsername(request.desktopId);
    const [active, profile] = await Promise.all([
      t.attempt('list the active connections', () => deps.guacamole.listActiveConnections()),
      ensureProfile(deps, t, connectionId, sharingProfileName(request.desktopId, request.mode, request.linkId), request.mode),
    ]);
    // The owner's newest live connection (guests who joined are listed too, as the anonymous user "").
    const live = active
      .filter((a) => a.connectionIdentifier === connectionId && a.username === owner)
      .sort((a, b) => b.startDate - a.startDate)[0];
    if (!live) {
      return {
        ok: false,
        refusal: 'owner_not_connected',
        error: `nobody has desktop ${request.desktopId} open: Guacamole shares only a live session, so its owner must be connected`,
      };
    }
    const key = await t.attempt('get sharing credentials for the owner’s session', () =>
      deps.guacamole.sharingCredentials(live.identifier, profile),
    );
    return { ok: true, url: deps.guacamole.shareUrl(key) };
  } catch (err) {
    const error = describeFailure(err, `share a session of desktop ${request.desktopId}`);
    log.warn('share_session failed', { error });
    return { ok: false, error };
  }
}
