/**
 * The in-memory "database" and session map of the simulated Guacamole web app (JDBC/PostgreSQL flavour). Every method
 * takes the acting username and throws GuacError exactly where the real REST layer or JDBC extension throws; nothing
 * here knows about HTTP.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  badRequest,
  GuacError,
  internalError,
  invalidLogin,
  notFound,
  overrun,
  permissionDenied,
  sessionDenied,
  TUNNEL_STATUS,
  unknownDataSource,
  unsupported,
} from './errors';
import {
  type ApiPermissionSet,
  isObjectPermissionType,
  isSystemPermissionType,
  OBJECT_PERMISSION_SETS,
  type ObjectPermissionSetName,
  type ObjectPermissionType,
  PermissionSet,
} from './permissions';
import {
  isPasswordExpired,
  NO_POLICY,
  type PasswordPolicy,
  passwordExpired,
  recordPassword,
  verifyPassword,
  verifyPasswordAge,
} from './password-policy';
import { ConnectionHistory } from './history';
import { newShareKey, SharedConnectionMap, type StoredSharingProfile } from './sharing';

/** Attribute names of the JDBC connection schema; anything else is dropped by filterExternalObject. */
export const CONNECTION_ATTRIBUTES = [
  'max-connections',
  'max-connections-per-user',
  'weight',
  'failover-only',
  'guacd-hostname',
  'guacd-port',
  'guacd-encryption',
] as const;

/** Attribute names of the JDBC user schema (ModeledUser: account restrictions + profile). */
export const USER_ATTRIBUTES = [
  'disabled',
  'expired',
  'access-window-start',
  'access-window-end',
  'valid-from',
  'valid-until',
  'timezone',
  'guac-full-name',
  'guac-email-address',
  'guac-organization',
  'guac-organizational-role',
] as const;

/** JDBC ConnectionService.CONNECTION_PARAMETER_VALUE_LIMIT (1.6.0, GUACAMOLE-1948). */
const PARAMETER_VALUE_LIMIT = 4096;

/** APIPatch.Operation: Jackson rejects any other op string before the resource runs. */
const PATCH_OPERATIONS = ['add', 'remove', 'test', 'copy', 'replace', 'move'];

const ROOT = 'ROOT';

export interface StoredConnection {
  identifier: string;
  name: string;
  parentIdentifier: string;
  protocol: string;
  parameters: Record<string, string>;
  attributes: Record<string, string>;
  lastActive?: number;
}

interface StoredUser {
  username: string;
  password: string | null;
  /** When the password was last set, and the ones it replaced (newest first; only kept with a history size). */
  passwordSetAt: number;
  passwordHistory: string[];
  attributes: Record<string, string>;
  lastActive?: number;
  permissions: PermissionSet;
}

export interface Session {
  token: string;
  /** `""` for a session made from a share key (AuthenticatedUser.ANONYMOUS_IDENTIFIER). */
  username: string;
  lastAccess: number;
  tunnels: Set<string>;
  /** Share keys this session was given (SharedUserContext#registerShareKey): its `-shared` connections. */
  shareKeys: Set<string>;
}

export interface ActiveConnection {
  identifier: string;
  connectionIdentifier: string;
  username: string;
  remoteHost: string | null;
  startDate: number;
  token: string;
  /** Set when this is a joined (shared) connection: the profile it joined with and the sharer's active connection. */
  sharingProfileIdentifier?: string;
  sharedFrom?: string;
  shareKey?: string;
  /** The profile's `read-only` parameter: guacd drops this user's keyboard and mouse. */
  readOnly: boolean;
  /** Input instructions from this user that reached the desktop, and those dropped (read-only). */
  input: { accepted: number; ignored: number };
}

export interface StateOptions {
  adminUsername: string;
  adminPassword: string;
  dataSource: string;
  availableDataSources: string[];
  sessionTimeoutMs: number;
  now: () => number;
  passwordPolicy?: PasswordPolicy;
}

export interface LoginResult {
  authToken: string;
  username: string;
  dataSource: string;
  availableDataSources: string[];
}

export interface TunnelRequest {
  token: string | null;
  dataSource: string | null;
  id: string | null;
  type: string | null;
  width: string | null;
  height: string | null;
  dpi: string | null;
  remoteHost: string | null;
}

/** Which user context of the session a `data/{dataSource}` path resolves to. */
export type DataContext = 'primary' | 'secondary';

// --- JSON input, deserialised the way Jackson maps APIConnection/APIUser/APIPatch --------------------------

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Jackson coerces JSON scalars into String fields and fails on objects/arrays. Jersey answers such mapping
 * failures with a plain 400; the simulator uses an APIError body for it (the status is what clients see).
 */
function coerceString(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw badRequest(`Cannot deserialize "${field}": expected a string.`);
}

function coerceStringMap(value: unknown, field: string): Record<string, string | null> | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) throw badRequest(`Cannot deserialize "${field}": expected an object.`);
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, coerceString(entry, `${field}.${key}`)]));
}

/**
 * DirectoryObjectTranslator#filterAttributes: keeps schema names present in the input (even with null values)
 * and calls `attributes.get` on the map, so a body without `attributes` dies with a NullPointerException → 500.
 */
function filterAttributes(schema: readonly string[], attributes: Record<string, string | null> | null): Record<string, string | null> {
  if (attributes === null) throw internalError();
  return Object.fromEntries(schema.filter((name) => name in attributes).map((name) => [name, attributes[name] ?? null]));
}

/** Only non-empty values reach the tables (ConnectionService#getParameterModels, ModeledUser attribute columns). */
const stored = (values: Record<string, string | null>): Record<string, string> =>
  Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));

/** Read form of the attributes: every schema name, null when unset. */
const readAttributes = (schema: readonly string[], values: Record<string, string>) =>
  Object.fromEntries(schema.map((name) => [name, values[name] ?? null]));

const withoutNulls = (object: Record<string, unknown>) => Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null));

interface ConnectionInput {
  name: string | null;
  parentIdentifier: string | null;
  protocol: string | null;
  parameters: Record<string, string | null> | null;
  attributes: Record<string, string | null> | null;
}

