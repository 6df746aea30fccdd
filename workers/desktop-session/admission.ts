/**
 * What a run of a desktop needs before it is launched, taken from where it is kept: a slot
 * in the user's quota (and in the quota of the service that creates for them) from their
 * UserAccount objects, GPU slots on one GPU of the site from its SiteHub, and TURN
 * credentials for a Selkies pod. Whatever was taken comes with its giving back, which the
 * desktop runs when it refuses the run after all, so a refused or failed create leaves
 * no slot or GPU booked.
 */
import type { Bindings, Config } from '../../src/env';
import { ApiError } from '../../src/errors';
import { randomId } from '../../src/lib/ids';
import type { LaunchSpec } from '../../src/lib/launch';
import { fail, ok, type Result } from '../../src/lib/result';
import { podTurn } from '../../src/lib/session-turn';
import type { Desktop } from '../../src/schemas/desktop';
import { isScheduledName } from '../../src/schemas/snapshot';
import type { ClaimedBy } from '../../src/desktop/decide';

/** Whose quotas a create counts against (worked out from the caller by the route). */
export interface CreateAdmission {
  /** Admins acting for themselves have no limit. */
  unlimited: boolean;
  /** A service creating for a user of its namespace: its own account and limit (src/auth/tenancy.ts). */
  service: { account: string; label: string; limit: number } | null;
}

/** What one run (a create or a start) gets for itself. */
export type RunLaunch = Pick<LaunchSpec, 'runId' | 'gpu' | 'turn'>;

export interface Prepared<L> {
  launch: L;
  /** Gives back everything taken, for a run that does not go ahead. Never rejects. */
  giveBack(): Promise<void>;
}

type Taken = (() => Promise<void>)[];

const giveBackAll = (taken: Taken) => async () => {
  await Promise.all(taken.map((g) => g().catch(() => {})));
};

/** Quota slots, then the run's TURN credentials and GPU booking; all or nothing. */
export async function prepareCreate(
  env: Bindings,
  cfg: Config,
  desktop: Desktop,
  launch: LaunchSpec,
  admission: CreateAdmission,
): Promise<Result<Prepared<LaunchSpec>>> {
  const quota = await prepareClaim(env, desktop, admission);
  if (!quota.ok) return quota;
  const run = await prepareRun(env, cfg, desktop, launch.runId ?? randomId('rn'));
  if (!run.ok) {
    await quota.value.giveBack();
    return run;
  }
  return ok({ launch: { ...launch, ...run.value.launch }, giveBack: giveBackAll([quota.value.giveBack, run.value.giveBack]) });
}

/**
 * The quota slots alone: what a claim of a warm pool's member takes for its new owner (the member's run, with its
 * GPU booking, is already under way). `desktop` names the owner the slots are for.
 */
export async function prepareClaim(
  env: Bindings,
  desktop: Pick<Desktop, 'id' | 'userId'>,
  admission: CreateAdmission,
): Promise<Result<Prepared<null>>> {
  const taken: Taken = [];
  const refuse = async <T>(r: Result<T> & { ok: false }) => {
    await giveBackAll(taken)();
    return fail<Prepared<null>>(r.code, r.message);
  };
  // The quota lives in the user's Durable Object: no database round trip on the way to 202.
  const account = env.USER_ACCOUNT.getByName(desktop.userId);
  const reserved = await account.reserve(desktop.userId, desktop.id, admission.unlimited);
  if (!reserved.ok) return refuse(reserved);
  taken.push(() => account.release(desktop.id));
  if (admission.service) {
    const serviceAccount = env.USER_ACCOUNT.getByName(admission.service.account);
    const r = await serviceAccount.reserve(admission.service.label, desktop.id, false, admission.service.limit);
    if (!r.ok) return refuse(r);
    taken.push(() => serviceAccount.release(desktop.id));
  }
  return ok({ launch: null, giveBack: giveBackAll(taken) });
}

