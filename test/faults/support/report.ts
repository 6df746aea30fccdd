/** Plain-text tables for the fault suite's closing report. */

export function table(title: string, header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [title, line(header), rule, ...cells.slice(1).map(line)].join('\n');
}

/**
 * `counts[row][column]` as a table with totals on both sides; rows and columns in the
 * given order, then any others sorted.
 */
export function crossTable(
  title: string,
  corner: string,
  counts: Map<string, Map<string, number>>,
  columns: string[],
  rowOrder: string[] = [],
): string {
  const rowKeys = [...rowOrder.filter((r) => counts.has(r)), ...[...counts.keys()].filter((r) => !rowOrder.includes(r)).sort()];
  const total = (r: string) => columns.reduce((sum, c) => sum + (counts.get(r)?.get(c) ?? 0), 0);
  const rows = rowKeys.map((r) => [r, ...columns.map((c) => counts.get(r)?.get(c) ?? 0), total(r)]);
  const columnTotals = columns.map((c) => rowKeys.reduce((sum, r) => sum + (counts.get(r)?.get(c) ?? 0), 0));
  rows.push(['total', ...columnTotals, columnTotals.reduce((a, b) => a + b, 0)]);
  return table(title, [corner, ...columns, 'total'], rows);
}

export function add(counts: Map<string, Map<string, number>>, row: string, column: string, n: number): void {
  const r = counts.get(row) ?? new Map<string, number>();
  r.set(column, (r.get(column) ?? 0) + n);
  counts.set(row, r);
}
