/**
 * The simulator's failures, shaped like Guacamole's: every REST error is a GuacamoleException that RESTExceptionMapper
 * turns into an APIError body with a status taken from GuacamoleStatus.
 */

export type ApiErrorType =
  | 'BAD_REQUEST'
  | 'INVALID_CREDENTIALS'
  | 'INSUFFICIENT_CREDENTIALS'
  | 'INTERNAL_ERROR'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'STREAM_ERROR';

export interface ExpectedField {
  name: string;
  type: string;
}

export interface TranslatableMessage {
  key: string;
  variables: Record<string, string | number>;
}

/** What the tunnel reports when it refuses: WebSocket close code + Guacamole status code (GuacamoleStatus.java). */
export interface TunnelStatus {
  wsCode: number;
  guacCode: number;
}

export const TUNNEL_STATUS = {
  SUCCESS: { wsCode: 1000, guacCode: 0x0000 },
  RESOURCE_NOT_FOUND: { wsCode: 1002, guacCode: 0x0204 },
  CLIENT_BAD_REQUEST: { wsCode: 1002, guacCode: 0x0300 },
  CLIENT_UNAUTHORIZED: { wsCode: 1008, guacCode: 0x0301 },
  CLIENT_FORBIDDEN: { wsCode: 1008, guacCode: 0x0303 },
  SERVER_ERROR: { wsCode: 1011, guacCode: 0x0200 },
} as const satisfies Record<string, TunnelStatus>;

export class GuacError extends Error {
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly details: {
      expected?: ExpectedField[];
      translatable?: TranslatableMessage;
      /** GuacamoleUnauthorizedException: the mapper also destroys the session of a `token` parameter. */
      unauthorized?: boolean;
      /** How the WebSocket tunnel reports this exception when it happens while opening a tunnel. */
      tunnel?: TunnelStatus;
    } = {},
  ) {
    super(message);
    this.name = 'GuacError';
  }
}

const USERNAME_PASSWORD: ExpectedField[] = [
  { name: 'username', type: 'USERNAME' },
  { name: 'password', type: 'PASSWORD' },
];

/** Unknown or expired token (AuthenticationService#getGuacamoleSession): 403, not 401. */
export const sessionDenied = () =>
  new GuacError(403, 'PERMISSION_DENIED', 'Permission Denied.', { unauthorized: true, tunnel: TUNNEL_STATUS.CLIENT_UNAUTHORIZED });

/** JDBCAuthenticationProviderService: bad username/password, no such user, or a disabled account. */
export const invalidLogin = () =>
  new GuacError(403, 'INVALID_CREDENTIALS', 'Invalid login', { expected: USERNAME_PASSWORD, unauthorized: true });

/** Lacking an object or system permission (ModeledDirectoryObjectService#beforeCreate/Update/Delete). */
export const permissionDenied = (message = 'Permission denied.') =>
  new GuacError(403, 'PERMISSION_DENIED', message, { tunnel: TUNNEL_STATUS.CLIENT_FORBIDDEN });

export const notFound = (identifier: string) =>
  new GuacError(404, 'NOT_FOUND', `Not found: "${identifier}"`, { tunnel: TUNNEL_STATUS.RESOURCE_NOT_FOUND });

export const unknownDataSource = (dataSource: string) =>
  new GuacError(404, 'NOT_FOUND', `Session not associated with authentication provider "${dataSource}".`, {
    tunnel: TUNNEL_STATUS.RESOURCE_NOT_FOUND,
  });

export const badRequest = (message: string) => new GuacError(400, 'BAD_REQUEST', message, { tunnel: TUNNEL_STATUS.CLIENT_BAD_REQUEST });

/** GuacamoleClientOverrunException: a client error type with HTTP 413. */
export const overrun = (message: string, translatable?: TranslatableMessage) =>
  new GuacError(413, 'BAD_REQUEST', message, translatable ? { translatable } : {});

/** Any unchecked exception (NPE, SQL constraint, Enum.valueOf) is wrapped by RESTExceptionMapper. */
export const internalError = () =>
  new GuacError(500, 'INTERNAL_ERROR', 'Unexpected internal error', { tunnel: TUNNEL_STATUS.SERVER_ERROR });

/** GuacamoleUnsupportedException is a server exception: INTERNAL_ERROR type, HTTP 501. */
export const unsupported = (message: string) => new GuacError(501, 'INTERNAL_ERROR', message);

/** APIError.java serialised without a NON_NULL filter, so absent members are explicit nulls. */
export function apiErrorBody(error: GuacError): Record<string, unknown> {
  return {
    message: error.message,
    translatableMessage: error.details.translatable ?? { key: 'APP.TEXT_UNTRANSLATED', variables: { MESSAGE: error.message } },
    statusCode: null,
    expected: error.details.expected ?? null,
    patches: null,
    type: error.type,
  };
}
