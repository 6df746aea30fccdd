/**
 * Everything the bridge names or derives for a desktop, computed from the desktop id
 * alone. Because names and passwords are deterministic, a re-run after a crash finds
 * the same VM and connection and sets the same passwords without storing anything;
 * the names are how tasks observe what already exists.
 */
import { createHmac } from 'node:crypto';

/** Marks every VM this bridge made, so operators (and cleanups) can tell them apart. */
export const MANAGED_TAG = 'cdaas';

/**
 * Who made an object: this site of this control-plane deployment (the id the edge's site hub
 * sends in `hello`). Reconciliation only ever removes objects carrying both marks, so two
 * sites, or staging and production, sharing one Proxmox or Guacamole never touch each
 * other's desktops, and a deployment that lost its records removes nothing at all.
 */
export interface Owner {
  siteId: string;
  /** Null until the edge said it (or from an edge too old to say). */
  deploymentId: string | null;
}

export const siteTag = (siteId: string) => `cdaas-site-${siteId}`;
export const deploymentTag = (deploymentId: string) => `cdaas-dep-${deploymentId}`;

/** Desktop ids are lowercase alphanumerics (DesktopIdSchema), so this is a valid dns-name and tag. */
export const vmName = (desktopId: string) => `desk-${desktopId}`;
export const vmTags = (desktopId: string, owner: Owner) => [
  MANAGED_TAG,
  `desk-${desktopId}`,
  siteTag(owner.siteId),
  ...(owner.deploymentId ? [deploymentTag(owner.deploymentId)] : []),
];

/** True when the tags carry both this site's and this deployment's mark. */
export function ownedByTags(tags: string[], owner: Owner): boolean {
  return owner.deploymentId !== null && tags.includes(siteTag(owner.siteId)) && tags.includes(deploymentTag(owner.deploymentId));
}

/** The Guacamole user attribute (JDBC profile field, kept by the schema) that carries the same marks. */
export const OWNER_ATTRIBUTE = 'guac-organization';
export const ownerAttributeValue = (owner: Owner) => `cdaas site=${owner.siteId} deployment=${owner.deploymentId ?? 'unknown'}`;
export function ownedByAttribute(value: string | null | undefined, owner: Owner): boolean {
  return owner.deploymentId !== null && value === ownerAttributeValue(owner);
}
export const connectionName = (desktopId: string) => `desk-${desktopId}`;
export const guacamoleUsername = (desktopId: string) => `desk-${desktopId}`;

/** The desktop id a VM or connection name stands for, or null for names this bridge did not make. */
export function desktopIdOf(name: string): string | null {
  return /^desk-([a-z0-9]{8,40})$/.exec(name)?.[1] ?? null;
}

/** The guest OS account the desktop's connection logs in as (cloud-init `ciuser`). */
export const DESKTOP_USER = 'desktop';

/**
 * The Guacamole user's password: only the bridge ever logs in as it (open_session). It is set
 * once, when the user is made, and must pass the JDBC password policies sites turn on
 * (length, both cases, a digit, a symbol, not containing the username), so 24 base64url
 * characters (144 bits) are followed by a fixed tail that has each class.
 */
export function guacamoleUserPassword(bridgeSecret: string, desktopId: string): string {
  const digest = createHmac('sha256', bridgeSecret).update(`guacamole-user:${desktopId}`).digest('base64url');
  return `${digest.slice(0, 24)}.Gq7`;
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
