/**
 * Fault injection: the failures a real cluster produces under load (pveproxy's pseudo-statuses of a proxied hop, flock
 * time-outs, guest-agent time-outs), drawn from a seeded PRNG so a run can be replayed.
 */
import type { z } from 'zod';
import { drawFault, faultConfigSchema } from '../shared/faults';
import { mulberry32 } from '../shared/seeded-random';

/**
 * - http_500: any API call fails with a transient 500 (`cluster not ready - no quorum?`)
 * - proxy_596: any API call gets the bodiless pseudo-status of a proxy hop that timed out waiting for the answer
 *   (pve-http-server's proxy_request: the call may still complete): the call has run, only its answer is lost, so a retried POST meets
 *   its own effect
 * - proxy_599: any API call gets the bodiless pseudo-status of a hop that failed before the daemon saw it; the call is not run
 * - task_error: a task-starting call returns its UPID, then the task fails with a lock time-out text
 * - locked: a POST/PUT/DELETE on a VM fails at once with `can't lock file '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout`
 * - agent_timeout: a guest agent call on a booted guest fails with `VM <id> qga command '<cmd>' failed - got timeout`
 */
export const FAULT_KINDS = ['http_500', 'proxy_596', 'proxy_599', 'task_error', 'locked', 'agent_timeout'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultConfigSchema = faultConfigSchema(FAULT_KINDS);
export type FaultConfig = z.infer<typeof FaultConfigSchema>;

export class FaultInjector {
  private config: FaultConfig | null = null;
  private random: () => number = mulberry32(1);
  readonly counts = new Map<FaultKind, number>();
  /** Faults per endpoint (`POST /nodes/{node}/qemu/{vmid}/clone`), so a report can say which step they hit. */
  readonly byRoute = new Map<string, Map<FaultKind, number>>();

  configure(config: FaultConfig | null): void {
    this.config = config;
    this.random = mulberry32(config?.seed ?? 1);
  }

  current(): FaultConfig | null {
    return this.config;
  }

  clearCounts(): void {
    this.counts.clear();
    this.byRoute.clear();
  }

  /**
   * One draw per request among the kinds that can apply to it; the same seed and request order
   * give the same faults.
   */
  draw(applicable: readonly FaultKind[], route = 'unknown'): FaultKind | null {
    const kind = drawFault(this.config, this.random, applicable);
    if (kind) {
      this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
      const perRoute = this.byRoute.get(route) ?? new Map<FaultKind, number>();
      perRoute.set(kind, (perRoute.get(kind) ?? 0) + 1);
      this.byRoute.set(route, perRoute);
    }
    return kind;
  }
}