function parseConnection(body: unknown, emptyMessage: string): ConnectionInput {
  if (body === undefined || body === null) throw badRequest(emptyMessage);
  if (!isPlainObject(body)) throw badRequest('Cannot deserialize the connection: expected an object.');
  return {
    name: coerceString(body.name, 'name'),
    parentIdentifier: coerceString(body.parentIdentifier, 'parentIdentifier'),
    protocol: coerceString(body.protocol, 'protocol'),
    parameters: coerceStringMap(body.parameters, 'parameters'),
    attributes: coerceStringMap(body.attributes, 'attributes'),
  };
}

interface UserInput {
  username: string | null;
  password: string | null;
  attributes: Record<string, string | null> | null;
}

function parseUser(body: unknown, emptyMessage: string): UserInput {
  if (body === undefined || body === null) throw badRequest(emptyMessage);
  if (!isPlainObject(body)) throw badRequest('Cannot deserialize the user: expected an object.');
  return {
    username: coerceString(body.username, 'username'),
    password: coerceString(body.password, 'password'),
    attributes: coerceStringMap(body.attributes, 'attributes'),
  };
}

const isBlank = (value: string | null): value is null => value === null || value.trim() === '';

export class GuacamoleState {
  private readonly connections = new Map<string, StoredConnection>();
  private readonly users = new Map<string, StoredUser>();
  private readonly sessions = new Map<string, Session>();
  private readonly active = new Map<string, ActiveConnection>();
  private readonly sharingProfiles = new Map<string, StoredSharingProfile>();
  private readonly shared = new SharedConnectionMap();
  private readonly history = new ConnectionHistory();
  private nextConnectionId = 1;
  private nextSharingProfileId = 1;
  readonly counters = { logins: 0, failedLogins: 0, tunnelsOpened: 0, tunnelsRefused: 0 };
  /** Set by the tunnel transport: closes the WebSocket of an active connection whose session died. */
  onTunnelKilled: (identifier: string) => void = () => {};

  constructor(private readonly options: StateOptions) {
    this.reset();
  }

  get dataSource(): string {
    return this.options.dataSource;
  }

  /** Back to a freshly initialised database: only the admin from the schema's initdb script. */
  reset(): void {
    for (const token of [...this.sessions.keys()]) this.destroySession(token);
    this.connections.clear();
    this.users.clear();
    this.active.clear();
    this.sharingProfiles.clear();
    this.shared.clear();
    this.history.clear();
    this.nextConnectionId = 1;
    this.nextSharingProfileId = 1;
    this.counters.logins = 0;
    this.counters.failedLogins = 0;
    this.counters.tunnelsOpened = 0;
    this.counters.tunnelsRefused = 0;
    const admin: StoredUser = {
      username: this.options.adminUsername,
      password: this.options.adminPassword,
      passwordSetAt: this.options.now(),
      passwordHistory: [],
      attributes: {},
      permissions: new PermissionSet(),
    };
    for (const type of [
      'CREATE_CONNECTION',
      'CREATE_CONNECTION_GROUP',
      'CREATE_SHARING_PROFILE',
      'CREATE_USER',
      'CREATE_USER_GROUP',
      'ADMINISTER',
    ] as const)
      admin.permissions.system.add(type);
    admin.permissions.add('userPermissions', admin.username, 'READ', 'UPDATE', 'ADMINISTER');
    this.users.set(admin.username, admin);
  }

  // --- sessions (TokenRESTService, AuthenticationService) -------------------------------------------------------

  /**
   * POST /api/tokens. A still-valid `token` is re-used as is (JDBC ignores the credentials then); otherwise the
   * username/password must match a stored, enabled user.
   */
  login(input: {
    username: string | null;
    password: string | null;
    token: string | null;
    newPassword?: string | null;
    confirmNewPassword?: string | null;
    /** A share key (ConnectionSharingService.SHARE_KEY_NAME `key`). */
    key?: string | null;
  }): LoginResult {
    const key = input.key ?? null;
    const existing = input.token ? this.liveSession(input.token) : undefined;
    if (existing) {
      existing.lastAccess = this.options.now();
      // SharedAuthenticationProviderService#updateUserContext: a key posted with a live token joins its session.
      if (key !== null && this.shared.get(key)) existing.shareKeys.add(key);
      return this.loginResult(existing);
    }
    // SharedAuthenticationProviderService#authenticateUser: a valid share key alone is an anonymous login.
    if (key !== null && input.username === null) {
      if (!this.shared.get(key)) {
        this.counters.failedLogins++;
        throw invalidLogin();
      }
      const session: Session = {
        token: randomBytes(32).toString('hex').toUpperCase(),
        username: '',
        lastAccess: this.options.now(),
        tunnels: new Set(),
        shareKeys: new Set([key]),
      };
      this.sessions.set(session.token, session);
      this.counters.logins++;
      return this.loginResult(session);
    }
    const user = input.username === null ? undefined : this.users.get(input.username);
    if (!user || user.password === null || user.password !== input.password || user.attributes.disabled === 'true') {
      this.counters.failedLogins++;
      throw invalidLogin();
    }
    const record = { password: user.password, setAt: user.passwordSetAt, history: user.passwordHistory };
    if (isPasswordExpired(this.policy, record, this.options.now())) {
      // UserService#resetExpiredPassword: the same login, with the new password twice.
      const next = input.newPassword ?? null;
      if (next === null || (input.confirmNewPassword ?? null) === null) throw passwordExpired();
      if (next === input.password)
        throw badRequest('New passwords may not be identical to the current password if password reset is required.');
      if (next === '') throw badRequest('Passwords may not be blank.');
      if (next !== input.confirmNewPassword) throw badRequest('New password does not match.');
      verifyPassword(this.policy, user.username, next, user.passwordHistory);
      this.setPassword(user, next);
    }
    const session: Session = {
      token: randomBytes(32).toString('hex').toUpperCase(),
      username: user.username,
      lastAccess: this.options.now(),
      tunnels: new Set(),
      shareKeys: new Set(),
    };
    this.sessions.set(session.token, session);
    user.lastActive = session.lastAccess;
    this.counters.logins++;
    return this.loginResult(session);
  }

