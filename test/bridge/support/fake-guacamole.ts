/**
 * An in-memory Guacamole behind the GuacamoleDriver interface (a test double of the
 * infrastructure). Keeps the rules tasks depend on: connection names are unique,
 * identifiers are assigned by the server, users must exist before they get
 * permissions or log in, and any call can be made to fail.
 */
import {
  type GuacActiveConnection,
  type GuacConnection,
  type GuacConnectionRecord,
  type GuacamoleDriver,
  type GuacSharingProfile,
  InfraError,
} from '../../../on-prem-bridge/src/drivers/types';

export interface FakeConnection extends GuacConnection {
  parameters: Record<string, string>;
}

type Method = keyof GuacamoleDriver;

export class FakeGuacamole implements GuacamoleDriver {
  readonly connections = new Map<string, FakeConnection>();
  readonly users = new Map<string, { password: string; read: Set<string>; attributes: Record<string, string> }>();
  readonly calls: Array<{ method: Method; args: unknown[] }> = [];
  private readonly faults: Array<{ method: Method; error: InfraError; times: number }> = [];
  private nextId = 1;

  constructor(
    readonly publicUrl = 'https://desk.example.test/guacamole',
    readonly dataSource = 'postgresql',
  ) {}

  failNext(method: Method, error: InfraError, times = 1): void {
    this.faults.push({ method, error, times });
  }

  callsOf(method: Method): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  async findConnectionByName(name: string): Promise<GuacConnection | null> {
    this.enter('findConnectionByName', [name]);
    const found = [...this.connections.values()].find((c) => c.name === name);
    return found ? { identifier: found.identifier, name: found.name, protocol: found.protocol } : null;
  }

  async getConnection(identifier: string): Promise<(GuacConnection & { parentIdentifier: string }) | null> {
    this.enter('getConnection', [identifier]);
    const found = this.connections.get(identifier);
    return found ? { identifier: found.identifier, name: found.name, protocol: found.protocol, parentIdentifier: 'ROOT' } : null;
  }

  async listConnections(): Promise<GuacConnection[]> {
    this.enter('listConnections', []);
    return [...this.connections.values()].map((c) => ({ identifier: c.identifier, name: c.name, protocol: c.protocol }));
  }

