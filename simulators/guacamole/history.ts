/**
 * Connection history as the JDBC extension keeps it (guacamole_connection_history, ConnectionRecordMapper): a row
 * per tunnel, the sharer's and each joiner's alike, written when the tunnel opens and given its end date when it
 * closes. `GET …/connections/{id}/history` answers them newest first, at most 1000 (ActivityRecordSetResource), as
 * APIConnectionRecord. A row's `uuid` is the identifier its live tunnel has under …/activeConnections (both are the
 * name UUID of the row's id: ModeledActivityRecord#getUUID, ActiveConnectionRecord), and a joiner's row names the
 * sharing profile it joined with: the only place the REST API says so (APIActiveConnection has no profile).
 */

export interface HistoryRow {
  /** history_id. */
  id: number;
  /** The live tunnel's identifier (ActiveConnectionRecord#getUUID). */
  uuid: string;
  connectionIdentifier: string;
  connectionName: string;
  /** sharing_profile_id: ON DELETE SET NULL, so null once the profile is deleted. */
  sharingProfileIdentifier: string | null;
  /** sharing_profile_name: a copy, kept when the profile goes. */
  sharingProfileName: string | null;
  username: string;
  remoteHost: string | null;
  startDate: number;
  endDate: number | null;
}

const MAXIMUM_HISTORY_SIZE = 1000;

export class ConnectionHistory {
  private rows: HistoryRow[] = [];
  private nextId = 1;

  clear(): void {
    this.rows = [];
    this.nextId = 1;
  }

  start(row: Omit<HistoryRow, 'id' | 'endDate'>): void {
    this.rows.push({ ...row, id: this.nextId++, endDate: null });
  }

  end(uuid: string, at: number): void {
    const row = this.rows.find((r) => r.uuid === uuid && r.endDate === null);
    if (row) row.endDate = at;
  }

  /** A sharing profile was deleted: guacamole_connection_history_ibfk_3 sets its rows' profile to NULL. */
  forgetProfile(identifier: string): void {
    for (const row of this.rows) if (row.sharingProfileIdentifier === identifier) row.sharingProfileIdentifier = null;
  }

  /** APIConnectionRecord of a connection's rows, newest first. */
  ofConnection(connectionIdentifier: string): Record<string, unknown>[] {
    return this.rows
      .filter((row) => row.connectionIdentifier === connectionIdentifier)
      .sort((a, b) => b.startDate - a.startDate || b.id - a.id)
      .slice(0, MAXIMUM_HISTORY_SIZE)
      .map((row) => ({
        startDate: row.startDate,
        endDate: row.endDate,
        remoteHost: row.remoteHost,
        username: row.username,
        // ModeledActivityRecord#isActive: a row read from the database is never "active", live or not; what is
        // live is what …/activeConnections lists.
        active: false,
        identifier: String(row.id),
        uuid: row.uuid,
        attributes: {},
        logs: {},
        connectionIdentifier: row.connectionIdentifier,
        connectionName: row.connectionName,
        sharingProfileIdentifier: row.sharingProfileIdentifier,
        sharingProfileName: row.sharingProfileName,
      }));
  }
}