  /** A share-key session is authenticated by the `-shared` provider alone, and has only its context. */
  private loginResult(session: Session): LoginResult {
    const shared = this.sharedDataSource;
    if (session.username === '' && shared)
      return { authToken: session.token, username: '', dataSource: shared, availableDataSources: [shared] };
    return {
      authToken: session.token,
      username: session.username,
      dataSource: this.options.dataSource,
      availableDataSources: [...this.options.availableDataSources],
    };
  }

  /** The `-shared` twin of the JDBC data source (e.g. `postgresql-shared`), where shared connections live. */
  get sharedDataSource(): string | undefined {
    return this.options.availableDataSources.find((name) => name === `${this.options.dataSource}-shared`);
  }

  /** HashTokenSessionMap: idle sessions expire after api-session-timeout, but not while a tunnel is open. */
  private liveSession(token: string): Session | undefined {
    const session = this.sessions.get(token);
    if (!session) return undefined;
    if (session.tunnels.size === 0 && this.options.now() - session.lastAccess > this.options.sessionTimeoutMs) {
      this.destroySession(token);
      return undefined;
    }
    return session;
  }

  /** AuthenticationService#getGuacamoleSession: touches the session or fails with 403 PERMISSION_DENIED. */
  session(token: string | null): Session {
    const session = token ? this.liveSession(token) : undefined;
    if (!session) throw sessionDenied();
    session.lastAccess = this.options.now();
    return session;
  }

  /** Logout, expiry or a web-app restart: the session goes and its tunnels are closed (GuacamoleSession#invalidate). */
  destroySession(token: string): boolean {
    const session = this.sessions.get(token);
    if (!session) return false;
    this.sessions.delete(token);
    for (const identifier of session.tunnels) for (const killed of this.endActive(identifier)) this.onTunnelKilled(killed);
    return true;
  }

  /**
   * An active connection ends: it goes from the list, and if it is a sharer's, its share keys are invalidated and the
   * tunnels joined through them close too (AbstractGuacamoleTunnelService#release → ActiveConnectionRecord#invalidate).
   * Answers every tunnel that ends with it, itself first.
   */
  private endActive(identifier: string): string[] {
    const record = this.active.get(identifier);
    if (!record) return [];
    this.active.delete(identifier);
    this.history.end(identifier, this.options.now());
    this.sessions.get(record.token)?.tunnels.delete(identifier);
    if (record.sharedFrom !== undefined) {
      this.shared.get(record.shareKey ?? '')?.tunnels.delete(identifier);
      return [identifier];
    }
    const joined = this.shared.invalidate(identifier);
    for (const other of joined) this.endActive(other);
    return [identifier, ...joined];
  }

  destroyAllSessions(): void {
    for (const token of [...this.sessions.keys()]) this.destroySession(token);
  }

  /** `data/{dataSource}`: the JDBC context, its `-shared` twin (empty here), or 404 (SessionResource). */
  context(dataSource: string): DataContext {
    if (dataSource === this.options.dataSource) return 'primary';
    if (this.options.availableDataSources.includes(dataSource)) return 'secondary';
    throw unknownDataSource(dataSource);
  }

  private get policy(): PasswordPolicy {
    return this.options.passwordPolicy ?? NO_POLICY;
  }

  /** A new password: the old one goes into the history (recordPassword), the age starts again. */
  private setPassword(user: StoredUser, password: string): void {
    const record = { password: user.password, setAt: user.passwordSetAt, history: user.passwordHistory };
    recordPassword(this.policy, record);
    user.passwordHistory = record.history;
    user.password = password;
    user.passwordSetAt = this.options.now();
  }

  // --- permission checks (ModeledDirectoryObjectService) --------------------------------------------------------

  private permissionsOf(username: string): PermissionSet {
    return this.users.get(username)?.permissions ?? new PermissionSet();
  }

  private isAdmin(username: string): boolean {
    return this.permissionsOf(username).system.has('ADMINISTER');
  }

  /** hasObjectPermission: system administrators bypass object permissions. */
  private may(username: string, set: ObjectPermissionSetName, identifier: string, type: ObjectPermissionType): boolean {
    return this.isAdmin(username) || this.permissionsOf(username).has(set, identifier, type);
  }

  /** DirectoryResource#getObjects with `?permission=`: non-admins keep objects they hold any listed permission on. */
  private visible(username: string, set: ObjectPermissionSetName, identifiers: string[], filter: ObjectPermissionType[]): string[] {
    if (this.isAdmin(username)) return identifiers;
    const permissions = this.permissionsOf(username);
    const readable = identifiers.filter((identifier) => permissions.has(set, identifier, 'READ'));
    if (filter.length === 0) return readable;
    return readable.filter((identifier) => filter.some((type) => permissions.has(set, identifier, type)));
  }

  // --- connections (ConnectionResource, DirectoryResource) ------------------------------------------------------

  private activeCount(identifier: string): number {
    let count = 0;
    // Joined (shared) connections are not counted: only primary ones are in the per-connection map.
    for (const record of this.active.values()) if (record.connectionIdentifier === identifier && record.sharedFrom === undefined) count++;
    return count;
  }

  private connectionJson(connection: StoredConnection): Record<string, unknown> {
    return withoutNulls({
      name: connection.name,
      identifier: connection.identifier,
      parentIdentifier: connection.parentIdentifier,
      protocol: connection.protocol,
      attributes: readAttributes(CONNECTION_ATTRIBUTES, connection.attributes),
      activeConnections: this.activeCount(connection.identifier),
      lastActive: connection.lastActive ?? null,
    });
  }

  /** Non-readable connections are simply absent for non-admins, hence 404 rather than 403. */
  private readableConnection(username: string, identifier: string): StoredConnection {
    const connection = this.connections.get(identifier);
    if (!connection || !this.may(username, 'connectionPermissions', identifier, 'READ')) throw notFound(identifier);
    return connection;
  }

  listConnections(username: string, filter: ObjectPermissionType[]): Record<string, unknown> {
    const identifiers = this.visible(username, 'connectionPermissions', [...this.connections.keys()], filter);
    return Object.fromEntries(identifiers.map((identifier) => [identifier, this.connectionJson(this.connections.get(identifier)!)]));
  }

  getConnection(username: string, identifier: string): Record<string, unknown> {
    return this.connectionJson(this.readableConnection(username, identifier));
  }

