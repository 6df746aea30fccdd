/** /admin/webhooks: the admin's own subscriptions, and the delivery attempts of one, found by id. */
import type { FC } from 'hono/jsx';
import type { z } from 'zod';
import type { DeliveryOut, WebhookOut } from '../../routes/webhooks';
import { Time } from '../layout';
import { type Loaded, Problem, failed } from './loaded';
import { AdminTable, type Column, FilterForm } from './table';

export type Webhook = z.infer<typeof WebhookOut>;
export type Delivery = z.infer<typeof DeliveryOut>;

const SUBSCRIPTION_COLUMNS: Column<Webhook>[] = [
  { header: 'URL', rowHeader: true, class: 'long', cell: (w) => w.url },
  { header: 'Events', cell: (w) => w.events.join(', ') },
  { header: 'Scope', cell: (w) => w.scope },
  { header: 'Created', cell: (w) => <Time iso={w.createdAt} /> },
  {
    header: 'Deliveries',
    hideHeader: true,
    cell: (w) => (
      <a href={`/admin/webhooks?id=${encodeURIComponent(w.id)}`} aria-label={`Deliveries to ${w.url}`}>
        Deliveries
      </a>
    ),
  },
];

const outcomeTone = (o: Delivery['outcome']) => (o === 'delivered' ? 'ok' : o === 'dead' || o === 'refused' ? 'bad' : 'busy');

const DELIVERY_COLUMNS: Column<Delivery>[] = [
  { header: 'Time', cell: (d) => <Time iso={d.at} /> },
  {
    header: 'Event',
    rowHeader: true,
    cell: (d) => (
      <>
        {d.eventType}
        <br />
        <code>{d.eventId}</code>
      </>
    ),
  },
  { header: 'Attempt', cell: (d) => d.attempt },
  {
    header: 'Outcome',
    cell: (d) => (
      <span class="badge" data-tone={outcomeTone(d.outcome)}>
        {d.outcome}
      </span>
    ),
  },
  { header: 'Reason', cell: (d) => d.reason?.replaceAll('_', ' ') ?? '—' },
];

export const WebhooksView: FC<{
  id: string;
  subscriptions: Loaded<Webhook[]>;
  selected: Loaded<{ webhook: Webhook; deliveries: Delivery[] }> | null;
}> = ({ id, subscriptions, selected }) => (
  <>
    <section aria-labelledby="wh-title" class="section">
      <h2 id="wh-title">Your subscriptions</h2>
      <p class="hint">Subscriptions made with an admin token receive the events of every desktop.</p>
      <AdminTable
        label="Webhook subscriptions"
        what="Subscriptions"
        columns={SUBSCRIPTION_COLUMNS}
        rows={subscriptions}
        empty="No subscriptions. Create one with POST /api/v1/webhooks."
      />
    </section>
    <FilterForm
      label="Find a subscription"
      action="/admin/webhooks"
      fields={[{ name: 'id', id: 'wh-id', label: 'Subscription id', value: id, required: true }]}
      submit="Show deliveries"
    />
    {selected === null ? null : failed(selected) ? (
      <Problem what="The deliveries" v={selected} />
    ) : (
      <section aria-labelledby="dl-title" class="section">
        <h2 id="dl-title">{`Deliveries to ${selected.webhook.url}`}</h2>
        <AdminTable label="Delivery attempts" columns={DELIVERY_COLUMNS} rows={selected.deliveries} empty="No delivery attempts yet." />
      </section>
    )}
  </>
);
