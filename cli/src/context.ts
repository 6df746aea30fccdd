/**
 * What every command gets: the output, and (made on first use) an SDK client for the API
 * whose token comes from CDAAS_TOKEN or the saved login, renewed with the login's refresh
 * token when it is about to expire. No command but `login` takes a token on its command
 * line, where other users of the machine could read it (and `login --token -` reads stdin).
 */
import { type CdaasClient, createClient } from '@cdaas/sdk';
import { readLogin, resolveUrl, saveLogin } from './config.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { refreshLogin } from './oidc.ts';
import type { Output } from './output.ts';

export interface GlobalOptions {
  url?: string;
  json?: boolean;
  progress?: boolean;
}

export interface Context {
  out: Output;
  options: GlobalOptions;
  client(): CdaasClient;
}

const RENEW_BEFORE_MS = 60_000;

async function currentToken(): Promise<string> {
  const fromEnv = process.env.CDAAS_TOKEN;
  if (fromEnv) return fromEnv;
  const saved = readLogin();
  if (!saved?.token) throw new CliError('Not signed in: run cdaas login (or set CDAAS_TOKEN)', EXIT.UNAUTHENTICATED);
  if (saved.refresh && saved.expiresAt !== undefined && saved.expiresAt - Date.now() < RENEW_BEFORE_MS) {
    const renewed = await refreshLogin(saved.refresh);
    saveLogin({
      ...saved,
      token: renewed.accessToken,
      ...(renewed.expiresAt ? { expiresAt: renewed.expiresAt } : {}),
      refresh: { ...saved.refresh, refreshToken: renewed.refreshToken ?? saved.refresh.refreshToken },
    });
    return renewed.accessToken;
  }
  return saved.token;
}

export function createContext(out: Output, options: GlobalOptions): Context {
  let client: CdaasClient | undefined;
  return {
    out,
    options,
    client() {
      client ??= createClient({ baseUrl: resolveUrl(options.url), token: currentToken });
      return client;
    },
  };
}
