/**
 * `?labelSelector=` (equality `a=b`, `a==b`, `a!=b`; set `a in (x,y)`, `a notin (x)`; existence `a`, `!a`) and the
 * `?fieldSelector=` fields the API server supports for the kinds a session uses.
 */
import { badRequest } from './http';

type Op = 'eq' | 'ne' | 'in' | 'notin' | 'exists' | 'absent';
interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type Selector = (labels: Record<string, string>) => boolean;

/** Splits on commas outside parentheses. */
function terms(raw: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of raw) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

function parseTerm(term: string): Requirement {
  let m = /^!\s*([^\s=!(),]+)$/.exec(term);
  if (m) return { key: m[1] ?? '', op: 'absent', values: [] };
  m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term);
  if (m) return { key: m[1] ?? '', op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3] ?? ''] };
  m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term);
  if (m)
    return {
      key: m[1] ?? '',
      op: m[2] === 'in' ? 'in' : 'notin',
      values: (m[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    };
  m = /^([^\s=!(),]+)$/.exec(term);
  if (m) return { key: m[1] ?? '', op: 'exists', values: [] };
  throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
}

export function parseLabelSelector(raw: string | null): Selector {
  if (!raw) return () => true;
  const reqs = terms(raw).map(parseTerm);
  return (labels) =>
    reqs.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      const value = labels[r.key];
      switch (r.op) {
        case 'eq':
          return has && value === r.values[0];
        case 'ne':
          return !has || value !== r.values[0];
        case 'in':
          return has && r.values.includes(value ?? '');
        case 'notin':
          return !has || !r.values.includes(value ?? '');
        case 'exists':
          return has;
        case 'absent':
          return !has;
        default:
          return false;
      }
    });
}

/** Every resource supports metadata.name/namespace; pods add spec.nodeName and status.phase. */
export function parseFieldSelector(
  raw: string | null,
  extraFields: Record<string, (obj: Record<string, unknown>) => string | undefined>,
): (obj: Record<string, unknown>) => boolean {
  if (!raw) return () => true;
  const meta = (obj: Record<string, unknown>) => (obj.metadata ?? {}) as Record<string, unknown>;
  const fields: Record<string, (obj: Record<string, unknown>) => string | undefined> = {
    'metadata.name': (o) => meta(o).name as string | undefined,
    'metadata.namespace': (o) => meta(o).namespace as string | undefined,
    ...extraFields,
  };
  const reqs = terms(raw).map((term) => {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${raw}'; can't understand '${term}'`);
    const field = (m[1] ?? '').trim();
    const get = fields[field];
    if (!get) throw badRequest(`field label not supported: ${field}`);
    return { get, ne: m[2] === '!=', value: (m[3] ?? '').trim() };
  });
  return (obj) => reqs.every((r) => ((r.get(obj) ?? '') === r.value) !== r.ne);
}