  /** ConnectionResource#getConnectionParameters: ADMINISTER system permission or UPDATE on the connection. */
  connectionParameters(username: string, identifier: string): Record<string, string> {
    const connection = this.readableConnection(username, identifier);
    if (
      !this.permissionsOf(username).system.has('ADMINISTER') &&
      !this.permissionsOf(username).has('connectionPermissions', identifier, 'UPDATE')
    )
      throw permissionDenied('Permission to read connection parameters denied.');
    return { ...connection.parameters };
  }

  private validateParameters(parameters: Record<string, string | null>): void {
    for (const [name, value] of Object.entries(parameters)) {
      if (value !== null && value.length > PARAMETER_VALUE_LIMIT)
        throw overrun(`The value provided for connection parameter "${name}" exceeds the maximum allowed length.`, {
          key: 'CONNECTION_PARAMETERS.DATABASE_PARAMETER_VALUE_TOO_LONG',
          variables: { MAX_SIZE: PARAMETER_VALUE_LIMIT, PARAMETER_NAME: name },
        });
    }
  }

  private findByName(parentIdentifier: string, name: string): StoredConnection | undefined {
    for (const connection of this.connections.values())
      if (connection.parentIdentifier === parentIdentifier && connection.name === name) return connection;
    return undefined;
  }

  /**
   * POST …/connections, in the order the real stack checks: attribute filter and parameter copy (NPE → 500),
   * parameter size (413), create permission (403), blank name and duplicate name in the parent (400), then the
   * INSERT (unknown parent group or missing protocol violate constraints → 500).
   */
  createConnection(username: string, body: unknown): Record<string, unknown> {
    const input = parseConnection(body, 'Data must be submitted when creating objects.');
    const attributes = filterAttributes(CONNECTION_ATTRIBUTES, input.attributes);
    if (input.parameters === null) throw internalError();
    this.validateParameters(input.parameters);
    if (!this.isAdmin(username) && !this.permissionsOf(username).system.has('CREATE_CONNECTION')) throw permissionDenied();
    if (isBlank(input.name)) throw badRequest('Connection names must not be blank.');
    const parentIdentifier = input.parentIdentifier ?? ROOT;
    if (this.findByName(parentIdentifier, input.name)) throw badRequest(`The connection "${input.name}" already exists.`);
    // No connection groups exist in the simulator, so any other parent is a foreign-key violation.
    if (parentIdentifier !== ROOT || input.protocol === null) throw internalError();

    const identifier = String(this.nextConnectionId++);
    this.connections.set(identifier, {
      identifier,
      name: input.name,
      parentIdentifier,
      protocol: input.protocol,
      parameters: stored(input.parameters),
      attributes: stored(attributes),
    });
    this.permissionsOf(username).add('connectionPermissions', identifier, 'READ', 'UPDATE', 'DELETE', 'ADMINISTER');

    // DirectoryResource#createObject returns the (filtered) object it was given, now carrying the identifier.
    return withoutNulls({
      name: input.name,
      identifier,
      parentIdentifier: input.parentIdentifier,
      protocol: input.protocol,
      parameters: input.parameters,
      attributes,
      activeConnections: 0,
    });
  }

  /**
   * PUT …/connections/{id}: replaces name, parent, protocol, parameters and attributes
   * (ConnectionObjectTranslator#applyExternalChanges).
   */
  updateConnection(username: string, identifier: string, body: unknown): void {
    const connection = this.readableConnection(username, identifier);
    const input = parseConnection(body, 'Data must be submitted when updating objects.');
    const attributes = filterAttributes(CONNECTION_ATTRIBUTES, input.attributes);
    if (input.parameters === null) throw internalError();
    this.validateParameters(input.parameters);
    if (!this.may(username, 'connectionPermissions', identifier, 'UPDATE')) throw permissionDenied();
    if (isBlank(input.name)) throw badRequest('Connection names must not be blank.');
    const parentIdentifier = input.parentIdentifier ?? ROOT;
    const clash = this.findByName(parentIdentifier, input.name);
    if (clash && clash.identifier !== identifier) throw badRequest(`The connection "${input.name}" already exists.`);
    if (parentIdentifier !== ROOT || input.protocol === null) throw internalError();

    connection.name = input.name;
    connection.parentIdentifier = parentIdentifier;
    connection.protocol = input.protocol;
    connection.parameters = stored(input.parameters);
    connection.attributes = stored(attributes);
  }

  /** DELETE …/connections/{id}. Running tunnels keep running, as they do against a real guacd. */
  deleteConnection(username: string, identifier: string): void {
    this.readableConnection(username, identifier);
    if (!this.may(username, 'connectionPermissions', identifier, 'DELETE')) throw permissionDenied();
    this.connections.delete(identifier);
    for (const user of this.users.values()) user.permissions.forget('connectionPermissions', identifier);
    // guacamole_sharing_profile.primary_connection_id references the connection ON DELETE CASCADE.
    for (const profile of [...this.sharingProfiles.values()]) {
      if (profile.primaryConnectionIdentifier !== identifier) continue;
      this.sharingProfiles.delete(profile.identifier);
      for (const user of this.users.values()) user.permissions.forget('sharingProfilePermissions', profile.identifier);
    }
  }

  connectionGroup(username: string, identifier: string, tree: boolean): Record<string, unknown> {
    if (identifier !== ROOT) throw notFound(identifier);
    const children = tree ? Object.values(this.listConnections(username, [])) : [];
    return {
      name: ROOT,
      identifier: ROOT,
      type: 'ORGANIZATIONAL',
      activeConnections: 0,
      ...(children.length > 0 ? { childConnections: children } : {}),
      attributes: {},
    };
  }

  // --- users (UserResource, PermissionSetResource) --------------------------------------------------------------

  private userJson(user: StoredUser): Record<string, unknown> {
    return withoutNulls({
      username: user.username,
      disabled: user.attributes.disabled === 'true',
      attributes: readAttributes(USER_ATTRIBUTES, user.attributes),
      lastActive: user.lastActive ?? null,
    });
  }

  private readableUser(username: string, target: string): StoredUser {
    const user = this.users.get(target);
    if (!user || !this.may(username, 'userPermissions', target, 'READ')) throw notFound(target);
    return user;
  }

