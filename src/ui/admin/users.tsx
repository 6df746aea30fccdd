/** /admin/users: one user's quota, found by id and changed in place (by the script), and the most active users. */
import type { FC } from 'hono/jsx';
import type { z } from 'zod';
import type { QuotaOut, UserSummaryOut } from '../../routes/admin';
import type { Page } from '../api';
import { plural } from '../format';
import { Time } from '../layout';
import { type Loaded, Problem, failed } from './loaded';
import { AdminTable, type Column, FilterForm } from './table';

export type Quota = z.infer<typeof QuotaOut>;
export type UserSummary = z.infer<typeof UserSummaryOut>;

const COLUMNS: Column<UserSummary>[] = [
  { header: 'User', rowHeader: true, cell: (u) => u.userId },
  { header: 'Active desktops', cell: (u) => u.active },
  { header: 'Limit', cell: (u) => `${u.maxDesktops}${u.custom ? ' (custom)' : ''}` },
  { header: 'Last launch', cell: (u) => <Time iso={u.lastCreatedAt} /> },
  {
    header: 'Edit',
    hideHeader: true,
    cell: (u) => (
      <a href={`/admin/users?userId=${encodeURIComponent(u.userId)}`} aria-label={`Change the limit of ${u.userId}`}>
        Change limit
      </a>
    ),
  },
];

const QuotaPanel: FC<{ quota: Quota }> = ({ quota }) => (
  <section aria-labelledby="quota-title" class="section panel">
    <h2 id="quota-title">{`Quota of ${quota.userId}`}</h2>
    <p data-field="quota-summary">
      {`${plural(quota.active, 'active desktop')} of at most ${quota.maxDesktops} (${quota.custom ? 'set by an admin' : 'the default'}).`}
    </p>
    <form class="inline-form" data-form="quota" data-user-id={quota.userId}>
      <div class="field">
        <label for="q-max">{`Desktop limit for ${quota.userId}`}</label>
        <input id="q-max" name="maxDesktops" type="number" min={0} max={1000} step={1} required value={String(quota.maxDesktops)} />
      </div>
      <button type="submit" class="button">
        Save limit
      </button>
    </form>
  </section>
);

export const UsersView: FC<{ userId: string; lookup: Loaded<Quota> | null; users: Loaded<Page<UserSummary>> }> = ({
  userId,
  lookup,
  users,
}) => (
  <>
    <FilterForm
      label="Find a user"
      action="/admin/users"
      fields={[{ name: 'userId', id: 'u-id', label: 'User id', value: userId, required: true }]}
      submit="Show quota"
    />
    {lookup === null ? null : failed(lookup) ? <Problem what="The quota" v={lookup} /> : <QuotaPanel quota={lookup} />}
    <section aria-labelledby="users-title" class="section">
      <h2 id="users-title">Users</h2>
      <AdminTable
        label="Users, most active first"
        what="Users"
        columns={COLUMNS}
        rows={users}
        empty="No user has launched a desktop or been given a limit yet."
      />
      {!failed(users) && users.total > users.items.length ? (
        <p class="hint">{`The ${users.items.length} most active of ${users.total} users; find anyone else by id above.`}</p>
      ) : null}
    </section>
  </>
);
