/**
 * A desktop's recent use for the admin console: Proxmox's own numbers (status/current for
 * now, rrddata for the last hour at one row a minute), turned into named units. Only a VM
 * this control plane made for that desktop is read: its name must be desk-<id>, so an
 * edge that names the wrong VMID learns nothing about another machine.
 */
import type { DesktopMetrics, MetricPoint } from '../../../src/schemas/bridge-protocol';
import { vmName } from '../desktop-identity';
import { InfraError } from '../drivers/types';
import { describeFailure } from '../errors';
import type { TaskDeps } from './context';

type Answer = { ok: true; metrics: DesktopMetrics } | { ok: false; error: string };

export async function desktopMetrics(deps: TaskDeps, request: { desktopId: string; vmId: number; node: string }): Promise<Answer> {
  const takenAt = new Date(deps.now?.() ?? Date.now()).toISOString();
  let usage: Awaited<ReturnType<TaskDeps['proxmox']['getVmUsage']>>;
  try {
    usage = await deps.proxmox.getVmUsage(request.node, request.vmId);
  } catch (err) {
    if (err instanceof InfraError && /does not exist/.test(err.message)) {
      return { ok: true, metrics: none(request.desktopId, takenAt, `VM ${request.vmId} no longer exists on ${request.node}`) };
    }
    return { ok: false, error: describeFailure(err, `read the use of VM ${request.vmId}`) };
  }
  const { current, rrd } = usage;
  if (current.name !== undefined && current.name !== vmName(request.desktopId)) {
    return {
      ok: false,
      error: `VM ${request.vmId} on ${request.node} is not desktop ${request.desktopId}'s (it is named ${String(current.name)})`,
    };
  }
  return {
    ok: true,
    metrics: {
      desktopId: request.desktopId,
      source: 'proxmox',
      reason: null,
      takenAt,
      current: {
        status: String(current.status ?? 'unknown'),
        cpu: num(current.cpu) ?? 0,
        cpus: num(current.cpus) ?? num(current.maxcpu) ?? 0,
        memoryBytes: num(current.mem) ?? 0,
        memoryMaxBytes: num(current.maxmem) ?? 0,
        uptimeSeconds: num(current.uptime) ?? 0,
        netInBytes: num(current.netin) ?? 0,
        netOutBytes: num(current.netout) ?? 0,
        diskReadBytes: num(current.diskread) ?? 0,
        diskWriteBytes: num(current.diskwrite) ?? 0,
      },
      series: rrd
        .filter((row) => num(row.time) !== null)
        .sort((a, b) => Number(a.time) - Number(b.time))
        .slice(-1000)
        .map(point),
    },
  };
}

/** What a desktop with nothing to read answers: an empty series and why. */
export function none(desktopId: string, takenAt: string, reason: string): DesktopMetrics {
  return { desktopId, source: 'none', reason, takenAt, current: null, series: [] };
}

function point(row: Record<string, unknown>): MetricPoint {
  return {
    time: new Date(Number(row.time) * 1000).toISOString(),
    cpu: num(row.cpu),
    memoryBytes: num(row.mem),
    memoryMaxBytes: num(row.maxmem),
    netInBytesPerSecond: num(row.netin),
    netOutBytesPerSecond: num(row.netout),
    diskReadBytesPerSecond: num(row.diskread),
    diskWriteBytesPerSecond: num(row.diskwrite),
  };
}

/** Proxmox numbers may come as strings; a missing or unknown value (RRD's NaN) is null. */
function num(value: unknown): number | null {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}
