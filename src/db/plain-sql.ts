/**
 * INSERT statements written as plain SQL from the drizzle schema's column names, for the
 * write-through that every desktop change sends: drizzle's query builder costs more CPU
 * per statement than the rest of a change put together (it checks the kind of every
 * column and parameter as it builds). Values go as parameters, as they would through
 * drizzle; the columns used here (text, integer, double precision, string timestamps)
 * take their values as they are.
 */
import { getTableColumns, getTableName, type Table } from 'drizzle-orm';

interface Column {
  key: string;
  name: string;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
const columnCache = new WeakMap<Table, Column[]>();

function columnsOf(table: Table): Column[] {
  let cols = columnCache.get(table);
  if (!cols) {
    cols = Object.entries(getTableColumns(table)).map(([key, c]) => ({ key, name: c.name }));
    columnCache.set(table, cols);
  }
  return cols;
}

export interface PlainStatement {
  text: string;
  params: unknown[];
}

/**
 * `INSERT INTO table (every column) VALUES …` for `rows`; a value left undefined takes the
 * column's DEFAULT, as drizzle's insert does. `conflict` adds the ON CONFLICT clause, and
 * may add parameters of its own.
 */
export function insertRows<R extends object>(
  table: Table,
  rows: R[],
  conflict: (params: unknown[], columns: Column[]) => string,
): PlainStatement {
  const cols = columnsOf(table);
  const params: unknown[] = [];
  const tuples = rows.map((row) => {
    const values = cols.map((c) => {
      const v = (row as Record<string, unknown>)[c.key];
      if (v === undefined) return 'DEFAULT';
      params.push(v);
      return `$${params.length}`;
    });
    return `(${values.join(', ')})`;
  });
  const head = `INSERT INTO ${quote(getTableName(table))} (${cols.map((c) => quote(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`;
  return { text: `${head} ${conflict(params, cols)}`, params };
}

/** `"col" = excluded."col"` for each of `keys` (by schema key). */
export function fromExcluded(columns: Column[], keys: (key: string) => boolean): string {
  return columns
    .filter((c) => keys(c.key))
    .map((c) => `${quote(c.name)} = excluded.${quote(c.name)}`)
    .join(', ');
}
