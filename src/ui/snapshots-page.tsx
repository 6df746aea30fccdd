/**
 * A desktop's snapshots (GET /desktops/{id}/snapshots): the list as Proxmox has it (name,
 * when, with RAM or not, description), a form to take one, and per snapshot Restore, Fork
 * and Delete. The script (data-form="snapshot", data-action="restore-snapshot" …) calls the
 * API, follows the desktop's live stream (its status, and the statusMessage that tells a
 * snapshot's outcome) and re-reads the parts marked data-refresh. A WebRTC desktop, or one
 * on storage that cannot take snapshots, gets the reason instead of the form.
 */
import type { FC } from 'hono/jsx';
import type { Session } from '../auth/session-token';
import type { DesktopSnapshot, DesktopSnapshotList } from '../schemas/bridge-protocol';
import type { Desktop } from '../schemas/desktop';
import { AdminTable, type Column } from './admin/table';
import type { Loaded } from './admin/loaded';
import { tone } from './desktop-model';
import { Alert, Layout, Time } from './layout';
import type { UiModel } from './model-types';
import { STATUS_TEXT } from './status-text';

export interface SnapshotsPageProps {
  desktop: Desktop;
  /** Null for a WebRTC desktop, which has none (nobody is asked). */
  list: Loaded<DesktopSnapshotList> | null;
}

const columns = (d: Desktop): Column<DesktopSnapshot>[] => [
  { header: 'Name', rowHeader: true, cell: (s) => s.name },
  { header: 'Taken', cell: (s) => <Time iso={s.takenAt} fallback="Unknown" /> },
  { header: 'With RAM', cell: (s) => (s.withRam ? 'Yes' : 'No') },
  { header: 'Description', cell: (s) => s.description || '—' },
  {
    header: 'Actions',
    hideHeader: true,
    cell: (s) => (
      <div class="row-actions">
        <button
          type="button"
          class="button small"
          id={`snapshot-${s.name}-restore`}
          data-action="restore-snapshot"
          aria-label={`Restore ${d.name} to ${s.name}`}
        >
          Restore
        </button>
        <button
          type="button"
          class="button-quiet small"
          id={`snapshot-${s.name}-fork`}
          data-action="fork-snapshot"
          aria-label={`Fork ${s.name} into a new desktop`}
        >
          Fork
        </button>
        <button
          type="button"
          class="button-danger small"
          id={`snapshot-${s.name}-delete`}
          data-action="delete-snapshot"
          aria-label={`Delete snapshot ${s.name}`}
        >
          Delete
        </button>
      </div>
    ),
  },
];

const TakeForm: FC = () => (
  <section aria-labelledby="take-title" class="section">
    <h2 id="take-title">Take a snapshot</h2>
    <p class="hint">
      The desktop keeps running (or stays stopped) while Proxmox takes it; it is listed below once taken. Only a running or stopped desktop
      can be snapshotted.
    </p>
    <form class="inline-form" data-form="snapshot">
      <div class="field">
        <label for="snapshot-name">Name (optional)</label>
        <input id="snapshot-name" name="name" type="text" maxlength={40} autocomplete="off" aria-describedby="snapshot-name-hint" />
        <span id="snapshot-name-hint" class="hint">
          A letter, then letters, digits, - or _. Empty: snap-date-time.
        </span>
      </div>
      <div class="field">
        <label for="snapshot-description">Description (optional)</label>
        <input id="snapshot-description" name="description" type="text" maxlength={200} autocomplete="off" />
      </div>
      <label class="choice">
        <input type="checkbox" name="withRam" value="yes" /> With RAM (a restore resumes where it was)
      </label>
      <button type="submit" class="button">
        Take snapshot
      </button>
    </form>
  </section>
);

/** Why there are no snapshots to offer: the desktop is not a VM, or its storage cannot take them. */
const Unsupported: FC<{ desktop: Desktop; list: SnapshotsPageProps['list'] }> = ({ desktop, list }) => {
  if (desktop.backend === 'selkies' || list === null) {
    return (
      <Alert tone="info" title="This desktop has no snapshots">
        It is a GPU desktop streamed over WebRTC (Selkies): a Kubernetes pod whose home folder is a persistent volume, not a virtual
        machine, so there is nothing to snapshot. Your home folder is kept when the desktop stops.
      </Alert>
    );
  }
  if ('problem' in list || !list.unsupported) return null;
  return (
    <Alert tone="info" title="This desktop’s storage cannot take snapshots">
      {list.unsupported}
    </Alert>
  );
};

export const SnapshotsMain: FC<SnapshotsPageProps> = ({ desktop, list }) => {
  const usable = list !== null && !('problem' in list) && !list.unsupported;
  return (
    <div data-desktop-id={desktop.id} data-status={desktop.status} data-snapshots={desktop.id}>
      <h1>
        Snapshots of “<span data-field="name">{desktop.name}</span>”
      </h1>
      <p>
        <a href="/">Back to your desktops</a>
      </p>
      <p class="meta">
        Status:{' '}
        <span class="badge" data-field="status" data-tone={tone(desktop.status)}>
          {STATUS_TEXT[desktop.status]}
        </span>
      </p>
      <p class="message" data-field="snapshot-message" hidden={!desktop.statusMessage}>
        {desktop.statusMessage}
      </p>
      <Unsupported desktop={desktop} list={list} />
      {usable ? <TakeForm /> : null}
      {list === null ? null : (
        <section aria-labelledby="snapshots-title" class="section" data-refresh="snapshot-list">
          <h2 id="snapshots-title" tabindex={-1}>
            Snapshots
          </h2>
          <AdminTable
            label="Snapshots"
            columns={columns(desktop)}
            rows={'problem' in list ? list : list.snapshots}
            what="The snapshots"
            empty="No snapshots yet."
            rowAttributes={(s) => ({ 'data-snapshot': s.name })}
          />
        </section>
      )}
    </div>
  );
};

export const SnapshotsPage: FC<SnapshotsPageProps & { session: Session; model: UiModel }> = ({ session, model, ...props }) => (
  <Layout title={`Snapshots of ${props.desktop.name}`} session={session} section="desktops" model={model}>
    <SnapshotsMain {...props} />
  </Layout>
);
