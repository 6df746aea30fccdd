/**
 * The page's one script and one stylesheet, served by the Worker from the build of
 * src/ui/client (scripts/build-ui.ts writes generated/dashboard-assets.json; a test
 * fails when it is stale). Their URLs carry a content hash, so browsers keep them for
 * a year and a deploy is picked up at once.
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
