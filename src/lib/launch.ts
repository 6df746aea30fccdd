/** What a command needs beyond the desktop record: template details and the GPU booked for it. */
export interface LaunchSpec {
  /**
   * The run (a create or a start) this launch is for: GPU slots are booked per run, so the
   * end of one run, or a start that lost a race, releases only its own booking. Absent on
   * desktops created before runs existed; their booking is keyed by the desktop alone.
   */
  runId?: string | null;
  vmTemplate: string | null;
  image: string | null;
  storageGb: number | null;
  gpu: { gpuId: string; node: string } | null;
  /** Selkies: TURN credentials minted for this session's pod. */
  turn: { host: string; port: number; username: string; credential: string; expiresAt: string } | null;
}

/** The default VM template of the site's bridge, nothing else. */
export const DEFAULT_LAUNCH: LaunchSpec = { vmTemplate: null, image: null, storageGb: null, gpu: null, turn: null };

/** The site hub's key for one run's GPU booking. */
export const gpuBookingId = (desktopId: string, runId: string | null | undefined) => (runId ? `${desktopId}/${runId}` : desktopId);

/** The desktop and run a booking key names (./gpuBookingId). */
export function bookingOwner(bookingId: string): { desktopId: string; runId: string | null } {
  const [desktopId = bookingId, runId] = bookingId.split('/', 2);
  return { desktopId, runId: runId ?? null };
}
