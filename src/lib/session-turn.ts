/**
 * TURN for Selkies sessions: the edge mints credentials (coturn shared-secret scheme) for the pod when its session is
 * launched, and fresh short-lived ones for the browser at each /connect. Without a configured TURN server a WebRTC
 * desktop is refused: the Selkies image would otherwise fall back to a public relay (selkies' __main__.py TURN
 * defaults).
 */
import type { Config } from '../env';
import { ApiError } from '../errors';
import type { PodTurn } from '../schemas/bridge-protocol';
import type { Desktop } from '../schemas/desktop';
import { type IceServer, iceServers, mintTurnCredentials } from './turn';

const DAY_SECONDS = 86_400;

function requireTurn(cfg: Config): { secret: string; host: string; port: number } {
  if (!cfg.TURN_SHARED_SECRET || !cfg.TURN_HOST) {
    throw new ApiError('SITE_UNAVAILABLE', 'WebRTC desktops need a TURN server: set TURN_HOST and TURN_SHARED_SECRET for the site');
  }
  return { secret: cfg.TURN_SHARED_SECRET, host: cfg.TURN_HOST, port: cfg.TURN_PORT };
}

/** The pod's credentials: valid for the whole session (its limit, or a day). */
export async function podTurn(cfg: Config, desktop: Desktop): Promise<PodTurn> {
  const { secret, host, port } = requireTurn(cfg);
  const ttlSeconds = desktop.maxSessionMinutes ? Math.ceil(desktop.maxSessionMinutes * 60) + 600 : DAY_SECONDS;
  const creds = await mintTurnCredentials({ secret, user: `desk-${desktop.id}`, ttlSeconds });
  return { host, port, ...creds };
}

/** A browser's ICE configuration for one connect: short-lived credentials of its own. */
export async function browserIceServers(cfg: Config, desktop: Desktop): Promise<{ iceServers: IceServer[]; expiresAt: string }> {
  const { secret, host, port } = requireTurn(cfg);
  const creds = await mintTurnCredentials({ secret, user: `viewer-${desktop.id}`, ttlSeconds: cfg.TURN_BROWSER_TTL_SECONDS });
  return { iceServers: iceServers({ host, port, username: creds.username, credential: creds.credential }), expiresAt: creds.expiresAt };
}
