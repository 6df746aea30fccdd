/**
 * Fault injection for the Kubernetes simulator: the failures a small K3s cluster shows under load or
 * misconfiguration, drawn from a seeded PRNG so that a run can be replayed (same seed, same request
 * order, same faults).
 */
import type { z } from 'zod';
import { drawFault, faultConfigSchema } from '../shared/faults';
import { mulberry32 } from '../shared/seeded-random';

/**
 * - http_500: any API call fails with a 500 InternalError Status (an etcd leader change; transient)
 * - too_many_requests: any API call gets 429 TooManyRequests with Retry-After (API priority and fairness)
 * - timeout_504: a write is carried out, then answered with 504 Timeout (the answer is lost, the effect is not):
 *   a retried create meets its own object (409 AlreadyExists)
 * - conflict_409: a PUT/PATCH fails with 409 Conflict "the object has been modified" (a concurrent writer)
 * - unschedulable: a scheduling attempt reports `Insufficient nvidia.com/gpu` on every GPU node even with room
 *   (another scheduler or a stale cache); the pod is tried again on the next attempt
 * - image_pull: a registry hiccup: two pull attempts fail (ErrImagePull, then ImagePullBackOff), the kubelet's
 *   third gets through (the kubelet retries pulls, so the first failure is not final)
 * - image_missing: the registry has no such image: ErrImagePull / ImagePullBackOff for the life of the pod
 */
export const FAULT_KINDS = [
  'http_500',
  'too_many_requests',
  'timeout_504',
  'conflict_409',
  'unschedulable',
  'image_pull',
  'image_missing',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultConfigSchema = faultConfigSchema(FAULT_KINDS);
export type FaultConfig = z.infer<typeof FaultConfigSchema>;

/**
 * Requests draw from the `api` stream, the scheduler and kubelet from the `cluster` stream: timer-driven draws
 * then cannot shift which requests fail, so a request sequence replays the same faults.
 */
export type FaultChannel = 'api' | 'cluster';

export class FaultInjector {
  private config: FaultConfig | null = null;
  private readonly random = new Map<FaultChannel, () => number>();
  readonly counts = new Map<FaultKind, number>();

  configure(config: FaultConfig | null): void {
    this.config = config;
    const seed = config?.seed ?? 1;
    this.random.set('api', mulberry32(seed));
    this.random.set('cluster', mulberry32(seed ^ 0x5bd1e995));
  }

  current(): FaultConfig | null {
    return this.config;
  }

  clearCounts(): void {
    this.counts.clear();
  }

  /** One draw per occasion among the kinds that can apply to it. */
  draw(applicable: readonly FaultKind[], channel: FaultChannel = 'api'): FaultKind | null {
    let random = this.random.get(channel);
    if (!random) {
      random = mulberry32(this.config?.seed ?? 1);
      this.random.set(channel, random);
    }
    const kind = drawFault(this.config, random, applicable);
    if (kind) this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    return kind;
  }
}
