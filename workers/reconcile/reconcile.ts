/**
 * Reconciliation: compare what the edge believes with what each site really has.
 *
 * - A VM or connection named desk-<id> whose desktop does not exist (or is DELETED) is
 *   an orphan: reported at once, removed with the bridge's idempotent delete task once
 *   it has been seen for longer than RECONCILE_GRACE_SECONDS (a grace period, so a
 *   desktop whose creation is being recorded right now is never mistaken for one).
 * - A settled RUNNING or STOPPED desktop whose VM is gone becomes FAILED with the
 *   reason; a RUNNING one whose VM was powered off outside the control plane becomes
 *   STOPPED. The desktop's own object makes that call (it knows whether work is in
 *   flight), from the inventory the bridge took.
 *
 * Runs from the cron trigger and from POST /api/v1/admin/reconcile.
 */
import { withDb } from '../../src/db/client';
import { listSites, settledDesktopIds } from '../../src/db/queries';
import { type Bindings, config } from '../../src/env';
import type { ReconcileOutcome } from '../desktop-session/desktop-session';

export interface ReconcileReport {
  siteId: string;
  at: string;
  /** Why nothing was checked (the bridge is offline), if so. */
  skipped?: string;
  inventory?: { vms: number; connections: number; takenAt: string };
  /** Desktops whose leftovers exist at the site although the desktop does not. */
  orphans: { desktopId: string; vms: number[]; connections: string[]; removal: 'sent' | 'waiting for grace period' | 'bridge offline' }[];
  /** Desktops whose state was corrected from what the site has. */
  corrected: { desktopId: string; outcome: Exclude<ReconcileOutcome, 'in_sync' | 'unsettled' | 'unknown'> }[];
  checked: number;
}

export async function reconcileSite(env: Bindings, siteId: string, now = Date.now()): Promise<ReconcileReport> {
  const cfg = config(env);
  const hub = env.SITE_HUB.getByName(siteId);
  const report: ReconcileReport = { siteId, at: new Date(now).toISOString(), orphans: [], corrected: [], checked: 0 };
  const taken = await hub.inventory();
  if (!taken.ok) {
    report.skipped = taken.message;
    await hub.saveReconcileReport(report);
    return report;
  }
  const inv = taken.value;
  report.inventory = { vms: inv.vms.length, connections: inv.connections.length, takenAt: inv.takenAt };

  // Leftovers grouped by the desktop they name.
  const byDesktop = new Map<string, { vms: number[]; connections: string[] }>();
  const entry = (id: string) => {
    const e = byDesktop.get(id) ?? { vms: [], connections: [] };
    byDesktop.set(id, e);
    return e;
  };
  for (const vm of inv.vms) if (vm.desktopId) entry(vm.desktopId).vms.push(vm.vmid);
  for (const c of inv.connections) if (c.desktopId) entry(c.desktopId).connections.push(c.identifier);

  const orphanIds: string[] = [];
  await Promise.all(
    [...byDesktop.keys()].map(async (id) => {
      const desktop = await env.DESKTOP_SESSION.getByName(id).get();
      if (!desktop || desktop.status === 'DELETED' || desktop.siteId !== siteId) orphanIds.push(id);
    }),
  );
  const due = new Set(await hub.noteOrphans(orphanIds, now, cfg.RECONCILE_GRACE_SECONDS * 1000));
  for (const id of orphanIds.sort()) {
    const leftovers = byDesktop.get(id) ?? { vms: [], connections: [] };
    let removal: ReconcileReport['orphans'][number]['removal'] = 'waiting for grace period';
    if (due.has(id)) removal = (await hub.removeOrphan(id)) === 'delivered' ? 'sent' : 'bridge offline';
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

/** Every registered site, one after another (the cron trigger's share of the work). */
export async function reconcileAllSites(env: Bindings, now = Date.now()): Promise<ReconcileReport[]> {
  const sites = await withDb(config(env), (db) => listSites(db));
  const reports: ReconcileReport[] = [];
  for (const site of sites) reports.push(await reconcileSite(env, site.id, now));
  return reports;
}
