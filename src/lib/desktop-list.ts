/**
 * Desktop lists. A user's list, a service's, and any list an admin narrows to one user
 * are read from the owner's index (DesktopIndex) and the desktops' own objects: they show
 * every desktop in the status a status call shows, at once, and work while Postgres is
 * down. The fleet-wide list of an admin is read from the Postgres copy, which each desktop
 * writes a moment after it changes; its answer says so (`consistency`, `asOf`).
 */
import { isAdmin, isService, type Principal } from '../auth/jwt';
import { withDb } from '../db/client';
import { listDesktops } from '../db/queries';
import type { Bindings, Config } from '../env';
import { ApiError } from '../errors';
import type { Desktop, DesktopStatus, Plan } from '../schemas/desktop';
import { serviceIndexName, userIndexName } from './owner-index';
import { unwrap } from './result';

export interface ListRequest {
  userId?: string;
  status?: DesktopStatus;
  plan?: Plan;
  page: number;
  pageSize: number;
}

export interface DesktopPage {
  items: Desktop[];
  page: number;
  pageSize: number;
  total: number;
  totalPages: number;
  /** `current`: as status calls show it now; `eventual`: the Postgres copy as of `asOf`. */
  consistency: 'current' | 'eventual';
  asOf: string;
}

/** Which index answers this principal's list, or null for the fleet-wide copy in Postgres. */
function indexFor(p: Principal, userId: string | undefined): string | null {
  if (isAdmin(p)) return userId === undefined ? null : userIndexName(userId);
  if (isService(p)) return serviceIndexName(p.sub);
  return userIndexName(p.sub);
}

export async function listDesktopsFor(env: Bindings, cfg: Config, p: Principal, q: ListRequest): Promise<DesktopPage> {
  if (q.userId && q.userId !== p.sub && !isAdmin(p) && !isService(p)) {
    throw new ApiError('FORBIDDEN', "Only admins can list other users' desktops");
  }
  const offset = (q.page - 1) * q.pageSize;
  const pageOf = (items: Desktop[], total: number, consistency: DesktopPage['consistency'], asOf: string): DesktopPage => ({
    items,
    page: q.page,
    pageSize: q.pageSize,
    total,
    totalPages: Math.ceil(total / q.pageSize),
    consistency,
    asOf,
  });

  const index = indexFor(p, q.userId);
  if (index === null) {
    const asOf = new Date().toISOString();
    const filter = { userId: q.userId, status: q.status, plan: q.plan, includeDeleted: false };
    const { items, total } = await withDb(cfg, (db) => listDesktops(db, filter, { offset, limit: q.pageSize }));
    return pageOf(items, total, 'eventual', asOf);
  }

  const query = { userId: isService(p) && !isAdmin(p) ? q.userId : undefined, status: q.status, plan: q.plan, includeDeleted: false };
  const { ids, total } = unwrap(await env.DESKTOP_INDEX.getByName(index).list({ ...query, offset, limit: q.pageSize }));
  const asOf = new Date().toISOString();
  // The page's desktops from their own objects: every field current, not only the status.
  const found = await Promise.all(ids.map((id) => env.DESKTOP_SESSION.getByName(id).get()));
  return pageOf(
    found.filter((d): d is Desktop => d !== null),
    total,
    'current',
    asOf,
  );
}
