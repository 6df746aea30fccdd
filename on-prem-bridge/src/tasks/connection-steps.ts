/**
 * Guacamole steps shared by the tasks. The connection is found by its name
 * (desk-<desktopId>, unique in ROOT) and the user by its username, so a re-run updates
 * what exists instead of adding a second one.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import { DESKTOP_USER, connectionName, desktopPassword, guacamoleUserPassword, guacamoleUsername } from '../desktop-identity';
import type { TaskDeps } from './context';
import type { Tools } from './tools';

/** Guacamole parameter values are all strings (contracts/guacamole §4). */
export function connectionParameters(
  spec: Pick<DesktopSpec, 'desktopId' | 'protocol'>,
  ip: string,
  bridgeSecret: string,
): Record<string, string> {
  const password = desktopPassword(bridgeSecret, spec.desktopId);
  if (spec.protocol === 'rdp') {
    // Desktop VMs present self-signed certificates; `any` lets guacd negotiate NLA/TLS/RDP (§5).
    return { hostname: ip, port: '3389', username: DESKTOP_USER, password, security: 'any', 'ignore-cert': 'true' };
  }
  // VNC has no default port in guacd, so it must always be given (§5).
  return { hostname: ip, port: '5900', password };
}

/** Creates or updates the desktop's connection to point at `ip`; resolves to its identifier. */
export function ensureConnection(deps: TaskDeps, t: Tools, spec: DesktopSpec, ip: string): Promise<string> {
  const name = connectionName(spec.desktopId);
  const body = { name, protocol: spec.protocol, parameters: connectionParameters(spec, ip, deps.settings.bridgeSecret) };
  const upsert = async (): Promise<string | null> => {
    const existing = await deps.guacamole.findConnectionByName(name);
    if (!existing) return null;
    // PUT replaces the whole object, which is what we want: we own every field of it.
    await deps.guacamole.updateConnection(existing.identifier, body);
    return existing.identifier;
  };
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

/** The per-desktop Guacamole user, with READ on this one connection only. */
export function ensureUserAccess(deps: TaskDeps, t: Tools, desktopId: string, connectionId: string): Promise<void> {
  const username = guacamoleUsername(desktopId);
  return t.attempt(`give the Guacamole user ${username} access to connection ${connectionId}`, async () => {
    await deps.guacamole.ensureUser(username, guacamoleUserPassword(deps.settings.bridgeSecret, desktopId));
    await deps.guacamole.grantConnectionRead(username, connectionId);
  });
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
