/**
 * Security headers on every response. A fixed list set in one pass: the API serves only
 * JSON, so the strictest CSP fits, and this sits on the hot path of status polling
 * (Hono's secureHeaders computes its list per request).
 */
import { createMiddleware } from 'hono/factory';

const HEADERS: [string, string][] = [
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Cross-Origin-Resource-Policy', 'same-site'],
  ['Referrer-Policy', 'no-referrer'],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

export const securityHeaders = createMiddleware(async (c, next) => {
  await next();
  const h = c.res.headers;
  for (const [name, value] of HEADERS) if (!h.has(name)) h.set(name, value);
});