  listUsers(username: string, filter: ObjectPermissionType[]): Record<string, unknown> {
    const names = this.visible(username, 'userPermissions', [...this.users.keys()], filter);
    return Object.fromEntries(names.map((name) => [name, this.userJson(this.users.get(name)!)]));
  }

  getUser(username: string, target: string): Record<string, unknown> {
    return this.userJson(this.readableUser(username, target));
  }

  /** POST …/users (JDBC UserService#beforeCreate). The response echoes the body as given, password included. */
  createUser(username: string, body: unknown): Record<string, unknown> {
    const input = parseUser(body, 'Data must be submitted when creating objects.');
    const attributes = filterAttributes(USER_ATTRIBUTES, input.attributes);
    if (!this.isAdmin(username) && !this.permissionsOf(username).system.has('CREATE_USER')) throw permissionDenied();
    if (isBlank(input.username)) throw badRequest('The username must not be blank.');
    if (this.users.has(input.username)) throw badRequest(`User "${input.username}" already exists.`);
    if (input.password !== null) verifyPassword(this.policy, input.username, input.password, []);

    const user: StoredUser = {
      username: input.username,
      password: input.password,
      passwordSetAt: this.options.now(),
      passwordHistory: [],
      attributes: stored(attributes),
      permissions: new PermissionSet(),
    };
    this.users.set(user.username, user);
    this.permissionsOf(username).add('userPermissions', user.username, 'READ', 'UPDATE', 'DELETE', 'ADMINISTER');
    // IMPLICIT_USER_PERMISSIONS: every new user may read itself.
    user.permissions.add('userPermissions', user.username, 'READ');
    return withoutNulls({ username: user.username, password: input.password, attributes, disabled: user.attributes.disabled === 'true' });
  }

  /**
   * PUT …/users/{u}: UserResource refuses a body naming the caller; the password changes only when given
   * (UserObjectTranslator#applyExternalChanges); attributes are replaced.
   */
  updateUser(username: string, target: string, body: unknown): void {
    const user = this.readableUser(username, target);
    const input = parseUser(body, 'Data must be submitted when updating objects.');
    if (input.username === username) throw permissionDenied();
    const attributes = filterAttributes(USER_ATTRIBUTES, input.attributes);
    if (!this.may(username, 'userPermissions', target, 'UPDATE')) throw permissionDenied();
    if (input.password !== null) {
      // UserService#beforeUpdate: age only for the unprivileged, complexity and history always.
      const record = { password: user.password, setAt: user.passwordSetAt, history: user.passwordHistory };
      if (!this.isAdmin(username)) verifyPasswordAge(this.policy, record, this.options.now());
      // The history holds the passwords replaced so far, so setting the current one again passes once, then not.
      verifyPassword(this.policy, user.username, input.password, user.passwordHistory);
      this.setPassword(user, input.password);
    }
    user.attributes = stored(attributes);
  }

  deleteUser(username: string, target: string): void {
    this.readableUser(username, target);
    if (!this.may(username, 'userPermissions', target, 'DELETE')) throw permissionDenied();
    if (target === username) throw unsupported('Deleting your own user is not allowed.');
    this.users.delete(target);
    for (const user of this.users.values()) user.permissions.forget('userPermissions', target);
  }

  getPermissions(username: string, target: string): ApiPermissionSet {
    return this.readableUser(username, target).permissions.toApi();
  }

  /**
   * PATCH …/users/{u}/permissions (PermissionSetResource#patchPermissions): the body must be an array of APIPatch; per
   * entry the path prefix picks the set, `Enum.valueOf(value)` runs before the op is looked at (so "read" is a 500 even
   * for "replace"), only add/remove pass, unknown paths are 400. Changes are checked as a whole before any is stored.
   */
  patchPermissions(username: string, target: string, body: unknown): void {
    const user = this.readableUser(username, target);
    // No body means a null List, and the resource iterates it straight away.
    if (body === undefined || body === null) throw internalError();
    if (!Array.isArray(body)) throw badRequest('Cannot deserialize the permission patch: expected an array.');
    const patches = body.map((entry) => {
      if (!isPlainObject(entry)) throw badRequest('Cannot deserialize the permission patch: expected objects.');
      const op = coerceString(entry.op, 'op');
      if (op !== null && !PATCH_OPERATIONS.includes(op)) throw badRequest(`Cannot deserialize patch operation "${op}".`);
      return { op, path: coerceString(entry.path, 'path'), value: coerceString(entry.value, 'value') };
    });

    type Change = { op: 'add' | 'remove'; set: ObjectPermissionSetName | 'systemPermissions'; identifier: string; type: string };
    const changes: Change[] = [];
    for (const patch of patches) {
      if (patch.path === null) throw internalError();
      const path = patch.path;
      const prefix = OBJECT_PERMISSION_SETS.find((name) => path.startsWith(`/${name}/`));
      let change: Omit<Change, 'op'>;
      if (prefix) {
        if (patch.value === null || !isObjectPermissionType(patch.value)) throw internalError();
        change = { set: prefix, identifier: path.slice(prefix.length + 2), type: patch.value };
      } else if (path === '/systemPermissions') {
        if (patch.value === null || !isSystemPermissionType(patch.value)) throw internalError();
        change = { set: 'systemPermissions', identifier: '', type: patch.value };
      } else {
        throw badRequest(`Unsupported patch path: "${path}"`);
      }
      if (patch.op !== 'add' && patch.op !== 'remove') throw badRequest(`Unsupported patch operation: "${patch.op}"`);
      changes.push({ ...change, op: patch.op });
    }

    for (const change of changes) {
      if (change.set === 'systemPermissions') {
        if (!this.isAdmin(username)) throw permissionDenied();
      } else {
        if (!this.may(username, change.set, change.identifier, 'ADMINISTER')) throw permissionDenied();
        // Granting on an object that does not exist violates the permission table's foreign key.
        if (change.op === 'add' && !this.objectExists(change.set, change.identifier)) throw internalError();
      }
    }

    for (const change of changes) {
      if (change.set === 'systemPermissions') {
        if (!isSystemPermissionType(change.type)) continue;
        if (change.op === 'add') user.permissions.system.add(change.type);
        else user.permissions.system.delete(change.type);
      } else if (isObjectPermissionType(change.type)) {
        if (change.op === 'add') user.permissions.add(change.set, change.identifier, change.type);
        else user.permissions.remove(change.set, change.identifier, change.type);
      }
    }
  }

