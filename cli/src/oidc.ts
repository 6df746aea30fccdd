/**
 * Sign-in with the OAuth 2.0 Device Authorization Grant (RFC 8628) where the identity
 * provider offers it (its discovery document names a device_authorization_endpoint): the
 * CLI shows a code and an address, the person signs in there in any browser, and the CLI
 * receives the tokens. The API needs a JWT access token for its audience: name it with
 * --resource (RFC 8707) where the provider issues per-resource tokens.
 */
import { CliError, EXIT } from './exit-codes.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DevicePrompt {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresInSeconds: number;
}

export interface DeviceLogin {
  accessToken: string;
  refreshToken?: string;
  expiresAt?: number;
  tokenEndpoint: string;
}

interface TokenAnswer {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
  error?: string;
  error_description?: string;
}

const form = (fields: Record<string, string | undefined>) => {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) body.set(k, v);
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body };
};

async function discover(issuer: string): Promise<{ device_authorization_endpoint?: string; token_endpoint: string }> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url).catch((err: unknown) => {
    throw new CliError(`Could not reach the identity provider at ${url}: ${String(err)}`, EXIT.UNAVAILABLE);
  });
  if (!res.ok) throw new CliError(`The identity provider answered ${res.status} for ${url}`, EXIT.UNAVAILABLE);
  return (await res.json()) as { device_authorization_endpoint?: string; token_endpoint: string };
}

export async function deviceLogin(opts: {
  issuer: string;
  clientId: string;
  scope: string;
  resource?: string;
  onPrompt: (prompt: DevicePrompt) => void;
}): Promise<DeviceLogin> {
  const meta = await discover(opts.issuer);
  if (!meta.device_authorization_endpoint) {
    throw new CliError(
      `${opts.issuer} does not offer the device flow (no device_authorization_endpoint in its discovery document); get a token elsewhere and run cdaas login --token <token>`,
      EXIT.USAGE,
    );
  }
  const started = await fetch(
    meta.device_authorization_endpoint,
    form({ client_id: opts.clientId, scope: opts.scope, resource: opts.resource }),
  );
  const device = (await started.json()) as {
    device_code?: string;
    user_code?: string;
    verification_uri?: string;
    verification_uri_complete?: string;
    expires_in?: number;
    interval?: number;
    error?: string;
    error_description?: string;
  };
  if (!started.ok || !device.device_code || !device.user_code || !device.verification_uri) {
    throw new CliError(
      `The identity provider refused the sign-in: ${device.error_description ?? device.error ?? started.status}`,
      EXIT.UNAUTHENTICATED,
    );
  }
  const expiresIn = device.expires_in ?? 600;
  opts.onPrompt({
    userCode: device.user_code,
    verificationUri: device.verification_uri,
    expiresInSeconds: expiresIn,
    ...(device.verification_uri_complete ? { verificationUriComplete: device.verification_uri_complete } : {}),
  });
  let interval = (device.interval ?? 5) * 1000;
  const deadline = Date.now() + expiresIn * 1000;
  while (Date.now() < deadline) {
    await sleep(interval);
    const res = await fetch(
      meta.token_endpoint,
      form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: opts.clientId }),
    );
    const answer = (await res.json()) as TokenAnswer;
    if (res.ok && answer.access_token) return toLogin(answer, meta.token_endpoint);
    if (answer.error === 'authorization_pending') continue;
    // RFC 8628 3.5: slow down by 5 seconds, for this and every later request.
    if (answer.error === 'slow_down') {
      interval += 5000;
      continue;
    }
    const why =
      answer.error === 'access_denied' ? 'the sign-in was declined' : (answer.error_description ?? answer.error ?? String(res.status));
    throw new CliError(`Sign-in failed: ${why}`, EXIT.UNAUTHENTICATED);
  }
  throw new CliError('Sign-in timed out: the code expired before it was used', EXIT.TIMEOUT);
}

/** A new access token from the refresh token of an earlier device-flow login. */
export async function refreshLogin(refresh: { tokenEndpoint: string; clientId: string; refreshToken: string }): Promise<DeviceLogin> {
  const res = await fetch(
    refresh.tokenEndpoint,
    form({ grant_type: 'refresh_token', refresh_token: refresh.refreshToken, client_id: refresh.clientId }),
  );
  const answer = (await res.json().catch(() => ({}))) as TokenAnswer;
  if (!res.ok || !answer.access_token) {
    throw new CliError('The saved sign-in has expired and could not be renewed: run cdaas login again', EXIT.UNAUTHENTICATED);
  }
  return toLogin({ refresh_token: refresh.refreshToken, ...answer }, refresh.tokenEndpoint);
}

function toLogin(answer: TokenAnswer, tokenEndpoint: string): DeviceLogin {
  return {
    accessToken: answer.access_token ?? '',
    tokenEndpoint,
    ...(answer.refresh_token ? { refreshToken: answer.refresh_token } : {}),
    ...(answer.expires_in ? { expiresAt: Date.now() + answer.expires_in * 1000 } : {}),
  };
}
