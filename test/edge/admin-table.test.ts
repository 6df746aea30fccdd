/**
 * The list every admin page is made of (src/ui/admin/table.tsx), read as a browser would:
 * the rendered HTML goes through workerd's HTML parser (HTMLRewriter), not through regexes.
 */
import { describe, expect, it } from 'vitest';
import { AdminTable, type AdminTableProps, type Column, type Filters } from '../../src/ui/admin/table';

interface Row {
  id: string;
  name: string;
}

const COLUMNS: Column<Row>[] = [
  { header: 'Name', rowHeader: true, cell: (r) => r.name },
  { header: 'Id', class: (r) => (r.id === 'long' ? 'long' : undefined), cell: (r) => r.id },
  { header: 'Edit', hideHeader: true, cell: () => 'edit' },
];

const filters = (values: { q: string; status: string; from: string }): Filters => ({
  label: 'Filter things',
  action: '/admin/things',
  submit: 'Apply filters',
  fields: [
    { name: 'q', id: 't-q', label: 'Name', value: values.q },
    {
      name: 'status',
      id: 't-status',
      label: 'Status',
      value: values.status,
      options: [
        { value: '', text: 'Any' },
        { value: 'RUNNING', text: 'Running' },
        { value: 'FAILED', text: 'Failed' },
      ],
    },
    { name: 'from', id: 't-from', label: 'From (UTC)', value: values.from, type: 'datetime-local' },
  ],
});

const render = (props: AdminTableProps<Row>) => String(AdminTable(props));

type Found = { attrs: Record<string, string>; text: string };

/** lol-html hands over text and attributes as written: undo the escapes hono/jsx writes (one pass, so `&amp;lt;` stays `&lt;`), as a browser does. */
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
const decode = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) => ENTITIES[name] ?? '');

/** The elements matching `selector`, with their attributes and text, as the browser's parser reads them. */
async function find(html: string, selector: string): Promise<Found[]> {
  const found: Found[] = [];
  await new HTMLRewriter()
    .on(selector, {
      element(e) {
        found.push({ attrs: Object.fromEntries([...e.attributes].map(([k, v]) => [k, decode(v ?? '')])), text: '' });
      },
      text(t) {
        const last = found.at(-1);
        if (last) last.text += decode(t.text);
      },
    })
    .transform(new Response(html))
    .text();
  return found;
}

const rows = (n: number, page: number, total: number) => ({
  items: Array.from({ length: n }, (_, i) => ({ id: `r${i}`, name: `Row ${i}` })),
  page,
  pageSize: n,
  total,
});

