/**
 * share_session: a guest redeemed a share link, so the bridge hands out a Guacamole share key on the owner's live
 * session. Guacamole shares active connections, not connections (ConnectionSharingService): the key is minted on the
 * owner's active connection under one of the connection's sharing profiles, and it dies, with every guest who joined
 * through it, when that connection closes. No live session of the desktop's user: refused, with `owner_not_connected`.
 *
 * The two sharing profiles (view only, with `read-only`; full control) are children of the desktop's connection, made
 * the first time it is shared, and go when the connection is deleted (the JDBC schema cascades).
 */
import type { ShareMode, ShareSessionRequest } from '../../../src/schemas/bridge-protocol';
import { connectionName, guacamoleUsername } from '../desktop-identity';
import type { GuacSharingProfile } from '../drivers/types';
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

export const sharingProfileName = (desktopId: string, mode: ShareMode) => `${connectionName(desktopId)} ${PROFILES[mode].label}`;

/** Both profiles of the connection, made where missing; a concurrent maker's "already exists" is read back. */
async function ensureProfiles(deps: TaskDeps, t: Tools, desktopId: string, connectionId: string): Promise<Record<ShareMode, string>> {
  const find = (profiles: GuacSharingProfile[], mode: ShareMode) =>
    profiles.find((p) => p.primaryConnectionIdentifier === connectionId && p.name === sharingProfileName(desktopId, mode))?.identifier;
  const list = () => t.attempt('list the sharing profiles', () => deps.guacamole.listSharingProfiles());
  let profiles = await list();
  const out: Partial<Record<ShareMode, string>> = {};
  for (const mode of ['view', 'control'] as const) {
    const name = sharingProfileName(desktopId, mode);
    out[mode] =
      find(profiles, mode) ??
      (await t
        .attempt(`create the sharing profile ${name}`, () =>
          deps.guacamole.createSharingProfile({ name, primaryConnectionIdentifier: connectionId, parameters: PROFILES[mode].parameters }),
        )
        .catch(async (err: unknown) => {
          if (!String(describeFailure(err, '')).includes('already exists')) throw err;
          profiles = await list();
          const made = find(profiles, mode);
          if (!made) throw err;
          return made;
        }));
  }
  return out as Record<ShareMode, string>;
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
    const [active, profiles] = await Promise.all([
      t.attempt('list the active connections', () => deps.guacamole.listActiveConnections()),
      ensureProfiles(deps, t, request.desktopId, connectionId),
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
      deps.guacamole.sharingCredentials(live.identifier, profiles[request.mode]),
    );
    return { ok: true, url: deps.guacamole.shareUrl(key) };
  } catch (err) {
    const error = describeFailure(err, `share a session of desktop ${request.desktopId}`);
    log.warn('share_session failed', { error });
    return { ok: false, error };
  }
}
