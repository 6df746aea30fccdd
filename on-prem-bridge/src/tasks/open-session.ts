/**
 * open_session: log in to Guacamole as the desktop's own user (READ on its one
 * connection) and hand back a client URL carrying that user's token. The edge never
 * sees a Guacamole credential, and since the bridge checks that the connection is the
 * desktop's own, the edge cannot use this to open someone else's connection either.
 *
 * The user's password is not set again here (a password policy with a history refuses
 * the same password twice). Only when the login says the password is not ours (a user of
 * an older bridge, or changed by an operator) is it set, once; when it says the password
 * expired (a maximum age), the user is made anew, since the bridge has no second password.
 */
import type { OpenSessionRequest } from '../../../src/schemas/bridge-protocol';
import { connectionName, guacamoleUserPassword, guacamoleUsername } from '../desktop-identity';
import { type GuacConnection, InfraError } from '../drivers/types';
import { describeFailure } from '../errors';
import type { Logger } from '../logger';
import type { TaskDeps } from './context';
import { ensureUserAccess } from './connection-steps';
import { type Tools, toolsFor } from './tools';

export type OpenSessionResult = { ok: true; url: string } | { ok: false; error: string };

const refused = (err: unknown, type: string) => err instanceof InfraError && err.system === 'guacamole' && err.message.includes(type);

/**
 * The connection the edge names, if it is the desktop's own (under the desktop's name in ROOT), so the edge cannot open
 * or share anyone else's. Read alone; only the unhappy path lists, to tell a desktop without a connection from a
 * connection that is not its own.
 */
export async function desktopConnection(
  t: Tools,
  deps: TaskDeps,
  request: { desktopId: string; connectionId: string; op: string },
): Promise<{ ok: true; connection: GuacConnection } | { ok: false; error: string }> {
  const name = connectionName(request.desktopId);
  const named = await t.attempt(`look up the connection ${name}`, () => deps.guacamole.getConnection(request.connectionId));
  if (named?.name === name && named.parentIdentifier === 'ROOT') return { ok: true, connection: named };
  const own = await t.attempt(`look up the connection ${name}`, () => deps.guacamole.findConnectionByName(name));
  if (!own) return { ok: false, error: `desktop ${request.desktopId} has no Guacamole connection (is it running?)` };
  t.log.warn(`${request.op} named a connection that is not the desktop’s own`, { asked: request.connectionId, own: own.identifier });
  return { ok: false, error: `connection ${request.connectionId} does not belong to desktop ${request.desktopId}` };
}

export async function openSession(
  deps: TaskDeps,
  request: OpenSessionRequest,
  signal: AbortSignal,
  log: Logger,
): Promise<OpenSessionResult> {
  const t = toolsFor(deps, signal, log);
  const username = guacamoleUsername(request.desktopId);
  const password = guacamoleUserPassword(deps.settings.bridgeSecret, request.desktopId);
  try {
    const own = await desktopConnection(t, deps, request);
    if (!own.ok) return own;
    const connection = own.connection;
    await ensureUserAccess(deps, t, request.desktopId, connection.identifier);
    const login = await t.attempt(`log in to Guacamole as ${username}`, async () => {
      try {
        return await deps.guacamole.loginAs(username, password);
      } catch (err) {
        if (refused(err, 'INVALID_CREDENTIALS')) {
          log.info('the desktop user’s password is not the derived one; setting it once', { username });
          await deps.guacamole.setUserPassword(username, password);
          return deps.guacamole.loginAs(username, password);
        }
        if (refused(err, 'INSUFFICIENT_CREDENTIALS')) {
          log.info('the desktop user’s password expired under the site’s policy; making the user anew', { username });
          await deps.guacamole.deleteUser(username);
          await ensureUserAccess(deps, t, request.desktopId, connection.identifier);
          return deps.guacamole.loginAs(username, password);
        }
        throw err;
      }
    });
    return { ok: true, url: deps.guacamole.clientUrl(connection.identifier, login.dataSource, login.authToken) };
  } catch (err) {
    const error = describeFailure(err, `open a session on desktop ${request.desktopId}`);
    log.warn('open_session failed', { error });
    return { ok: false, error };
  }
}
