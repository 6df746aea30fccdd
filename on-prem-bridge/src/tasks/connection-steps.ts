/**
 * Guacamole steps shared by the tasks. The connection is found by its name
 * (desk-<desktopId>, unique in ROOT) and the user by its username, so a re-run updates
 * what exists instead of adding a second one. The per-desktop user carries this site's
 * and deployment's marks (a JDBC profile attribute) and gets its password once, when it
 * is made: sites run password policies that refuse setting the same password again.
 *
 * `fresh` (a create whose VM was cloned in this run): nothing of the desktop exists in
 * Guacamole yet, so the user and the connection are created straight away. Guacamole
 * refuses a name that is taken (400 "already exists"), and that answer leads back to
 * looking up and updating what exists, so a wrong guess costs a request, never a duplicate.
 * Looking a connection up by name means listing them all (the REST API has no filter by
 * name), which a create of a fresh desktop thereby never does.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { DesktopLogin } from '../config';
import { OWNER_ATTRIBUTE, connectionName, guacamoleUserPassword, guacamoleUsername, ownerAttributeValue } from '../desktop-identity';
import type { TaskDeps } from './context';
import { connectionParameters } from './desktop-login';
import type { Tools } from './tools';

/** Creates or updates the desktop's connection to point at `ip`; resolves to its identifier. */
export function ensureConnection(
  deps: TaskDeps,
  t: Tools,
  spec: DesktopSpec,
  ip: string,
  login: DesktopLogin,
  opts: { fresh?: boolean } = {},
): Promise<string> {
  const name = connectionName(spec.desktopId);
  const body = { name, protocol: spec.protocol, parameters: connectionParameters(spec, ip, deps.settings, login) };
  const upsert = async (): Promise<string | null> => {
    const existing = await deps.guacamole.findConnectionByName(name);
    if (!existing) return null;
    // PUT replaces the whole object, which is what we want: we own every field of it.
    await deps.guacamole.updateConnection(existing.identifier, body);
    return existing.identifier;
  };
  // The driver's create adopts and updates a connection already under this name.
  if (opts.fresh) return t.attempt(`create the connection ${name}`, () => deps.guacamole.createConnection(body));
  return t.attempt(`create or update the connection ${name}`, async () => {
    const updated = await upsert();
    if (updated) return updated;
    try {
      return await deps.guacamole.createConnection(body);
    } catch (err) {
      // A POST that reached Guacamole before a crash or time-out leaves the name taken
      // (400 "already exists"): the connection is ours, so update it instead.
      const raced = await upsert();
      if (raced) return raced;
      throw err;
    }
  });
}

/** The per-desktop Guacamole user with this site's and deployment's marks (made before its connection, so a connection never exists without it). */
export function ensureUser(deps: TaskDeps, t: Tools, desktopId: string, opts: { fresh?: boolean } = {}): Promise<void> {
  const username = guacamoleUsername(desktopId);
  return t.attempt(`make the Guacamole user ${username}`, async () => {
    await deps.guacamole.ensureUser(
      username,
      guacamoleUserPassword(deps.settings.bridgeSecret, desktopId),
      { [OWNER_ATTRIBUTE]: ownerAttributeValue(deps.owner()) },
      { expectNew: opts.fresh === true },
    );
  });
}

/** READ on the desktop's connection for its user (adding a permission it has changes nothing). */
export function grantRead(deps: TaskDeps, t: Tools, desktopId: string, connectionId: string): Promise<void> {
  const username = guacamoleUsername(desktopId);
  return t.attempt(`give the Guacamole user ${username} access to connection ${connectionId}`, () =>
    deps.guacamole.grantConnectionRead(username, connectionId),
  );
}

/** The per-desktop user made or kept, with READ on its connection. */
export async function ensureUserAccess(deps: TaskDeps, t: Tools, desktopId: string, connectionId: string): Promise<void> {
  await ensureUser(deps, t, desktopId);
  await grantRead(deps, t, desktopId, connectionId);
}

/** Deletes the desktop's connection and user; missing ones are fine. */
export function removeConnectionAndUser(deps: TaskDeps, t: Tools, desktopId: string): Promise<void> {
  const name = connectionName(desktopId);
  return t.attempt(`delete the connection ${name} and its user`, async () => {
    const existing = await deps.guacamole.findConnectionByName(name);
    if (existing) await deps.guacamole.deleteConnection(existing.identifier);
    await deps.guacamole.deleteUser(guacamoleUsername(desktopId));
  });
}