  private objectExists(set: ObjectPermissionSetName, identifier: string): boolean {
    switch (set) {
      case 'connectionPermissions':
        return this.connections.has(identifier);
      case 'userPermissions':
        return this.users.has(identifier);
      case 'activeConnectionPermissions':
        return this.active.has(identifier);
      case 'sharingProfilePermissions':
        return this.sharingProfiles.has(identifier);
      default:
        // The simulator has no connection groups or user groups.
        return false;
    }
  }

  // --- active connections and the tunnel (ActiveConnectionResource, TunnelRequest) ------------------------------

  /**
   * GET …/activeConnections: admins see all; others see those of connections they may read, with user and
   * remote host only on their own (TrackedActiveConnection hides them otherwise).
   */
  listActiveConnections(username: string): Record<string, unknown> {
    const entries = [...this.active.values()]
      .filter((record) => this.may(username, 'connectionPermissions', record.connectionIdentifier, 'READ'))
      .map((record) => [record.identifier, this.activeConnectionJson(username, record)] as const);
    return Object.fromEntries(entries);
  }

  /** APIActiveConnection; user and remote host only for admins and the connection's own user (TrackedActiveConnection). */
  private activeConnectionJson(username: string, record: ActiveConnection): Record<string, unknown> {
    const privileged = this.isAdmin(username) || record.username === username;
    return {
      identifier: record.identifier,
      connectionIdentifier: record.connectionIdentifier,
      startDate: record.startDate,
      remoteHost: privileged ? record.remoteHost : null,
      username: privileged ? record.username : null,
      connectable: privileged,
    };
  }

  /** ActiveConnectionService#retrieveObjects: the records of connections the user may read, else 404 (DirectoryResource). */
  private visibleActive(username: string, identifier: string): ActiveConnection {
    const record = this.active.get(identifier);
    if (!record || !this.may(username, 'connectionPermissions', record.connectionIdentifier, 'READ')) throw notFound(identifier);
    return record;
  }

  getActiveConnection(username: string, identifier: string): Record<string, unknown> {
    return this.activeConnectionJson(username, this.visibleActive(username, identifier));
  }

  /**
   * PATCH …/activeConnections with `[{op: 'remove', path: '/<id>'}, …]`: how an admin kills live connections
   * (DirectoryResource#patchObjects → ActiveConnectionService#deleteObject closes the tunnel; the web client's
   * activeConnectionService.deleteActiveConnections). One not (or no longer) visible is skipped silently; closing
   * needs DELETE on the active connection or admin rights. A sharer's closing ends its joiners with it, as anywhere.
   * Answers APIPatchResponse.
   */
  killActiveConnections(username: string, body: unknown): Record<string, unknown> {
    if (!Array.isArray(body)) throw badRequest('Cannot deserialize the patch: expected an array.');
    const patches = body.map((entry) => {
      if (!isPlainObject(entry) || typeof entry.path !== 'string') throw badRequest('Cannot deserialize the patch: expected objects.');
      if (!entry.path.startsWith('/')) throw badRequest('Patch paths must start with "/".');
      if (!['add', 'replace', 'remove'].includes(String(entry.op)))
        throw unsupported(`Unsupported patch operation "${String(entry.op)}". Only add, replace, and remove are supported.`);
      // Creating or updating an active connection: ActiveConnectionService answers "Permission denied.".
      if (entry.op !== 'remove') throw permissionDenied();
      return { op: 'remove', identifier: entry.path.slice(1), path: entry.path };
    });
    const closing = patches.filter(({ identifier }) => {
      const record = this.active.get(identifier);
      return record !== undefined && this.may(username, 'connectionPermissions', record.connectionIdentifier, 'READ');
    });
    if (closing.some(({ identifier }) => !this.may(username, 'activeConnectionPermissions', identifier, 'DELETE')))
      throw permissionDenied();
    for (const { identifier } of closing) for (const killed of this.endActive(identifier)) this.onTunnelKilled(killed);
    return { patches };
  }

  /** GET …/connections/{id}/history (ConnectionResource#getConnectionHistory): READ on the connection. */
  connectionHistory(username: string, identifier: string): Record<string, unknown>[] {
    this.readableConnection(username, identifier);
    return this.history.ofConnection(identifier);
  }

  /**
   * GET …/activeConnections/{id}/sharingCredentials/{profile} (ActiveConnectionResource → TrackedActiveConnection#
   * getSharingCredentials → ConnectionSharingService#shareConnection): the profile must be readable by the caller and
   * belong to the shared connection, else 403 "Permission denied."; answers APIUserCredentials with the new key.
   */
  sharingCredentials(username: string, activeIdentifier: string, profileIdentifier: string): Record<string, unknown> {
    const record = this.visibleActive(username, activeIdentifier);
    return this.share(username, record, profileIdentifier);
  }

  /** GET /api/session/tunnels/{tunnel}/activeConnection/sharingCredentials/{profile}: a tunnel of this very session. */
  tunnelSharingCredentials(session: Session, tunnel: string, profileIdentifier: string): Record<string, unknown> {
    const record = session.tunnels.has(tunnel) ? this.active.get(tunnel) : undefined;
    if (!record) throw new GuacError(404, 'NOT_FOUND', 'No such tunnel.');
    return this.share(session.username, record, profileIdentifier);
  }

  /** GET /api/session/tunnels: the UUIDs of this session's open tunnels (TunnelCollectionResource). */
  listTunnels(session: Session): string[] {
    return [...session.tunnels];
  }

