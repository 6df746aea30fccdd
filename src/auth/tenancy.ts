/**
 * Services (streaming apps with a `service` token) are tenants of their own. A service acts
 * only for the user ids of its namespace: by default those that start with `<service>:`
 * (the service's own JWT sub and a colon), or, per service in SERVICE_NAMESPACES, a prefix
 * of its choosing or an allow-list:
 *
 *   SERVICE_NAMESPACES='{"stream-app":{"prefix":"stream-app/"},"kiosk":{"users":["kiosk-1","kiosk-2"],"maxDesktops":5}}'
 *
 * Its users' desktops are its own: it sees and acts on those it created, they count against
 * its quota (SERVICE_MAX_DESKTOPS, or `maxDesktops` above) besides each user's, their webhook
 * events go to its subscriptions, and their home volumes are its tenant's (the bridge keys
 * a home by tenant and user id), never the home of the same user id elsewhere.
 */
import { z } from 'zod';
import type { Config } from '../env';
import { type Principal, isAdmin, isService } from './jwt';

export const ServiceNamespacesSchema = z.record(
  z.string().min(1),
  z.union([
    z.strictObject({ prefix: z.string().min(1), maxDesktops: z.number().int().min(0).optional() }),
    z.strictObject({ users: z.array(z.string().min(1)).min(1), maxDesktops: z.number().int().min(0).optional() }),
    z.strictObject({ maxDesktops: z.number().int().min(0) }),
  ]),
);
export type ServiceNamespaces = z.infer<typeof ServiceNamespacesSchema>;

/** A principal that acts as a service (an admin token with the service role too acts as an admin). */
export const actsAsService = (p: Principal) => isService(p) && !isAdmin(p);

/** Whether `userId` is in the namespace of service `sub`. */
export function inNamespace(cfg: Config, sub: string, userId: string): boolean {
  const ns = cfg.SERVICE_NAMESPACES[sub];
  if (ns && 'users' in ns) return ns.users.includes(userId);
  const prefix = ns && 'prefix' in ns ? ns.prefix : `${sub}:`;
  return userId.startsWith(prefix) && userId.length > prefix.length;
}

/** How a service's namespace reads in an error message. */
export function describeNamespace(cfg: Config, sub: string): string {
  const ns = cfg.SERVICE_NAMESPACES[sub];
  if (ns && 'users' in ns) return `the ${ns.users.length} user ids SERVICE_NAMESPACES lists for it`;
  return `user ids starting with '${ns && 'prefix' in ns ? ns.prefix : `${sub}:`}'`;
}

/** The most active desktops a service may have across its users. */
export const serviceMaxDesktops = (cfg: Config, sub: string) => cfg.SERVICE_NAMESPACES[sub]?.maxDesktops ?? cfg.SERVICE_MAX_DESKTOPS;

/**
 * The name of a service's own quota account (a UserAccount Durable Object). It holds a
 * space, which no user id can (UserIdSchema), so it is never a user's account.
 */
export const serviceAccountName = (sub: string) => `service ${sub}`;

/** The service that created a desktop (`createdBy` = `service:<sub>`, where sub may hold colons), or null. */
export function creatorService(createdBy: string): string | null {
  const colon = createdBy.indexOf(':');
  return colon > 0 && createdBy.slice(0, colon) === 'service' ? createdBy.slice(colon + 1) : null;
}

/** The tenant a desktop belongs to: the service that created it, or the platform's own users. */
export function tenantOf(createdBy: string): string {
  const service = creatorService(createdBy);
  return service === null ? 'users' : `service:${service}`;
}
