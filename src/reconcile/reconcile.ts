/**
 * Reconciliation: compare what the edge believes with what each site really has.
 *
 * - A VM, connection or Selkies session of a desktop that neither its Durable Object nor
 *   Postgres knows (or that is DELETED, or of another site) is an orphan, but only when it
 *   carries this site's and this deployment's marks (the bridge reports `owned`): two sites,
 *   staging and production, or a deployment that lost its records never remove each
 *   other's desktops. An orphan is reported at once and removed with the bridge's
 *   idempotent delete task once it has been seen for longer than RECONCILE_GRACE_SECONDS,
 *   at most RECONCILE_MAX_REMOVALS desktops per pass; more than that waits, listed in the
 *   report, until an admin confirms that report (POST /api/v1/admin/reconcile/{id}/confirm).
 * - A GPU pod of an orphan keeps its slots booked until it is gone.
 * - A settled RUNNING or STOPPED desktop whose VM is gone becomes FAILED with the
 *   reason; a RUNNING one whose VM was powered off outside the control plane becomes
 *   STOPPED. The desktop's own object makes that call (it knows whether work is in
 *   flight), from the inventory the bridge took.
 *
 * Runs from the cron trigger and from POST /api/v1/admin/reconcile.
 */
import { withDb } from '../db/client';
import { listSites, liveDesktopIds, settledDesktopIds } from '../db/queries';
import { type Bindings, config } from '../env';
import { randomId } from '../lib/ids';
import type { ReconcileReport, Removal } from '../schemas/reconcile';

export async function reconcileSite(env: Bindings, siteId: string, now = Date.now()): Promise<ReconcileReport> {
  const cfg = config(env);
  const hub = env.SITE_HUB.getByName(siteId);
  const report: ReconcileReport = {
    id: randomId('rr'),
    siteId,
    at: new Date(now).toISOString(),
    orphans: [],
    foreign: 0,
    corrected: [],
    checked: 0,
  };
  const taken = await hub.inventory();
  if (!taken.ok) {
    report.skipped = taken.message;
    await hub.saveReconcileReport(report);
    return report;
  }
  const inv = taken.value;
  const sessions = inv.sessions ?? [];
  report.inventory = { vms: inv.vms.length, connections: inv.connections.length, sessions: sessions.length, takenAt: inv.takenAt };

  // Leftovers grouped by the desktop they name; only what carries this deployment's marks may become an orphan.
  const byDesktop = new Map<string, { vms: number[]; connections: string[]; session: boolean }>();
  const entry = (id: string) => {
    const e = byDesktop.get(id) ?? { vms: [], connections: [], session: false };
    byDesktop.set(id, e);
    return e;
  };
  for (const vm of inv.vms) {
    if (!vm.desktopId) continue;
    if (vm.owned) entry(vm.desktopId).vms.push(vm.vmid);
    else report.foreign++;
  }
  for (const c of inv.connections) {
    if (!c.desktopId) continue;
    if (c.owned) entry(c.desktopId).connections.push(c.identifier);
    else report.foreign++;
  }
  // Sessions are listed by this deployment's labels already.
  for (const s of sessions) entry(s.desktopId).session = true;

  const ids = [...byDesktop.keys()];
  const unknownToObjects: string[] = [];
  await Promise.all(
    ids.map(async (id) => {
      const desktop = await env.DESKTOP_SESSION.getByName(id).get();
      if (!desktop || desktop.status === 'DELETED' || desktop.siteId !== siteId) unknownToObjects.push(id);
    }),
  );
  // Postgres is the second witness: a desktop it knows as live is not removed, even if its object is missing.
  const knownToPostgres = unknownToObjects.length ? await withDb(cfg, (db) => liveDesktopIds(db, unknownToObjects)) : new Set<string>();
  const orphanIds = unknownToObjects.filter((id) => !knownToPostgres.has(id)).sort();

  // GPU pods of orphans keep their slots until they are gone.
  for (const s of sessions) if (orphanIds.includes(s.desktopId) && s.phase && s.gpuSlots > 0) await hub.holdGpu(s.desktopId, s.gpuSlots);
  await hub.releaseOrphanGpus(sessions.filter((s) => s.phase && orphanIds.includes(s.desktopId)).map((s) => s.desktopId));

  const due = new Set(await hub.noteOrphans(orphanIds, now, cfg.RECONCILE_GRACE_SECONDS * 1000));
  const overLimit = due.size > cfg.RECONCILE_MAX_REMOVALS;
  if (overLimit) report.confirmation = { needed: due.size, limit: cfg.RECONCILE_MAX_REMOVALS };
  for (const id of orphanIds) {
    const leftovers = byDesktop.get(id) ?? { vms: [], connections: [], session: false };
    let removal: Removal = 'waiting for grace period';
    if (due.has(id)) removal = overLimit ? 'awaiting confirmation' : await remove(hub, id, leftovers);
    report.orphans.push({ desktopId: id, ...leftovers, removal });
  }

  // Settled desktops of this site: is their VM still there, and in the state we think?
  const vmByDesktop = new Map(inv.vms.filter((v) => v.desktopId).map((v) => [v.desktopId as string, v]));
  const settled = await withDb(cfg, (db) => settledDesktopIds(db, siteId));
  report.checked = settled.length;
  await Promise.all(
    settled.map(async (id) => {
      const vm = vmByDesktop.get(id);
      const outcome = await env.DESKTOP_SESSION.getByName(id).reconcileObservation(siteId, inv.takenAt, vm ? { status: vm.status } : null);
      if (outcome === 'vm_missing' || outcome === 'vm_stopped_externally') report.corrected.push({ desktopId: id, outcome });
    }),
  );
  if (report.orphans.length || report.corrected.length) console.log(JSON.stringify({ msg: 'reconciliation found drift', ...report }));
  await hub.saveReconcileReport(report);
  return report;
}

