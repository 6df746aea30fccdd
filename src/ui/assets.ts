/**
 * The page's one script and one stylesheet, and the embeddable <cloud-desktop> element,
 * served by the Worker from the build of src/ui/client (scripts/build-ui.ts writes
 * generated/dashboard-assets.json; a test fails when it is stale). Their URLs carry a
 * content hash, so browsers keep them for a year and a deploy is picked up at once; the
 * element also answers at an unversioned URL for pages that always want the current one.
 */
import built from './generated/dashboard-assets.json';

export const ASSETS = {
  js: { body: built.js, hash: built.jsHash, type: 'text/javascript; charset=utf-8' },
  css: { body: built.css, hash: built.cssHash, type: 'text/css; charset=utf-8' },
} as const;

export type AssetKind = keyof typeof ASSETS;

export const assetPath = (kind: AssetKind) => `/ui/dashboard.${ASSETS[kind].hash}.${kind}`;

/** `dashboard.<hash>.js` → the asset and whether the hash is the current one. */
export function lookupAsset(file: string): { kind: AssetKind; current: boolean } | null {
  const m = /^dashboard\.([0-9a-f]{1,64})\.(js|css)$/.exec(file);
  if (!m) return null;
  const kind = m[2] as AssetKind;
  return { kind, current: m[1] === ASSETS[kind].hash };
}

/** The <cloud-desktop> element, loaded by other sites' pages (cross-origin). */
export const EMBED = { body: built.embedJs, hash: built.embedJsHash, type: 'text/javascript; charset=utf-8' } as const;

export const embedPath = (versioned: boolean) => (versioned ? `/embed/cloud-desktop.${EMBED.hash}.js` : '/embed/cloud-desktop.js');

/** `cloud-desktop.js` (the current one) or `cloud-desktop.<hash>.js` (pinned; current or not). */
export function lookupEmbed(file: string): { versioned: boolean; current: boolean } | null {
  if (file === 'cloud-desktop.js') return { versioned: false, current: true };
  const m = /^cloud-desktop\.([0-9a-f]{1,64})\.js$/.exec(file);
  return m ? { versioned: true, current: m[1] === EMBED.hash } : null;
}