/**
 * A claim of a warm pool's member (./desktop-session.ts `claim`): the claimer's quota slots and, for a Selkies
 * member, TURN credentials for the claimer's pod, which replaces the member's (src/desktop/pool-rehome.ts). The GPU
 * booking is the member's run's and stays.
 */
export async function prepareMemberClaim(
  env: Bindings,
  cfg: Config,
  desktop: Desktop | undefined,
  owner: ClaimedBy,
  admission: CreateAdmission,
): Promise<Result<Prepared<Pick<LaunchSpec, 'turn'>>>> {
  const quota = await prepareClaim(env, { id: desktop?.id ?? '', userId: owner.userId }, admission);
  if (!quota.ok || desktop?.backend !== 'selkies') return quota.ok ? ok({ ...quota.value, launch: { turn: null } }) : quota;
  try {
    return ok({ ...quota.value, launch: { turn: await podTurn(cfg, { ...desktop, ...owner }) } });
  } catch (err) {
    await quota.value.giveBack();
    if (err instanceof ApiError) return fail(err.code, err.message);
    throw err;
  }
}

/** A start is a new run: its own id, fresh TURN credentials and, for a GPU desktop, slots booked for it alone. */
export async function prepareStart(env: Bindings, cfg: Config, desktop: Desktop): Promise<Result<Prepared<RunLaunch>>> {
  return prepareRun(env, cfg, desktop, randomId('rn'));
}

async function prepareRun(env: Bindings, cfg: Config, desktop: Desktop, runId: string): Promise<Result<Prepared<RunLaunch>>> {
  const launch: RunLaunch = { runId, gpu: null, turn: null };
  try {
    if (desktop.backend === 'selkies') launch.turn = await podTurn(cfg, desktop);
  } catch (err) {
    if (err instanceof ApiError) return fail(err.code, err.message);
    throw err;
  }
  if (desktop.gpuSlots === 0) return ok({ launch, giveBack: async () => {} });
  const hub = env.SITE_HUB.getByName(desktop.siteId);
  const booked = await hub.bookGpu(desktop.id, runId, desktop.gpuSlots);
  if (!booked.ok) return booked;
  launch.gpu = booked.value;
  return ok({ launch, giveBack: () => hub.releaseGpu(desktop.id, runId).catch(() => {}) });
}

/**
 * A slot in the owner's snapshot quota for a take (held already when the same name is taken again); given back if the
 * take is refused. Scheduled snapshots take none: their schedule's retention bounds them (src/schemas/snapshot.ts).
 */
export async function prepareSnapshot(env: Bindings, cfg: Config, desktop: Desktop, name: string): Promise<Result<Prepared<null>>> {
  if (isScheduledName(name)) return ok({ launch: null, giveBack: async () => {} });
  const account = env.USER_ACCOUNT.getByName(desktop.userId);
  const slot = await account.reserveSnapshot(desktop.id, name, cfg.SNAPSHOT_MAX_PER_USER);
  if (!slot.ok) return fail(slot.code, slot.message);
  const giveBack = async () => {
    if (slot.value.fresh) await account.releaseSnapshot(desktop.id, name).catch(() => {});
  };
  return ok({ launch: null, giveBack });
}

// ---- what callers ask of a desktop (workers/desktop-session/desktop-session.ts) ----

/** A user's action on the desktop; `snapshot` is the one a restore goes back to. */
export type ActRequest = {
  action: 'start' | 'stop' | 'delete' | 'restore' | 'rebuild';
  actor: string;
  requestId?: string;
  snapshot?: string;
};
export type SnapshotSpec = { name: string; withRam: boolean; description?: string };
/** A new desktop, who asks for it, what it launches and whose quota it takes; `pool`: built as an unclaimed member of that warm pool. */
export type CreateRequest = {
  desktop: Desktop;
  actor: string;
  launch: LaunchSpec;
  admission: CreateAdmission;
  requestId?: string;
  pool?: string;
};
/** A user takes a ready member of `poolId`; the admission is theirs, as for a create. */
export type ClaimRequest = { poolId: string; owner: ClaimedBy; actor: string; admission: CreateAdmission; requestId?: string };
