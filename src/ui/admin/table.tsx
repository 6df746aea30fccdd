/**
 * The one list every admin page is made of: a GET form of filters (it works without the
 * script, and the URL it makes can be bookmarked), then the rows as a table, or the API's
 * refusal, or a sentence saying there are none, then the pages, whose links carry the same
 * filters. Cells are JSX, so every value is escaped; no markup goes in as a string.
 */
import type { Child, FC } from 'hono/jsx';
import type { Page } from '../api';
import { plural } from '../format';
import { TableWrap } from '../layout';
import { type Loaded, Problem, failed } from './loaded';

export interface FilterField {
  /** The query parameter, which is also the form field's name. */
  name: string;
  /** The element id its label points at. */
  id: string;
  label: string;
  /** What the page was asked for: the form shows it again, and the pager's links repeat it. */
  value: string;
  /** Free text when absent. */
  type?: 'datetime-local';
  required?: boolean;
  /** A choice of these instead of free text. */
  options?: readonly { value: string; text: string }[];
}

export interface Filters {
  /** The name of the search landmark. */
  label: string;
  /** The page the form asks for again. */
  action: string;
  fields: readonly FilterField[];
  /** The submit button's words. */
  submit: string;
}

export const FilterForm: FC<Filters> = ({ label, action, fields, submit }) => (
  <search aria-label={label}>
    <form method="get" action={action} class="filters">
      {fields.map((f) => (
        <div class="field">
          <label for={f.id}>{f.label}</label>
          {f.options ? (
            <select id={f.id} name={f.name}>
              {f.options.map((o) => (
                <option value={o.value} selected={o.value === f.value}>
                  {o.text}
                </option>
              ))}
            </select>
          ) : (
            // Free text is an id or a name: the browser's suggestions from other forms only get in the way.
            <input id={f.id} name={f.name} type={f.type} value={f.value} required={f.required} autocomplete={f.type ? undefined : 'off'} />
          )}
        </div>
      ))}
      <button type="submit" class="button">
        {submit}
      </button>
    </form>
  </search>
);

export interface Column<T> {
  header: string;
  /** Read by screen readers only: for a column of links or buttons, which say what they do themselves. */
  hideHeader?: boolean;
  /** The cell that names its row (`<th scope="row">`): a screen reader announces it with every other cell of the row. */
  rowHeader?: boolean;
  class?: string | ((row: T) => string | undefined);
  cell: (row: T) => Child;
}

export interface AdminTableProps<T> {
  /** Shown above the rows; the pager's links carry their values. */
  filters?: Filters;
  /** The accessible name of the table's region. */
  label: string;
  class?: string;
  columns: readonly Column<T>[];
  /** The rows, one page of them, or the API's refusal. */
  rows: Loaded<readonly T[] | Page<T>>;
  /** What the refusal names as not loaded; `label` when absent. */
  what?: string;
  /** The sentence shown instead of an empty table. */
  empty: string;
  /** Attributes of a row's <tr>: the ids the script finds it by. */
  rowAttributes?: (row: T) => Record<string, string>;
  /** With a page of rows: the plural noun the pager counts ("sessions"). No pager without it. */
  pager?: string;
}

export function AdminTable<T>(props: AdminTableProps<T>) {
  return (
    <>
      {props.filters ? <FilterForm {...props.filters} /> : null}
      <Rows {...props} />
    </>
  );
}

function Rows<T>({ filters, label, class: tableClass, columns, rows, what, empty, rowAttributes, pager }: AdminTableProps<T>) {
  if (failed(rows)) return <Problem what={what ?? label} v={rows} />;
  const items = 'items' in rows ? rows.items : rows;
  if (items.length === 0) return <p class="empty">{empty}</p>;
  return (
    <>
      <TableWrap label={label}>
        <table class={tableClass}>
          <thead>
            <tr>
              {columns.map((c) => (
                <th scope="col">{c.hideHeader ? <span class="visually-hidden">{c.header}</span> : c.header}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((row) => (
              <tr {...rowAttributes?.(row)}>
                {columns.map((c) => {
                  const cls = typeof c.class === 'function' ? c.class(row) : c.class;
                  return c.rowHeader ? (
                    <th scope="row" class={cls}>
                      {c.cell(row)}
                    </th>
                  ) : (
                    <td class={cls}>{c.cell(row)}</td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {pager && 'items' in rows ? (
        <Pager
          base={filters?.action ?? ''}
          fields={filters?.fields ?? []}
          page={rows.page}
          pageSize={rows.pageSize}
          total={rows.total}
          what={pager}
        />
      ) : null}
    </>
  );
}

/** Previous and next links that keep the filters; empty filters are left out of the URL. Without a base, the links stay on this path. */
const Pager: FC<{ base: string; fields: readonly FilterField[]; page: number; pageSize: number; total: number; what: string }> = ({
  base,
  fields,
  page,
  pageSize,
  total,
  what,
}) => {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const link = (p: number) => {
    const query = new URLSearchParams(fields.filter((f) => f.value).map((f) => [f.name, f.value]));
    query.set('page', String(p));
    return `${base}?${query}`;
  };
  return (
    <nav class="pager" aria-label={`Pages of ${what}`}>
      <p>{`${plural(total, what.replace(/s$/, ''), what)} · page ${Math.min(page, pages)} of ${pages}`}</p>
      {page > 1 ? (
        <a href={link(page - 1)} rel="prev">
          Previous page
        </a>
      ) : null}
      {page < pages ? (
        <a href={link(page + 1)} rel="next">
          Next page
        </a>
      ) : null}
    </nav>
  );
};
