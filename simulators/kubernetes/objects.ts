/** The stored-object shape and the small helpers the simulator's modules share. */
import { createHash } from 'node:crypto';
import type { ResourceInfo } from './resources';
import type { ObjectMeta } from './schemas';

export type Labels = Record<string, string>;
export type StoredMeta = ObjectMeta & { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
export type KubeObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: StoredMeta };

/** The alphabet of generated name suffixes (k8s.io/apimachinery rand.String): no vowels, no look-alikes. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function child(obj: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = obj[key];
  if (isRecord(existing)) return existing;
  const created: Record<string, unknown> = {};
  obj[key] = created;
  return created;
}

export function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export function resourceKey(r: ResourceInfo): string {
  return `${r.group}/${r.plural}`;
}

export function randomSuffix(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += NAME_ALPHABET[Math.floor(Math.random() * NAME_ALPHABET.length)];
  return out;
}

export function hashName(value: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(value)).digest();
  let out = '';
  for (let i = 0; i < 10; i++) out += NAME_ALPHABET[(digest[i] ?? 0) % NAME_ALPHABET.length];
  return out;
}

/** Quantities come back as strings, whatever JSON type the client sent. */
export function stringifyQuantities(values: unknown): void {
  if (!isRecord(values)) return;
  for (const [k, v] of Object.entries(values)) if (typeof v === 'number') values[k] = String(v);
}

/** RFC 7386 JSON merge patch (strategic-merge patches are applied the same way here: lists are replaced). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}
