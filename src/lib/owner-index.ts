/**
 * Owner indexes (the DesktopIndex Durable Object, one per owner): which desktops a user
 * owns and a service created, with the status each one shows now. A user's and a
 * service's desktop lists are read from them, so a list agrees with GET /{id}/status at
 * once; fleet-wide lists (admins) come from the Postgres copy instead.
 */
import type { Desktop, DesktopStatus, Plan } from '../schemas/desktop';
import { isPoolMember } from '../schemas/pool';

/** What an index keeps of a desktop: enough to filter, order and count a list. */
export interface IndexEntry {
  id: string;
  userId: string;
  plan: Plan;
  status: DesktopStatus;
  createdAt: string;
  /** The desktop's revision when it sent this entry: an index keeps the highest it has seen. */
  revision: number;
}

export interface IndexQuery {
  userId?: string;
  status?: DesktopStatus;
  plan?: Plan;
  /** Without a status filter, DELETED desktops are left out unless this is set. */
  includeDeleted: boolean;
  offset: number;
  limit: number;
}

/** A page of ids, newest first, and how many match in all. */
export interface IndexPage {
  ids: string[];
  total: number;
}

export const userIndexName = (userId: string) => `user:${userId}`;
/** A service's index is named like the `createdBy` of its desktops. */
export const serviceIndexName = (serviceSub: string) => `service:${serviceSub}`;

/** The indexes a desktop is listed in: its user's, and the service's that created it; none for an unclaimed pool member. */
export function indexNamesOf(d: Pick<Desktop, 'userId' | 'createdBy'>): string[] {
  if (isPoolMember(d)) return [];
  const names = [userIndexName(d.userId)];
  if (d.createdBy.startsWith('service:')) names.push(d.createdBy);
  return names;
}

/** Whose desktops an index lists, from its name: `userId` or `createdBy`. */
export function ownerOfIndex(name: string): { userId: string } | { createdBy: string } | null {
  if (name.startsWith('user:')) return { userId: name.slice('user:'.length) };
  if (name.startsWith('service:')) return { createdBy: name };
  return null;
}
