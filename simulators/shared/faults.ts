/**
 * What the Proxmox and Kubernetes simulators' fault injectors share: the per-run configuration
 * (a rate, the kinds to draw from, a seed) and the draw itself. Each simulator keeps its own
 * kinds, their meaning and where it counts them. (Guacamole's injector draws twice on every
 * request, eligible or not, and caps the count; its tests depend on that sequence, so it keeps its own.)
 */
import { z } from 'zod';

export function faultConfigSchema<const K extends readonly [string, ...string[]]>(kinds: K) {
  return z.object({
    /** Probability that an eligible occasion fails. */
    rate: z.number().min(0).max(1),
    kinds: z.array(z.enum(kinds)).min(1),
    seed: z.number().int().optional(),
  });
}

/**
 * One draw among the configured kinds that apply to this occasion. Nothing is drawn when none
 * applies, so occasions no fault can hit do not shift which later ones fail.
 */
export function drawFault<K extends string>(
  config: { rate: number; kinds: K[] } | null,
  random: () => number,
  applicable: readonly K[],
): K | null {
  if (!config || config.rate <= 0) return null;
  const eligible = config.kinds.filter((k) => applicable.includes(k));
  if (eligible.length === 0) return null;
  if (random() >= config.rate) return null;
  return eligible[Math.floor(random() * eligible.length)] ?? null;
}
