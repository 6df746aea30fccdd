/**
 * resource.Quantity as the API accepts it ("500m", "16Gi", "2", 8): parsed to a plain number for the scheduler's
 * arithmetic. Stored objects keep the strings the client sent (quantities come back as strings).
 */

/** The regular expression kube-apiserver quotes when a quantity does not parse. */
export const QUANTITY_PATTERN = '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$';
const QUANTITY_RE = new RegExp(QUANTITY_PATTERN);

const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a quantity, or null if it is not one. */
export function parseQuantity(raw: string | number): number | null {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : null;
  const m = QUANTITY_RE.exec(raw.trim());
  if (!m) return null;
  const base = Number(m[1]);
  if (!Number.isFinite(base)) return null;
  const suffix = m[2] ?? '';
  if (suffix in SUFFIX) return base * (SUFFIX[suffix] ?? 1);
  const exp = /^[eE]([-+]?[0-9]+)$/.exec(suffix);
  if (exp) return base * 10 ** Number(exp[1]);
  return null;
}

/** The string form of a quantity (numbers as the API would print them). */
export function quantityString(raw: string | number): string {
  return typeof raw === 'number' ? String(raw) : raw;
}