describe('the admin list', () => {
  it('shows the filters again as they were asked, each value only ever a value', async () => {
    const hostile = '"><script>alert(1)</script>';
    const html = render({
      filters: filters({ q: hostile, status: 'FAILED', from: '2026-11-01T10:00' }),
      label: 'Things',
      columns: COLUMNS,
      rows: rows(2, 1, 2),
      empty: 'None.',
    });
    expect(await find(html, 'script')).toEqual([]);
    const [form] = await find(html, 'search[aria-label="Filter things"] form');
    expect(form?.attrs).toMatchObject({ method: 'get', action: '/admin/things' });
    expect((await find(html, 'input[name="q"]'))[0]?.attrs.value).toBe(hostile);
    expect((await find(html, 'input[name="from"]'))[0]?.attrs).toMatchObject({ type: 'datetime-local', value: '2026-11-01T10:00' });
    expect((await find(html, 'select[name="status"] option[selected]')).map((o) => o.attrs.value)).toEqual(['FAILED']);
    expect((await find(html, 'label[for="t-q"]'))[0]?.text).toBe('Name');
  });

  it('links to the neighbouring pages with the filters that were set, and only those', async () => {
    const props = (page: number) => ({
      filters: filters({ q: 'ann & bob', status: '', from: '2026-11-01T10:00' }),
      label: 'Things',
      columns: COLUMNS,
      rows: rows(3, page, 7),
      empty: 'None.',
      pager: 'things',
    });
    const middle = render(props(2));
    const links = await find(middle, 'nav.pager a');
    expect(links.map((a) => [a.attrs.rel, a.text])).toEqual([
      ['prev', 'Previous page'],
      ['next', 'Next page'],
    ]);
    const [prev, next] = links.map((a) => new URL(a.attrs.href ?? '', 'https://dash.example'));
    expect(prev?.pathname).toBe('/admin/things');
    expect([...(prev?.searchParams ?? [])]).toEqual([
      ['q', 'ann & bob'],
      ['from', '2026-11-01T10:00'],
      ['page', '1'],
    ]);
    expect(next?.searchParams.get('page')).toBe('3');
    expect(next?.searchParams.has('status')).toBe(false);
    expect((await find(middle, 'nav.pager p'))[0]?.text).toBe('7 things · page 2 of 3');

    expect((await find(render(props(1)), 'nav.pager a')).map((a) => a.attrs.rel)).toEqual(['next']);
    expect((await find(render(props(3)), 'nav.pager a')).map((a) => a.attrs.rel)).toEqual(['prev']);
  });

  it('has no pager for a plain list, nor for a page when none is asked for', async () => {
    const base = { label: 'Things', columns: COLUMNS, empty: 'None.' };
    expect(await find(render({ ...base, rows: rows(2, 1, 2).items }), 'nav.pager')).toEqual([]);
    expect(await find(render({ ...base, rows: rows(2, 1, 9) }), 'nav.pager')).toEqual([]);
  });

  it('renders headers, the row-naming cell, cell classes and the attributes the script finds a row by', async () => {
    const html = render({
      label: 'Things',
      class: 'things',
      columns: COLUMNS,
      rows: [
        { id: 'long', name: '<b>bold</b>' },
        { id: 'short', name: 'plain' },
      ],
      empty: 'None.',
      rowAttributes: (r) => ({ 'data-thing-id': r.id }),
    });
    expect((await find(html, 'section.table-wrap'))[0]?.attrs).toMatchObject({ 'aria-label': 'Things', tabindex: '0' });
    expect((await find(html, 'table'))[0]?.attrs.class).toBe('things');
    expect((await find(html, 'thead th[scope="col"]')).map((h) => h.text)).toEqual(['Name', 'Id', 'Edit']);
    expect((await find(html, 'thead .visually-hidden')).map((h) => h.text)).toEqual(['Edit']);
    expect((await find(html, 'tbody tr')).map((r) => r.attrs['data-thing-id'])).toEqual(['long', 'short']);
    expect((await find(html, 'tbody th[scope="row"]')).map((h) => h.text)).toEqual(['<b>bold</b>', 'plain']);
    expect(await find(html, 'tbody b')).toEqual([]);
    expect((await find(html, 'tbody td.long')).map((c) => c.text)).toEqual(['long']);
  });

  it('says so instead of an empty table, and shows the API’s refusal instead of rows, the filters still above', async () => {
    const base = { filters: filters({ q: 'nobody', status: '', from: '' }), label: 'Things', columns: COLUMNS, empty: 'No things match.' };
    const empty = render({ ...base, rows: rows(0, 1, 0) });
    expect((await find(empty, 'p.empty'))[0]?.text).toBe('No things match.');
    expect(await find(empty, 'table')).toEqual([]);
    expect((await find(empty, 'input[name="q"]'))[0]?.attrs.value).toBe('nobody');

    const refused = render({ ...base, what: 'The things', rows: { problem: 'The database is unavailable.' } });
    expect((await find(refused, '.notice-error .notice-title'))[0]?.text).toBe('The things could not be loaded');
    expect(refused).toContain('The database is unavailable.');
    expect(await find(refused, 'table')).toEqual([]);
    expect(await find(refused, 'search form')).toHaveLength(1);
  });
});