type Hub = ReturnType<Bindings['SITE_HUB']['getByName']>;

/** One delete per backend the orphan has something on (the VM task also removes its connection and user). */
async function remove(
  hub: Hub,
  desktopId: string,
  leftovers: { vms: number[]; connections: string[]; session: boolean },
): Promise<Removal> {
  const outcomes: string[] = [];
  if (leftovers.vms.length || leftovers.connections.length) outcomes.push(await hub.removeOrphan(desktopId, 'proxmox'));
  if (leftovers.session) outcomes.push(await hub.removeOrphan(desktopId, 'selkies'));
  return outcomes.includes('offline') ? 'bridge offline' : 'sent';
}

/**
 * An admin's go-ahead for a report that found more orphans than one pass may remove: everything it listed as
 * awaiting confirmation is removed now. Only the site's last report can be confirmed (an older one is stale).
 */
export async function confirmReconcileReport(
  env: Bindings,
  reportId: string,
): Promise<{ ok: true; report: ReconcileReport } | { ok: false; reason: 'not_found' }> {
  const sites = await withDb(config(env), (db) => listSites(db));
  for (const site of sites) {
    const hub = env.SITE_HUB.getByName(site.id);
    const last = await hub.lastReconcileReport();
    if (!last || last.id !== reportId) continue;
    for (const orphan of last.orphans) {
      if (orphan.removal !== 'awaiting confirmation') continue;
      orphan.removal = await remove(hub, orphan.desktopId, orphan);
    }
    delete last.confirmation;
    await hub.saveReconcileReport(last);
    return { ok: true, report: last };
  }
  return { ok: false, reason: 'not_found' };
}

/** Every registered site, one after another (the cron trigger's share of the work). */
export async function reconcileAllSites(env: Bindings, now = Date.now()): Promise<ReconcileReport[]> {
  const sites = await withDb(config(env), (db) => listSites(db));
  const reports: ReconcileReport[] = [];
  for (const site of sites) reports.push(await reconcileSite(env, site.id, now));
  return reports;
}
