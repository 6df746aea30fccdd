/**
 * Everything the bridge names or derives for a desktop, computed from the desktop id
 * alone. Because names and passwords are deterministic, a re-run after a crash finds
 * the same VM and connection and sets the same passwords without storing anything;
 * the names are how tasks observe what already exists.
 */
import { createHmac } from 'node:crypto';

/** Marks every VM this bridge made, so operators (and cleanups) can tell them apart. */
export const MANAGED_TAG = 'cdaas';

/** Desktop ids are lowercase alphanumerics (DesktopIdSchema), so this is a valid dns-name and tag. */
export const vmName = (desktopId: string) => `desk-${desktopId}`;
export const vmTags = (desktopId: string) => [MANAGED_TAG, `desk-${desktopId}`];
export const connectionName = (desktopId: string) => `desk-${desktopId}`;
export const guacamoleUsername = (desktopId: string) => `desk-${desktopId}`;

/** The desktop id a VM or connection name stands for, or null for names this bridge did not make. */
export function desktopIdOf(name: string): string | null {
  return /^desk-([a-z0-9]{8,40})$/.exec(name)?.[1] ?? null;
}

/** The guest OS account the desktop's connection logs in as (cloud-init `ciuser`). */
export const DESKTOP_USER = 'desktop';

/** The Guacamole user's password: only the bridge ever logs in as it (open_session). */
export function guacamoleUserPassword(bridgeSecret: string, desktopId: string): string {
  return hmacHex(bridgeSecret, `guacamole-user:${desktopId}`);
}

/**
 * The guest login password (cloud-init `cipassword`, VNC/RDP connection password).
 * 16 base64url characters carry 96 bits and come first because VNC authentication only
 * uses the first 8 characters; the fixed tail guarantees the upper/lower/digit/symbol
 * mix Windows' password complexity policy demands, whatever the hash produced.
 */
export function desktopPassword(bridgeSecret: string, desktopId: string): string {
  const digest = createHmac('sha256', bridgeSecret).update(`desktop-password:${desktopId}`).digest('base64url');
  return `${digest.slice(0, 16)}-Aa1`;
}

function hmacHex(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message).digest('hex');
}
