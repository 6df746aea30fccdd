/**
 * Where the CLI finds the API and its token: command-line options first, then CDAAS_URL
 * and CDAAS_TOKEN, then the config file `cdaas login` writes (mode 0600) at
 * $XDG_CONFIG_HOME/cdaas/config.json, ~/.config/cdaas/config.json, or on Windows
 * %APPDATA%\cdaas\config.json.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError, EXIT } from './exit-codes.ts';

export interface SavedLogin {
  url: string;
  token: string;
  /** When the token expires (ms since the epoch), if known. */
  expiresAt?: number;
  /** How to renew it (device-flow logins with a refresh token). */
  refresh?: { tokenEndpoint: string; clientId: string; refreshToken: string };
}

export function configFile(): string {
  const base =
    process.env.XDG_CONFIG_HOME || (process.platform === 'win32' && process.env.APPDATA ? process.env.APPDATA : join(homedir(), '.config'));
  return join(base, 'cdaas', 'config.json');
}

export function readLogin(): SavedLogin | null {
  try {
    return JSON.parse(readFileSync(configFile(), 'utf8')) as SavedLogin;
  } catch {
    return null;
  }
}

export function saveLogin(login: SavedLogin): string {
  const file = configFile();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  // writeFileSync's mode applies only to a new file: an older one keeps its own.
  chmodSync(file, 0o600);
  return file;
}

export function forgetLogin(): boolean {
  const file = configFile();
  try {
    readFileSync(file);
  } catch {
    return false;
  }
  rmSync(file, { force: true });
  return true;
}

/** The API's address: --url, CDAAS_URL, or the saved login's. */
export function resolveUrl(flag: string | undefined): string {
  const url = flag || process.env.CDAAS_URL || readLogin()?.url;
  if (!url) throw new CliError('No API address: pass --url, set CDAAS_URL, or run cdaas login --url <address>', EXIT.UNAUTHENTICATED);
  return url.replace(/\/+$/, '');
}
