/**
 * end_shared_sessions: a share link was revoked, so the guests who came in through it leave now, and cannot come back.
 *
 * What Guacamole offers (guacamole-client, JDBC extension): a share key lives as long as the owner's active connection
 * (ActiveConnectionRecord#invalidate is the only thing that drops keys; no REST call does). Killing a guest's active
 * connection (PATCH …/activeConnections, `remove`) closes its tunnel, but the guest's session still holds the key, and
 * the web client's Reconnect joins again. What does stop the key is deleting the sharing profile it was minted under:
 * a join writes a history row naming that profile, guacamole_connection_history's foreign key refuses a deleted one,
 * and the join fails. Hence one profile per link (./share-session.ts), and this order:
 *  1. delete the link's profile: no key of this link joins from now on;
 *  2. find its guests: an active connection does not name its profile, but its history row does (the row's `uuid` is
 *     the active connection's identifier); after step 1 the row keeps the profile's name, not its id, so match names;
 *  3. kill those active connections.
 * Each step is idempotent, so a revoke retried after a failure finishes the job.
 */
import type { EndSharedSessionsRequest, ShareMode } from '../../../src/schemas/bridge-protocol';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { desktopConnection } from './open-session';
import { sharingProfileName } from './share-session';
import { toolsFor } from './tools';

export type EndSharedSessionsResult = { ok: true; ended: number } | { ok: false; error: string };

const MODES: ShareMode[] = ['view', 'control'];

export async function endSharedSessions(
  deps: TaskDeps,
  request: EndSharedSessionsRequest,
  signal: AbortSignal,
  log: Logger,
): Promise<EndSharedSessionsResult> {
  const t = toolsFor(deps, signal, log);
  try {
    const own = await desktopConnection(t, deps, request);
    if (!own.ok) return own;
    const connectionId = own.connection.identifier;
    // The edge does not say the link's mode; its profile is named after one of the two.
    const names = new Set(MODES.map((mode) => sharingProfileName(request.desktopId, mode, request.linkId)));

    const profiles = await t.attempt('list the sharing profiles', () => deps.guacamole.listSharingProfiles());
    for (const profile of profiles.filter((p) => p.primaryConnectionIdentifier === connectionId && names.has(p.name))) {
      await t.attempt(`delete the sharing profile ${profile.name}`, () => deps.guacamole.deleteSharingProfile(profile.identifier));
    }

    const [active, history] = await Promise.all([
      t.attempt('list the active connections', () => deps.guacamole.listActiveConnections()),
      t.attempt('read the connection’s history', () => deps.guacamole.connectionHistory(connectionId)),
    ]);
    const joined = new Set(history.filter((r) => r.sharingProfileName !== null && names.has(r.sharingProfileName)).map((r) => r.uuid));
    const guests = active.filter((a) => a.connectionIdentifier === connectionId && joined.has(a.identifier)).map((a) => a.identifier);
    if (guests.length > 0) await t.attempt('end the guests’ connections', () => deps.guacamole.killActiveConnections(guests));
    log.info('shared sessions ended', { linkId: request.linkId, ended: guests.length });
    return { ok: true, ended: guests.length };
  } catch (err) {
    const error = describeFailure(err, `end the shared sessions of desktop ${request.desktopId}`);
    log.warn('end_shared_sessions failed', { error });
    return { ok: false, error };
  }
}