  private share(username: string, record: ActiveConnection, profileIdentifier: string): Record<string, unknown> {
    const profile = this.sharingProfiles.get(profileIdentifier);
    const readable = profile && this.may(username, 'sharingProfilePermissions', profileIdentifier, 'READ');
    // Only the sharer (or an admin) holds the record's tunnel; a joined connection cannot be shared on.
    const own = this.isAdmin(username) || record.username === username;
    if (!readable || !own || record.sharedFrom !== undefined || profile.primaryConnectionIdentifier !== record.connectionIdentifier)
      throw permissionDenied();
    const shareKey = newShareKey();
    this.shared.add({
      shareKey,
      activeConnectionIdentifier: record.identifier,
      sharingProfileIdentifier: profile.identifier,
      tunnels: new Set(),
    });
    return { expected: [{ name: 'key', type: 'QUERY_PARAMETER' }], values: { key: shareKey } };
  }

  // --- the `-shared` data source of a share-key session (SharedUserContext, SharedConnection) -------------------

  /** SharedConnection: identifier = the share key, the shared connection's name and protocol, its sharer. */
  private sharedConnectionJson(key: string): Record<string, unknown> | null {
    const definition = this.shared.get(key);
    const primary = definition ? this.active.get(definition.activeConnectionIdentifier) : undefined;
    const connection = primary ? this.connections.get(primary.connectionIdentifier) : undefined;
    if (!primary || !connection) return null;
    return {
      name: connection.name,
      identifier: key,
      parentIdentifier: ROOT,
      protocol: connection.protocol,
      attributes: { 'jdbc-shared-by': primary.username },
      activeConnections: 0,
    };
  }

  sharedConnections(session: Session): Record<string, unknown> {
    const entries = [...session.shareKeys].flatMap((key) => {
      const json = this.sharedConnectionJson(key);
      return json ? [[key, json] as const] : [];
    });
    return Object.fromEntries(entries);
  }

  getSharedConnection(session: Session, key: string): Record<string, unknown> {
    const json = session.shareKeys.has(key) ? this.sharedConnectionJson(key) : null;
    if (!json) throw notFound(key);
    return json;
  }

  // --- sharing profiles (SharingProfileResource, JDBC SharingProfileService) -------------------------------------

  private sharingProfileJson(profile: StoredSharingProfile): Record<string, unknown> {
    return {
      name: profile.name,
      identifier: profile.identifier,
      primaryConnectionIdentifier: profile.primaryConnectionIdentifier,
      attributes: { ...profile.attributes },
    };
  }

  private readableSharingProfile(username: string, identifier: string): StoredSharingProfile {
    const profile = this.sharingProfiles.get(identifier);
    if (!profile || !this.may(username, 'sharingProfilePermissions', identifier, 'READ')) throw notFound(identifier);
    return profile;
  }

  listSharingProfiles(username: string, filter: ObjectPermissionType[]): Record<string, unknown> {
    const identifiers = this.visible(username, 'sharingProfilePermissions', [...this.sharingProfiles.keys()], filter);
    return Object.fromEntries(identifiers.map((id) => [id, this.sharingProfileJson(this.sharingProfiles.get(id)!)]));
  }

  getSharingProfile(username: string, identifier: string): Record<string, unknown> {
    return this.sharingProfileJson(this.readableSharingProfile(username, identifier));
  }

  /** SharingProfileResource#getParameters: ADMINISTER system permission or UPDATE on the profile. */
  sharingProfileParameters(username: string, identifier: string): Record<string, string> {
    const profile = this.readableSharingProfile(username, identifier);
    if (!this.isAdmin(username) && !this.permissionsOf(username).has('sharingProfilePermissions', identifier, 'UPDATE'))
      throw permissionDenied('Permission to read sharing profile parameters denied.');
    return { ...profile.parameters };
  }

  /**
   * POST …/sharingProfiles: attributes filtered (none in the JDBC schema; a missing map is an NPE → 500), then
   * CREATE_SHARING_PROFILE (or ADMINISTER), UPDATE on the primary connection (ModeledChildDirectoryObjectService), a
   * non-blank name unique within that connection, and the INSERT (an unknown connection violates its foreign key).
   */
  createSharingProfile(username: string, body: unknown): Record<string, unknown> {
    if (body === undefined || body === null) throw badRequest('Data must be submitted when creating objects.');
    if (!isPlainObject(body)) throw badRequest('Cannot deserialize the sharing profile: expected an object.');
    const name = coerceString(body.name, 'name');
    const primary = coerceString(body.primaryConnectionIdentifier, 'primaryConnectionIdentifier');
    const parameters = coerceStringMap(body.parameters, 'parameters');
    const attributes = filterAttributes([], coerceStringMap(body.attributes, 'attributes'));
    if (parameters === null) throw internalError();
    if (!this.isAdmin(username) && !this.permissionsOf(username).system.has('CREATE_SHARING_PROFILE')) throw permissionDenied();
    if (primary === null) throw internalError();
    if (!this.may(username, 'connectionPermissions', primary, 'UPDATE')) throw permissionDenied();
    if (isBlank(name)) throw badRequest('Sharing profile names must not be blank.');
    for (const profile of this.sharingProfiles.values())
      if (profile.primaryConnectionIdentifier === primary && profile.name === name)
        throw badRequest(`The sharing profile "${name}" already exists.`);
    if (!this.connections.has(primary)) throw internalError();

    const identifier = String(this.nextSharingProfileId++);
    this.sharingProfiles.set(identifier, {
      identifier,
      name,
      primaryConnectionIdentifier: primary,
      parameters: stored(parameters),
      attributes: stored(attributes),
    });
    this.permissionsOf(username).add('sharingProfilePermissions', identifier, 'READ', 'UPDATE', 'DELETE', 'ADMINISTER');
    return withoutNulls({ name, identifier, primaryConnectionIdentifier: primary, parameters, attributes });
  }

  deleteSharingProfile(username: string, identifier: string): void {
    this.readableSharingProfile(username, identifier);
    if (!this.may(username, 'sharingProfilePermissions', identifier, 'DELETE')) throw permissionDenied();
    this.sharingProfiles.delete(identifier);
    this.history.forgetProfile(identifier);
    for (const user of this.users.values()) user.permissions.forget('sharingProfilePermissions', identifier);
  }

