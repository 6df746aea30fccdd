/**
 * The bridge's Prometheus metrics, in the text exposition format (version 0.0.4) written
 * here rather than with prom-client, which the repository does not depend on: five
 * families, counters, gauges and one histogram, are all the bridge needs.
 *
 * - cdaas_bridge_commands_total{kind,outcome}            commands finished (complete | fail)
 * - cdaas_bridge_command_duration_seconds{kind}          how long they ran (histogram)
 * - cdaas_bridge_backend_errors_total{backend,class}     driver failures by system and kind
 * - cdaas_bridge_desktops{status}                        desktops by status as this process knows them
 * - cdaas_bridge_edge_connected                          1 while the link to the edge is up
 */
import { type Server, createServer } from 'node:http';
import type { CommandKind } from '../../src/schemas/bridge-protocol';
import { InfraError } from './drivers/types';
import { TaskError } from './errors';

/** Seconds: a stop takes seconds, a create with a cold clone minutes. */
const DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];

/** What the bridge last knew of a desktop from the commands it ran for it. */
export type KnownStatus = 'creating' | 'starting' | 'stopping' | 'deleting' | 'running' | 'stopped' | 'failed';
/** `unchanged`: taking or deleting a snapshot leaves the desktop as it was, whatever the outcome. */
type StatusChange = KnownStatus | 'unchanged';
const RUNNING_STATUS: Record<CommandKind, StatusChange> = {
  create: 'creating',
  start: 'starting',
  stop: 'stopping',
  delete: 'deleting',
  restore: 'starting',
  rebuild: 'creating',
  snapshot: 'unchanged',
  delete_snapshot: 'unchanged',
};
const DONE_STATUS: Record<CommandKind, StatusChange | null> = {
  create: 'running',
  start: 'running',
  stop: 'stopped',
  delete: null,
  restore: 'running',
  rebuild: 'running',
  snapshot: 'unchanged',
  delete_snapshot: 'unchanged',
};
/** Desktops remembered at most; the least recently touched are forgotten first. */
const MAX_DESKTOPS = 100_000;

export interface BridgeMetrics {
  commandStarted(kind: CommandKind, desktopId: string): void;
  commandFinished(kind: CommandKind, desktopId: string, outcome: 'complete' | 'fail', seconds: number, error?: unknown): void;
  /** Is the edge link up? Read at each scrape. */
  setEdgeConnected(read: () => boolean): void;
  /** The exposition text. */
  render(): string;
}

export function createMetrics(): BridgeMetrics {
  const commands = new Map<string, number>();
  const durations = new Map<CommandKind, { buckets: number[]; sum: number; count: number }>();
  const backendErrors = new Map<string, number>();
  const desktops = new Map<string, KnownStatus>();
  let edgeConnected = () => false;

  const know = (desktopId: string, status: KnownStatus | null) => {
    desktops.delete(desktopId);
    if (status) desktops.set(desktopId, status);
    if (desktops.size > MAX_DESKTOPS) {
      const oldest = desktops.keys().next().value;
      if (oldest !== undefined) desktops.delete(oldest);
    }
  };

  return {
    commandStarted(kind, desktopId) {
      const status = RUNNING_STATUS[kind];
      if (status !== 'unchanged') know(desktopId, status);
    },
    commandFinished(kind, desktopId, outcome, seconds, error) {
      const key = labels({ kind, outcome });
      commands.set(key, (commands.get(key) ?? 0) + 1);
      const d = durations.get(kind) ?? { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      for (const [i, le] of DURATION_BUCKETS.entries()) if (seconds <= le) d.buckets[i] = (d.buckets[i] ?? 0) + 1;
      d.sum += seconds;
      d.count += 1;
      durations.set(kind, d);
      const after = outcome === 'complete' ? DONE_STATUS[kind] : RUNNING_STATUS[kind] === 'unchanged' ? 'unchanged' : 'failed';
      if (after !== 'unchanged') know(desktopId, after);
      const failure = outcome === 'fail' ? backendFailure(error) : null;
      if (failure) {
        const errKey = labels(failure);
        backendErrors.set(errKey, (backendErrors.get(errKey) ?? 0) + 1);
      }
    },
    setEdgeConnected(read) {
      edgeConnected = read;
    },
    render() {
      const out: string[] = [];
      family(out, 'cdaas_bridge_commands_total', 'counter', 'Commands the bridge finished, by kind and outcome.');
      for (const [key, n] of commands) out.push(`cdaas_bridge_commands_total{${key}} ${n}`);

      family(out, 'cdaas_bridge_command_duration_seconds', 'histogram', 'How long commands ran, from start to complete or fail.');
      for (const [kind, d] of durations) {
        for (const [i, le] of DURATION_BUCKETS.entries()) {
          out.push(`cdaas_bridge_command_duration_seconds_bucket{${labels({ kind, le: String(le) })}} ${d.buckets[i] ?? 0}`);
        }
        out.push(`cdaas_bridge_command_duration_seconds_bucket{${labels({ kind, le: '+Inf' })}} ${d.count}`);
        out.push(`cdaas_bridge_command_duration_seconds_sum{${labels({ kind })}} ${d.sum}`);
        out.push(`cdaas_bridge_command_duration_seconds_count{${labels({ kind })}} ${d.count}`);
      }

      family(
        out,
        'cdaas_bridge_backend_errors_total',
        'counter',
        'Commands failed by a backend (proxmox, guacamole, kubernetes), by class of error.',
      );
      for (const [key, n] of backendErrors) out.push(`cdaas_bridge_backend_errors_total{${key}} ${n}`);

      family(out, 'cdaas_bridge_desktops', 'gauge', 'Desktops by the status this bridge process last saw them in (since it started).');
      const byStatus = new Map<KnownStatus, number>();
      for (const status of desktops.values()) byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      for (const [status, n] of byStatus) out.push(`cdaas_bridge_desktops{${labels({ status })}} ${n}`);

      family(out, 'cdaas_bridge_edge_connected', 'gauge', '1 while the bridge is connected to the edge.');
      out.push(`cdaas_bridge_edge_connected ${edgeConnected() ? 1 : 0}`);
      return `${out.join('\n')}\n`;
    },
  };
}

/**
 * A failure's backend and class: unreachable (no answer), auth (401/403), client (other
 * 4xx), server (5xx, failed Proxmox tasks too), other. Null for failures that are not a
 * backend's (cancellations, the bridge's own checks).
 */
export function backendFailure(err: unknown): { backend: string; class: string } | null {
  // Tasks wrap a driver's error in their own sentences (TaskError, with the driver's as its cause).
  let cause: unknown = err;
  for (let depth = 0; cause instanceof TaskError && depth < 5; depth++) cause = cause.cause;
  if (!(cause instanceof InfraError)) return null;
  const s = cause.status;
  const cls = s === 0 ? 'unreachable' : s === 401 || s === 403 ? 'auth' : s >= 500 ? 'server' : s >= 400 ? 'client' : 'other';
  return { backend: cause.system, class: cls };
}

/** GET /metrics on host:port; anything else is 404. */
export function serveMetrics(metrics: BridgeMetrics, listen: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.render());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found; metrics are at /metrics\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}

function family(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function labels(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
