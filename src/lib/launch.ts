import { DesktopSpecSchema, GpuPlacementSchema, PodTurnSchema } from '../schemas/bridge-protocol';
import { TemplateSchema } from '../schemas/template';
import { z } from '../schemas/zod';

/**
 * What a command needs beyond the desktop record: template details and the GPU booked for it.
 * The desktop's Durable Object keeps it with the desktop, and hands it to each command it issues.
 */
export const LaunchSpecSchema = z.object({
  /**
   * The run (a create or a start) this launch is for: GPU slots are booked per run, so the
   * end of one run, or a start that lost a race, releases only its own booking. Absent on
   * desktops created before runs existed; their booking is keyed by the desktop alone.
   */
  runId: z.string().nullish(),
  // From the template launched (its own null: the bridge's default VM template, no image, no home volume).
  vmTemplate: TemplateSchema.shape.vmTemplate,
  image: TemplateSchema.shape.image,
  storageGb: TemplateSchema.shape.storageGb,
  gpu: GpuPlacementSchema.nullable(),
  /** Selkies: TURN credentials minted for this session's pod. */
  turn: PodTurnSchema.nullable(),
  /** A fork: the create clones this desktop's VM at this snapshot (only the create command carries it). */
  forkOf: DesktopSpecSchema.shape.forkOf.nullish(),
});
export type LaunchSpec = z.infer<typeof LaunchSpecSchema>;

/** The default VM template of the site's bridge, nothing else. */
export const DEFAULT_LAUNCH: LaunchSpec = { vmTemplate: null, image: null, storageGb: null, gpu: null, turn: null };

/** The site hub's key for one run's GPU booking. */
export const gpuBookingId = (desktopId: string, runId: string | null | undefined) => (runId ? `${desktopId}/${runId}` : desktopId);

/** The desktop and run a booking key names (./gpuBookingId). */
export function bookingOwner(bookingId: string): { desktopId: string; runId: string | null } {
  const [desktopId = bookingId, runId] = bookingId.split('/', 2);
  return { desktopId, runId: runId ?? null };
}
