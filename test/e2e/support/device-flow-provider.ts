/**
 * A real OpenID provider (oidc-provider) on loopback offering the device flow (RFC 8628)
 * to a public client `cdaas-cli`, and issuing JWT access tokens (RS256) for the API's
 * audience when asked for its resource (RFC 8707), with refresh tokens. `approve` plays
 * the person at the browser: it opens the verification link, confirms the code, signs in
 * on the provider's own login page and consents, by submitting the pages' forms.
 */
import type { Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export const CLI_CLIENT_ID = 'cdaas-cli';
export const API_RESOURCE = 'https://cdaas.test/api';

export async function startDeviceFlowProvider(opts: { port: number; audience: string }) {
  const issuer = `http://127.0.0.1:${opts.port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'device-flow-key', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    scopes: ['openid', 'offline_access', 'desktops'],
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    cookies: { keys: ['device-flow-test-cookie-key-0123456789'] },
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'desktops', audience: opts.audience, accessTokenFormat: 'jwt', accessTokenTTL: 3600 }),
      },
    },
  });
  const server: Server = provider.listen(opts.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return { issuer, jwksUrl: `${issuer}/jwks`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Opens `url` as a person would and approves the sign-in as `login`; resolves once the provider says it succeeded. */
export async function approve(url: string, login: string): Promise<void> {
  const cookies = new Map<string, string>();
  const send = async (target: string, init: RequestInit = {}): Promise<{ url: string; html: string }> => {
    let next = target;
    let request = init;
    for (let hops = 0; hops < 20; hops++) {
      const res = await fetch(next, {
        ...request,
        redirect: 'manual',
        headers: { ...(request.headers as Record<string, string>), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair = ''] = c.split(';');
        const at = pair.indexOf('=');
        cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        next = new URL(location, next).href;
        request = {};
        continue;
      }
      return { url: next, html: await res.text() };
    }
    throw new Error('too many redirects');
  };
  let page = await send(url);
  for (let step = 0; step < 6; step++) {
    if (/Sign-in Success/.test(page.html)) return;
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page.html);
    if (!form?.[1]) throw new Error(`no form to submit on ${page.url}: ${page.html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const input of (form[2] ?? '').matchAll(/<input([^>]*)>/g)) {
      const name = /name="([^"]+)"/.exec(input[1] ?? '')?.[1];
      if (!name) continue;
      const value = /value="([^"]*)"/.exec(input[1] ?? '')?.[1] ?? '';
      fields.set(name, name === 'login' ? login : name === 'password' ? 'any password' : value);
    }
    page = await send(new URL(form[1], page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    });
  }
  throw new Error(`the sign-in did not finish: ${page.html.slice(0, 300)}`);
}