  /**
   * TunnelRequestService#createTunnel: request parameters first (400 → 768), then the session (769), the data
   * source (516), and the connection, which must be readable by that user (771).
   */
  openTunnel(request: TunnelRequest): ActiveConnection {
    try {
      for (const [name, value] of [
        ['GUAC_DATA_SOURCE', request.dataSource],
        ['GUAC_ID', request.id],
        ['GUAC_TYPE', request.type],
      ] as const)
        if (value === null) throw badRequest(`Parameter "${name}" is required.`);
      for (const [name, value] of [
        ['GUAC_WIDTH', request.width],
        ['GUAC_HEIGHT', request.height],
        ['GUAC_DPI', request.dpi],
      ] as const)
        if (value !== null && !/^-?\d+$/.test(value)) throw badRequest(`Parameter "${name}" must be a valid integer.`);
      if (!['c', 'g', 'a'].includes(request.type ?? '')) throw badRequest(`Illegal identifier type: "${request.type}"`);

      const session = this.session(request.token);
      const context = this.context(request.dataSource ?? '');
      const id = request.id ?? '';
      if (context === 'secondary' && request.dataSource === this.sharedDataSource) return this.join(session, id, request);
      const connection = context === 'primary' ? this.connections.get(id) : undefined;
      // Groups and joining active connections are not simulated; the real service answers both with 771 when
      // the directory has no such object.
      if (request.type !== 'c' || !connection || !this.may(session.username, 'connectionPermissions', id, 'READ'))
        throw permissionDenied('Requested connection is not authorized.');

      const record: ActiveConnection = {
        identifier: randomUUID(),
        connectionIdentifier: id,
        username: session.username,
        remoteHost: request.remoteHost,
        startDate: this.options.now(),
        token: session.token,
        readOnly: false,
        input: { accepted: 0, ignored: 0 },
      };
      this.active.set(record.identifier, record);
      this.history.start({
        uuid: record.identifier,
        connectionIdentifier: id,
        connectionName: connection.name,
        sharingProfileIdentifier: null,
        sharingProfileName: null,
        username: record.username,
        remoteHost: record.remoteHost,
        startDate: record.startDate,
      });
      session.tunnels.add(record.identifier);
      connection.lastActive = record.startDate;
      this.counters.tunnelsOpened++;
      return record;
    } catch (error) {
      this.counters.tunnelsRefused++;
      throw error;
    }
  }

  /**
   * A share-key session's tunnel to `GUAC_ID` = the key (SharedConnection#connect): it joins the sharer's live
   * connection with the profile's parameters. A key this session was not given, or one invalidated since, is not
   * in its directory: 771 like any connection it may not use.
   */
  private join(session: Session, key: string, request: TunnelRequest): ActiveConnection {
    const definition = session.shareKeys.has(key) ? this.shared.get(key) : undefined;
    const primary = definition ? this.active.get(definition.activeConnectionIdentifier) : undefined;
    const profile = definition ? this.sharingProfiles.get(definition.sharingProfileIdentifier) : undefined;
    if (request.type !== 'c' || !definition || !primary) throw permissionDenied('Requested connection is not authorized.');
    // The key outlives its profile (SharedConnectionDefinition holds the profile read when the key was minted), but
    // the joiner's history row names the profile, and guacamole_connection_history_ibfk_3 refuses a deleted one: the
    // insert fails, the tunnel is released, and the join ends in a server error (AbstractGuacamoleTunnelService
    // #assignGuacamoleTunnel). So a deleted profile locks out every key minted under it.
    if (!profile) throw internalError();
    const record: ActiveConnection = {
      identifier: randomUUID(),
      connectionIdentifier: primary.connectionIdentifier,
      username: session.username,
      remoteHost: request.remoteHost,
      startDate: this.options.now(),
      token: session.token,
      sharingProfileIdentifier: definition.sharingProfileIdentifier,
      sharedFrom: primary.identifier,
      shareKey: key,
      readOnly: profile.parameters['read-only'] === 'true',
      input: { accepted: 0, ignored: 0 },
    };
    this.active.set(record.identifier, record);
    this.history.start({
      uuid: record.identifier,
      connectionIdentifier: record.connectionIdentifier,
      connectionName: this.connections.get(record.connectionIdentifier)?.name ?? '',
      sharingProfileIdentifier: profile.identifier,
      sharingProfileName: profile.name,
      username: record.username,
      remoteHost: record.remoteHost,
      startDate: record.startDate,
    });
    session.tunnels.add(record.identifier);
    definition.tunnels.add(record.identifier);
    this.counters.tunnelsOpened++;
    return record;
  }

  /** Keyboard or mouse input from a tunnel's user: guacd drops it for a read-only joiner. Answers whether it counted. */
  recordInput(identifier: string): boolean {
    const record = this.active.get(identifier);
    if (!record) return false;
    if (record.readOnly) record.input.ignored++;
    else record.input.accepted++;
    return !record.readOnly;
  }

  /** The tunnel's WebSocket closed. A sharer's closing ends everyone who joined through its keys. */
  closeTunnel(identifier: string): void {
    const [, ...joined] = this.endActive(identifier);
    for (const other of joined) this.onTunnelKilled(other);
  }

  // --- introspection for tests and /__sim ---------------------------------------------------------------------

  snapshot() {
    return {
      connections: [...this.connections.values()].map((connection) => ({
        ...connection,
        parameters: { ...connection.parameters },
        attributes: { ...connection.attributes },
        activeConnections: this.activeCount(connection.identifier),
      })),
      users: [...this.users.values()].map((user) => ({
        username: user.username,
        attributes: { ...user.attributes },
        permissions: user.permissions.toApi(),
      })),
      activeConnections: [...this.active.values()].map(({ token: _token, shareKey: _key, ...record }) => ({
        ...record,
        input: { ...record.input },
      })),
      sharingProfiles: [...this.sharingProfiles.values()].map((profile) => ({ ...profile, parameters: { ...profile.parameters } })),
      shareKeys: this.shared.size,
      sessions: [...this.sessions.values()].map((session) => ({
        token: session.token,
        username: session.username,
        lastAccess: session.lastAccess,
        tunnels: session.tunnels.size,
      })),
    };
  }

  /** For the tunnel transport: how a refusal is reported on the WebSocket. */
  static tunnelStatusOf(error: unknown) {
    return error instanceof GuacError && error.details.tunnel ? error.details.tunnel : TUNNEL_STATUS.SERVER_ERROR;
  }
}
