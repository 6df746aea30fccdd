/**
 * Short-lived TURN credentials by coturn's shared-secret scheme ("TURN REST API", coturn `--use-auth-secret
 * --static-auth-secret`), and the ICE configuration a Selkies pod and its browser take (coturn's README.turnserver
 * "TURN REST API"; selkies' signalling_web.py).
 *
 * username   = "<expiry, unix seconds>:<user>"   (coturn rejects it once the expiry has passed)
 * credential = base64(HMAC-SHA1(key = secret, message = username))
 *
 * WebCrypto only, so the edge Worker mints them and Node tests check them the same way.
 */

import type { z } from '../schemas/zod';
import type { TurnCredentialsSchema } from '../schemas/bridge-protocol';

const encoder = new TextEncoder();

export type TurnCredentials = z.infer<typeof TurnCredentialsSchema>;

export async function mintTurnCredentials(opts: {
  secret: string;
  user: string;
  ttlSeconds: number;
  now?: number;
}): Promise<TurnCredentials> {
  const { secret, user, ttlSeconds, now = Date.now() } = opts;
  if (!secret) throw new RangeError('TURN secret is empty');
  if (!user) throw new RangeError('TURN user is empty');
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  const expiry = Math.floor(now / 1000) + ttlSeconds;
  // coturn splits the username at ':' to find the timestamp; Selkies replaces ':' in the user with '-' for the same
  // reason (selkies' signalling_web.py generate_rtc_config), and so do we, so credentials minted here and by Selkies
  // look alike.
  const username = `${expiry}:${user.replaceAll(':', '-')}`;
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(username)));
  return { username, credential: btoa(String.fromCharCode(...mac)), expiresAt: new Date(expiry * 1000).toISOString() };
}

export type TurnTransport = 'udp' | 'tcp';

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface IceServerOptions {
  host: string;
  port: number;
  username: string;
  credential: string;
  transports?: TurnTransport[];
  /** `turns:` URLs (TURN over TLS on `port`) instead of `turn:`. */
  tls?: boolean;
}

/**
 * The RTCIceServer list: STUN on the TURN server itself, then TURN per transport. No public
 * STUN server is added (Selkies adds Google's by default): desktops must work on closed networks
 * and nothing should depend on a relay we do not run.
 */
export function iceServers(opts: IceServerOptions): IceServer[] {
  const { host, port, username, credential, transports = ['udp', 'tcp'], tls = false } = opts;
  // Selkies parses each URL by splitting on ':' (selkies' __main__.py parse_rtc_config), so an IPv6 literal would be
  // misread; a hostname or IPv4 address is required.
  if (!host || host.includes(':') || host.includes('['))
    throw new RangeError(`TURN host must be a hostname or IPv4 address, got "${host}"`);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`TURN port out of range: ${port}`);
  if (transports.length === 0) throw new RangeError('at least one TURN transport is needed');
  const scheme = tls ? 'turns' : 'turn';
  return [
    { urls: [`stun:${host}:${port}`] },
    { urls: [...new Set(transports)].map((t) => `${scheme}:${host}:${port}?transport=${t}`), username, credential },
  ];
}

/** The JSON Selkies serves at `/turn` and reads from SELKIES_RTC_CONFIG_JSON or a TURN-REST service. */
export interface SelkiesRtcConfig {
  lifetimeDuration: string;
  blockStatus: 'NOT_BLOCKED';
  iceTransportPolicy: 'all' | 'relay';
  iceServers: IceServer[];
}

export function selkiesRtcConfig(
  opts: IceServerOptions & { lifetimeSeconds: number; iceTransportPolicy?: 'all' | 'relay' },
): SelkiesRtcConfig {
  return {
    lifetimeDuration: `${opts.lifetimeSeconds}s`,
    blockStatus: 'NOT_BLOCKED',
    iceTransportPolicy: opts.iceTransportPolicy ?? 'all',
    iceServers: iceServers(opts),
  };
}
