/**
 * Warm pools of Selkies (WebRTC) desktops (issue 13): what the claim of a running member does, pure.
 *
 * A member is a pod of the template's image on a node (image pulled, container running, nobody attached) with a
 * throwaway home: it is nobody's, so no user's home volume is mounted (the bridge gives a member's pod an emptyDir,
 * src/desktop/decide.ts `commandFor` marks its commands `scratchHome`). A pod's volumes cannot change once it exists,
 * so the claim cannot hand that pod over: the desktop becomes the claimer's and goes STARTING, and a start replaces
 * the pod with one that mounts the claimer's home on the member's node, whose kubelet has the image. The pull (minutes
 * on a cold node) is gone from the time to desktop; the container start (seconds) is not.
 *
 * The run stays the member's: its run id, so the GPU slots booked for it at the site stay booked (no release, no new
 * booking that could find the site full), and its GPU placement, which names the node. Only the TURN credentials
 * are the claimer's own, minted at the claim for the session they start.
 */
import { DEFAULT_LAUNCH } from '../lib/launch';
import type { PodTurn } from '../schemas/bridge-protocol';
import type { SessionState } from './session-state';

export interface Rehome {
  /** The member as the claimer's: out of its pool, with the new pod's TURN credentials. */
  state: SessionState;
  step: { event: 'claimed_rehome'; reason: string; command: 'start'; node?: string };
}

/** The re-homing start a claim of `s` needs, or null when the claim hands the desktop over as it is (a VM, a stopped member). */
export function rehomeOnClaim(s: SessionState, turn: PodTurn | undefined, claimer: string): Rehome | null {
  const d = s.desktop;
  if (d.backend !== 'selkies' || d.status !== 'RUNNING') return null;
  const launch = { ...(s.launch ?? DEFAULT_LAUNCH), ...(turn ? { turn } : {}) };
  const node = launch.gpu?.node ?? d.node ?? undefined;
  const where = node ? ` on ${node}, where its image is` : '';
  const reason = `claimed from warm pool ${s.pool} for ${claimer}: its pod is replaced by one with their home${where}`;
  return { state: { ...s, pool: null, launch }, step: { event: 'claimed_rehome', reason, command: 'start', ...(node ? { node } : {}) } };
}
