/**
 * Seeded fault injection for the simulator's REST API, so tests of retry and re-login paths are deterministic.
 * Simulator-only: nothing like it exists in Guacamole.
 */
import { z } from 'zod';
import { mulberry32 } from '../shared/seeded-random';

export const FAULT_KINDS = ['http_500', 'http_403'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultConfigSchema = z.object({
  /** Probability that an eligible /api request fails. */
  rate: z.number().min(0).max(1),
  kinds: z.array(z.enum(FAULT_KINDS)).min(1),
  seed: z.number().int().optional(),
  /** Stop injecting after this many faults (lets a test fail exactly the next N calls with rate 1). */
  max: z.number().int().positive().optional(),
});
export type FaultConfig = z.infer<typeof FaultConfigSchema>;

export class FaultInjector {
  private config: FaultConfig | null = null;
  private random: () => number = mulberry32(1);
  readonly injected: Record<FaultKind, number> = { http_500: 0, http_403: 0 };
  private injectedSinceConfig = 0;
  /** Faults per endpoint (`POST /session/data/{dataSource}/connections`), so a report can say which step they hit. */
  readonly injectedByRoute = new Map<string, Record<FaultKind, number>>();

  configure(config: FaultConfig | null): void {
    this.config = config;
    this.random = mulberry32(config?.seed ?? 1);
    this.injectedSinceConfig = 0;
  }

  current(): FaultConfig | null {
    return this.config;
  }

  resetCounters(): void {
    this.injected.http_500 = 0;
    this.injected.http_403 = 0;
    this.injectedByRoute.clear();
  }

  /**
   * Draws for one request; `eligible` says which kinds make sense for it (a token drop needs a token). Both
   * draws happen whatever the outcome, so the sequence depends only on the seed and the number of requests.
   */
  draw(eligible: (kind: FaultKind) => boolean, route = 'unknown'): FaultKind | null {
    const config = this.config;
    if (!config) return null;
    const hit = this.random() < config.rate;
    const kind = config.kinds[Math.floor(this.random() * config.kinds.length)] ?? null;
    if (!hit || kind === null || !eligible(kind)) return null;
    if (config.max !== undefined && this.injectedSinceConfig >= config.max) return null;
    this.injectedSinceConfig++;
    this.injected[kind]++;
    const perRoute = this.injectedByRoute.get(route) ?? { http_500: 0, http_403: 0 };
    perRoute[kind]++;
    this.injectedByRoute.set(route, perRoute);
    return kind;
  }
}
