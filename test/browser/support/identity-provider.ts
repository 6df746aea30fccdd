/**
 * A real OpenID provider (oidc-provider) on loopback for the sign-in test: one client
 * registered for the dashboard's callback (confidential, PKCE required), two accounts,
 * RS256 ID tokens from a key made for the run, and the provider's own login and consent
 * pages (its development interactions), which the browser fills in like a person would.
 */
import type { Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface TestAccount {
  name: string;
  roles: string[];
}

export const OIDC_CLIENT_ID = 'cdaas-dashboard';

export async function startIdentityProvider(opts: {
  port: number;
  clientSecret: string;
  redirectUri: string;
  accounts: Record<string, TestAccount>;
}): Promise<{ issuer: string; close(): Promise<void> }> {
  const issuer = `http://127.0.0.1:${opts.port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-signing-key', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT_ID,
        client_secret: opts.clientSecret,
        redirect_uris: [opts.redirectUri],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'roles'],
    claims: { openid: ['sub'], profile: ['name'], roles: ['roles'] },
    // Scope claims in the ID token itself (the dashboard reads roles from it, as from many IdPs).
    conformIdTokenClaims: false,
    findAccount: (_ctx, id) => {
      const account = opts.accounts[id];
      return account ? { accountId: id, claims: () => ({ sub: id, name: account.name, roles: account.roles }) } : undefined;
    },
    cookies: { keys: ['browser-test-cookie-key-0123456789'] },
    jwks: { keys: [jwk] },
    features: { devInteractions: { enabled: true } },
  });
  const server: Server = provider.listen(opts.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    issuer,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
