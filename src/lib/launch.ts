/** What a command needs beyond the desktop record: template details and the GPU booked for it. */
export interface LaunchSpec {
  vmTemplate: string | null;
  image: string | null;
  storageGb: number | null;
  gpu: { gpuId: string; node: string } | null;
  /** Selkies: TURN credentials minted for this session's pod. */
  turn: { host: string; port: number; username: string; credential: string; expiresAt: string } | null;
}

/** The default VM template of the site's bridge, nothing else. */
export const DEFAULT_LAUNCH: LaunchSpec = { vmTemplate: null, image: null, storageGb: null, gpu: null, turn: null };
