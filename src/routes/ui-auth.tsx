/**
 * Signing in and out of the dashboard.
 *
 *  GET  /sign-in        the sign-in page (single sign-on and/or the development sign-in)
 *  GET  /auth/oidc      starts OpenID Connect: state, nonce and PKCE verifier go into a
 *                       sealed, HttpOnly, 10-minute cookie; the browser goes to the issuer
 *  GET  /auth/callback  the issuer's answer: code → ID token (verified) → session cookie
 *  POST /auth/dev       the development sign-in: only with DEV_SIGN_IN=true, only on a
 *                       loopback address, only from this origin's own form
 *  POST /auth/sign-out  clears the session (the form carries the page's CSRF token)
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { FlowStateSchema, OidcError, beginSignIn, finishSignIn, principalClaims } from '../auth/oidc';
import { cookieNames, seal, unseal } from '../auth/session-token';
import type { Config } from '../env';
import { ApiError } from '../errors';
import { type DashboardEnv, endSession, isLoopback, loadSession, sessionSecret, startSession, transport } from '../middleware/session';
import { isUserId, USER_ID_MAX } from '../schemas/user-id';
import { pageHeaders } from '../ui/csp';
import { SignInPage, type SignInProps } from '../ui/sign-in-page';

const FLOW_SECONDS = 600;

/** Where to go after signing in: a path on this site only (never `//host` or `/\host`, which browsers read as another site). */
export function safeNext(v: unknown): string {
  return typeof v === 'string' && v.length <= 500 && /^\/(?![/\\])[^\s\\]*$/.test(v) ? v : '/';
}

export const ssoConfigured = (cfg: Config) => Boolean(cfg.OIDC_ISSUER && cfg.OIDC_CLIENT_ID);

/** The flag alone is not enough: a deployed Worker is never reached at a loopback address. */
export const devSignInAllowed = (c: Context<DashboardEnv>) => c.var.cfg.DEV_SIGN_IN && isLoopback(new URL(c.req.url));

const redirectUri = (c: Context) => `${new URL(c.req.url).origin}/auth/callback`;

export function signInPage(c: Context<DashboardEnv>, props: Partial<SignInProps>, status: 200 | 400 | 403 | 404 | 502 = 200) {
  pageHeaders(c);
  const { allowed } = transport(c);
  const all: SignInProps = {
    next: safeNext(props.next ?? c.req.query('next')),
    sso: ssoConfigured(c.var.cfg),
    dev: devSignInAllowed(c),
    insecure: !allowed,
    ...props,
  };
  return c.html(<SignInPage {...all} />, status);
}

export const authRoutes = new Hono<DashboardEnv>();

authRoutes.use('/sign-in', loadSession);
authRoutes.use(
  '/auth/*',
  loadSession,
  bodyLimit({ maxSize: 16 * 1024, onError: () => new Response('Request too large', { status: 413 }) }),
);

authRoutes.get('/sign-in', (c) => {
  if (c.var.session) return c.redirect(safeNext(c.req.query('next')), 303);
  return signInPage(c, { signedOut: c.req.query('signedOut') === '1' });
});

authRoutes.get('/auth/oidc', async (c) => {
  const cfg = c.var.cfg;
  const next = safeNext(c.req.query('next'));
  const { allowed, secure } = transport(c);
  if (!allowed) return signInPage(c, { next }, 400);
  if (!ssoConfigured(cfg)) return signInPage(c, { next, problem: 'Single sign-on is not configured here.' }, 404);
  const secret = sessionSecret(cfg);
  if (!secret) return signInPage(c, { next, problem: 'Sign-in is not configured: the Worker has no SESSION_SECRET.' }, 404);
  try {
    const { url, flow } = await beginSignIn(cfg, redirectUri(c), next);
    // SameSite=Lax: the issuer sends the browser back with a top-level GET, which carries it.
    setCookie(c, cookieNames(secure).flow, await seal(secret, 'oidc-flow', { ...flow }, FLOW_SECONDS), {
      httpOnly: true,
      secure,
      sameSite: 'Lax',
      path: '/',
      maxAge: FLOW_SECONDS,
    });
    c.header('Cache-Control', 'no-store');
    return c.redirect(url, 302);
  } catch (err) {
    if (err instanceof OidcError) return signInPage(c, { next, problem: err.message }, 502);
    throw err;
  }
});

authRoutes.get('/auth/callback', async (c) => {
  const cfg = c.var.cfg;
  const { allowed, secure } = transport(c);
  if (!allowed) return signInPage(c, {}, 400);
  const secret = sessionSecret(cfg);
  const name = cookieNames(secure).flow;
  const sealed = getCookie(c, name);
  deleteCookie(c, name, { path: '/', secure, httpOnly: true, sameSite: 'Lax' });
  const flow = sealed && secret ? await unseal(secret, 'oidc-flow', sealed, FlowStateSchema) : null;
  if (!flow) {
    return signInPage(c, { problem: 'This sign-in expired or was started in another browser. Please sign in again.' }, 400);
  }
  const q = c.req.query();
  if (q.error) {
    const why =
      q.error === 'access_denied' ? 'You cancelled, or your account may not use this application.' : (q.error_description ?? q.error);
    return signInPage(c, { next: flow.next, problem: `The identity provider did not sign you in: ${why}` }, 400);
  }
  try {
    const claims = await finishSignIn(cfg, redirectUri(c), flow, { code: q.code, state: q.state, iss: q.iss });
    const who = principalClaims(cfg, claims);
    await startSession(c, cfg, { sub: who.sub, roles: who.admin ? ['admin'] : [], name: who.name, method: 'oidc' });
    return c.redirect(flow.next, 303);
  } catch (err) {
    if (err instanceof OidcError) return signInPage(c, { next: flow.next, problem: err.message }, 400);
    throw err;
  }
});

authRoutes.post('/auth/dev', async (c) => {
  if (!devSignInAllowed(c)) throw new ApiError('NOT_FOUND', 'There is no development sign-in here');
  // Login CSRF: only this origin's own form may sign someone in.
  if (c.req.header('origin') !== new URL(c.req.url).origin) throw new ApiError('FORBIDDEN', 'Sign-in form from another origin refused');
  const form = await c.req.parseBody();
  const userId = typeof form.userId === 'string' ? form.userId.trim() : '';
  if (!isUserId(userId)) {
    const problem = `A user id is printable ASCII without spaces (at most ${USER_ID_MAX} characters).`;
    return signInPage(c, { next: safeNext(form.next), problem }, 400);
  }
  await startSession(c, c.var.cfg, { sub: userId, roles: form.role === 'admin' ? ['admin'] : [], name: userId, method: 'dev' });
  return c.redirect(safeNext(form.next), 303);
});

authRoutes.post('/auth/sign-out', async (c) => {
  const s = c.var.session;
  const form = await c.req.parseBody();
  if (s && form.csrf !== s.csrf) throw new ApiError('FORBIDDEN', 'Sign-out form without this page’s token refused');
  endSession(c);
  return c.redirect('/sign-in?signedOut=1', 303);
});
