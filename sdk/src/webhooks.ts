/**
 * Checking a webhook delivery before trusting it. The API signs each delivery with the
 * subscription's secret: `X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`. Verify against the raw body exactly as received (not re-serialised
 * JSON), and deduplicate deliveries on their X-Webhook-Id.
 */
const encoder = new TextEncoder();

export interface VerifyWebhookOptions {
  /** Refuse signatures older (or newer) than this (default 300 s): a replayed old delivery fails. */
  toleranceSeconds?: number;
  /** The current time in ms (tests). */
  now?: number;
}

export async function verifyWebhook(
  secret: string,
  rawBody: string | Uint8Array,
  header: string | null | undefined,
  options: VerifyWebhookOptions = {},
): Promise<boolean> {
  if (!header) return false;
  const parts = new Map<string, string>();
  for (const item of header.split(',')) {
    const at = item.indexOf('=');
    if (at > 0) parts.set(item.slice(0, at).trim(), item.slice(at + 1).trim());
  }
  const t = parts.get('t') ?? '';
  const v1 = parts.get('v1') ?? '';
  const now = options.now ?? Date.now();
  if (!/^\d+$/.test(t) || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(now / 1000 - Number(t)) > (options.toleranceSeconds ?? 300)) return false;
  const body = typeof rawBody === 'string' ? encoder.encode(rawBody) : rawBody;
  const prefix = encoder.encode(`${t}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const mac = new Uint8Array(v1.length / 2);
  for (let i = 0; i < mac.length; i++) mac[i] = Number.parseInt(v1.slice(i * 2, i * 2 + 2), 16);
  // crypto.subtle.verify compares in constant time.
  return crypto.subtle.verify('HMAC', key, mac, signed);
}
