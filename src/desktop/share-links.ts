/**
 * The rules of share links, pure: what state a link is in, whether it may be opened now,
 * and when a new one expires. The desktop's Durable Object stores the links and applies
 * these (workers/desktop-session/share-links.ts).
 */
import type { ErrorCode } from '../errors';
import type { Backend, DesktopStatus } from '../schemas/desktop';
import { type CreateShareLink, SHARE_LINK_LIMITS, type ShareLinkState } from '../schemas/share-link';

export interface StoredShareLink {
  id: string;
  mode: 'view' | 'control';
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  maxUses: number;
  uses: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
}

export type Refusal = { code: ErrorCode; message: string };

export function linkState(link: StoredShareLink, now: number): ShareLinkState {
  if (link.revokedAt !== null) return 'revoked';
  if (link.expiresAt <= now) return 'expired';
  if (link.uses >= link.maxUses) return 'used_up';
  return 'active';
}

/** Why a desktop cannot have share links at all, or null. Selkies' released image serves one viewer, without a view-only mode. */
export function sharingUnsupported(backend: Backend | undefined): Refusal | null {
  if ((backend ?? 'proxmox') === 'proxmox') return null;
  return {
    code: 'SHARING_UNSUPPORTED',
    message:
      'Share links are for VM desktops (Guacamole). This is a GPU desktop streamed with Selkies, whose released image serves one viewer at a time and has no view-only mode, so it cannot be shared',
  };
}

/** When a link made now expires, or why it cannot be made. */
export function expiryOf(input: Pick<CreateShareLink, 'ttlSeconds' | 'expiresAt'>, now: number): { expiresAt: number } | Refusal {
  const { defaultTtlSeconds, minTtlSeconds, maxTtlSeconds } = SHARE_LINK_LIMITS;
  const at = input.expiresAt !== undefined ? Date.parse(input.expiresAt) : now + (input.ttlSeconds ?? defaultTtlSeconds) * 1000;
  if (at < now + minTtlSeconds * 1000 || at > now + maxTtlSeconds * 1000 + 1000) {
    return { code: 'VALIDATION_FAILED', message: `expiresAt must be between ${minTtlSeconds} seconds and a week from now` };
  }
  return { expiresAt: at };
}

const GONE: Record<Exclude<ShareLinkState, 'active'>, string> = {
  revoked: 'This share link was revoked by the desktop’s owner',
  expired: 'This share link has expired',
  used_up: 'This share link has been used as many times as its owner allowed',
};

/** Whether a guest may open `link` now, on a desktop in `status`; null means yes. */
export function refuseRedemption(link: StoredShareLink, status: DesktopStatus, now: number): Refusal | null {
  const state = linkState(link, now);
  if (state !== 'active') return { code: 'SHARE_LINK_GONE', message: `${GONE[state]}; ask the owner for a new one` };
  if (status !== 'RUNNING') {
    return {
      code: 'INVALID_STATE',
      message: `The shared desktop is ${status.toLowerCase().replaceAll('_', ' ')}, not running; try again once its owner has started it`,
    };
  }
  return null;
}