  async createConnection(opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<string> {
    this.enter('createConnection', [opts]);
    // Like the real driver: a name already taken (Guacamole's 400) is the connection to bring up to date.
    const existing = [...this.connections.values()].find((c) => c.name === opts.name);
    if (existing) {
      this.connections.set(existing.identifier, { ...existing, protocol: opts.protocol, parameters: { ...opts.parameters } });
      return existing.identifier;
    }
    const identifier = String(this.nextId++);
    this.connections.set(identifier, { identifier, name: opts.name, protocol: opts.protocol, parameters: { ...opts.parameters } });
    return identifier;
  }

  async updateConnection(identifier: string, opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<void> {
    this.enter('updateConnection', [identifier, opts]);
    if (!this.connections.has(identifier)) throw new InfraError(`Not found: "${identifier}"`, 'guacamole', 404, false);
    this.connections.set(identifier, { identifier, name: opts.name, protocol: opts.protocol, parameters: { ...opts.parameters } });
  }

  async deleteConnection(identifier: string): Promise<void> {
    this.enter('deleteConnection', [identifier]);
    this.connections.delete(identifier);
    // Sharing profiles are children of their connection (ON DELETE CASCADE).
    for (const [id, profile] of this.sharingProfiles)
      if (profile.primaryConnectionIdentifier === identifier) this.sharingProfiles.delete(id);
    for (const user of this.users.values()) user.read.delete(identifier);
  }

  async ensureUser(username: string, password: string, attributes: Record<string, string>): Promise<'created' | 'exists'> {
    this.enter('ensureUser', [username]);
    const user = this.users.get(username);
    // Like the real one: an existing user keeps its password; attributes are brought up to date.
    if (user) {
      Object.assign(user.attributes, attributes);
      return 'exists';
    }
    this.users.set(username, { password, read: new Set(), attributes: { ...attributes } });
    return 'created';
  }

  async setUserPassword(username: string, password: string): Promise<void> {
    this.enter('setUserPassword', [username]);
    const user = this.users.get(username);
    if (!user) throw new InfraError(`guacamole PUT /users/${username} → 404 NOT_FOUND: Not found`, 'guacamole', 404, false);
    user.password = password;
  }

  async listUsers(): Promise<Array<{ username: string; attributes: Record<string, string> }>> {
    this.enter('listUsers', []);
    return [...this.users].map(([username, u]) => ({ username, attributes: { ...u.attributes } }));
  }

  async probe(): Promise<{ headerAccepted: boolean; systemPermissions: string[] }> {
    return { headerAccepted: true, systemPermissions: ['ADMINISTER'] };
  }

  async deleteUser(username: string): Promise<void> {
    this.enter('deleteUser', [username]);
    this.users.delete(username);
  }

  async grantConnectionRead(username: string, identifier: string): Promise<void> {
    this.enter('grantConnectionRead', [username, identifier]);
    const user = this.users.get(username);
    if (!user) throw new InfraError(`Not found: "${username}"`, 'guacamole', 404, false);
    user.read.add(identifier);
  }

  async loginAs(username: string, password: string): Promise<{ authToken: string; dataSource: string }> {
    this.enter('loginAs', [username]);
    if (this.users.get(username)?.password !== password)
      throw new InfraError('guacamole POST /tokens → 403 INVALID_CREDENTIALS: Invalid login', 'guacamole', 403, false);
    return { authToken: `TOKEN-${username.toUpperCase()}`, dataSource: this.dataSource };
  }

  clientUrl(identifier: string, dataSource: string, authToken: string): string {
    const id = Buffer.from(`${identifier}\0c\0${dataSource}`).toString('base64url');
    return `${this.publicUrl}/#/client/${id}?token=${authToken}`;
  }

  readonly sharingProfiles = new Map<string, GuacSharingProfile & { parameters: Record<string, string> }>();
  readonly activeConnections: GuacActiveConnection[] = [];

  async listSharingProfiles(): Promise<GuacSharingProfile[]> {
    this.enter('listSharingProfiles', []);
    return [...this.sharingProfiles.values()].map(({ parameters: _, ...profile }) => profile);
  }

  async createSharingProfile(opts: {
    name: string;
    primaryConnectionIdentifier: string;
    parameters: Record<string, string>;
  }): Promise<string> {
    this.enter('createSharingProfile', [opts]);
    const identifier = String(this.nextId++);
    this.sharingProfiles.set(identifier, { identifier, ...opts });
    return identifier;
  }

  async listActiveConnections(): Promise<GuacActiveConnection[]> {
    this.enter('listActiveConnections', []);
    return [...this.activeConnections];
  }

  async sharingCredentials(activeConnectionIdentifier: string, sharingProfileIdentifier: string): Promise<string> {
    this.enter('sharingCredentials', [activeConnectionIdentifier, sharingProfileIdentifier]);
    return `KEY-${activeConnectionIdentifier}-${sharingProfileIdentifier}`;
  }

  shareUrl(shareKey: string): string {
    return `${this.publicUrl}/#/?key=${shareKey}`;
  }

  async deleteSharingProfile(identifier: string): Promise<void> {
    this.enter('deleteSharingProfile', [identifier]);
    this.sharingProfiles.delete(identifier);
    // guacamole_connection_history: the profile's id is set to NULL, its name stays.
    for (const rows of this.history.values())
      for (const row of rows) if (row.sharingProfileIdentifier === identifier) row.sharingProfileIdentifier = null;
  }

  /** Each connection's history rows, newest first (tests add the rows the web app would write). */
  readonly history = new Map<string, GuacConnectionRecord[]>();

  async connectionHistory(connectionIdentifier: string): Promise<GuacConnectionRecord[]> {
    this.enter('connectionHistory', [connectionIdentifier]);
    return (this.history.get(connectionIdentifier) ?? []).map((row) => ({ ...row }));
  }

  async killActiveConnections(identifiers: string[]): Promise<void> {
    this.enter('killActiveConnections', [identifiers]);
    for (const identifier of identifiers) {
      const at = this.activeConnections.findIndex((a) => a.identifier === identifier);
      if (at >= 0) this.activeConnections.splice(at, 1);
    }
  }

  private enter(method: Method, args: unknown[]): void {
    this.calls.push({ method, args });
    const fault = this.faults.find((f) => f.method === method && f.times > 0);
    if (fault) {
      fault.times--;
      throw fault.error;
    }
  }
}
