/**
 * Secrets the edge must use again, kept encrypted at rest: a webhook's signing secret is
 * needed in the clear to sign each delivery, so a hash will not do; it is stored (and
 * queued) as AES-256-GCM ciphertext under a key from ENCRYPTION_KEY (a Worker secret), or,
 * without one, derived from JWT_SECRET. Stored form: `enc:v1:<iv>.<ciphertext>` in base64url.
 * Values stored before encryption (plain `whsec_…`) are still read as they are.
 */
import type { Config } from '../env';
import { ApiError } from '../errors';

const PREFIX = 'enc:v1:';
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), 'HKDF', false, ['deriveKey']);
      return crypto.subtle.deriveKey(
        { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode('cdaas stored secrets v1') },
        base,
        { name: 'AES-GCM', length: 256 },
        false,
        ['encrypt', 'decrypt'],
      );
    })();
    keys.set(secret, key);
  }
  return key;
}

function rootSecret(cfg: Config): string {
  const secret = cfg.ENCRYPTION_KEY ?? cfg.JWT_SECRET;
  if (!secret) throw new ApiError('FORBIDDEN', 'Webhooks are not configured: set ENCRYPTION_KEY');
  return secret;
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
const unb64url = (text: string) => Uint8Array.from(atob(text.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0));

export async function encryptSecret(cfg: Config, plain: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await keyFor(rootSecret(cfg)), new TextEncoder().encode(plain));
  return `${PREFIX}${b64url(iv)}.${b64url(new Uint8Array(ct))}`;
}

export async function decryptSecret(cfg: Config, stored: string): Promise<string> {
  if (!stored.startsWith(PREFIX)) return stored;
  const [iv = '', ct = ''] = stored.slice(PREFIX.length).split('.', 2);
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64url(iv) }, await keyFor(rootSecret(cfg)), unb64url(ct));
  return new TextDecoder().decode(plain);
}

export const isEncrypted = (stored: string) => stored.startsWith(PREFIX);
