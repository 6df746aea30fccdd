/** A site's GPU slot occupancy, as src/gpu/allocator.ts computes it and GET /api/v1/admin/gpus answers it. */
import { SLOT_SIZES } from '../gpu/allocator';
import { z } from './zod';

/** GPU slots one session holds on one GPU. */
const SlotCountSchema = z.literal(SLOT_SIZES);

export const GpuOccupancySchema = z.object({
  gpuId: z.string(),
  node: z.string(),
  slots: z.number(),
  used: z.number(),
  /** Never negative; 0 as well when the GPU is over-committed. */
  free: z.number(),
  sessions: z.array(z.object({ sessionId: z.string(), slots: SlotCountSchema })),
});
export type GpuOccupancy = z.infer<typeof GpuOccupancySchema>;

export const OccupancySchema = z.object({
  gpus: z.array(GpuOccupancySchema),
  totals: z.object({ slots: z.number(), used: z.number(), free: z.number(), largestFree: z.number() }),
  /** Bookings on GPUs the site no longer reports: still running somewhere, still to be released. */
  orphaned: z.array(z.object({ sessionId: z.string(), gpuId: z.string(), slots: SlotCountSchema })),
});
export type Occupancy = z.infer<typeof OccupancySchema>;
