/** The sign-in page: single sign-on when an issuer is configured, the development sign-in when allowed. */
import type { FC } from 'hono/jsx';
import { Alert, Layout } from './layout';

export interface SignInProps {
  next: string;
  sso: boolean;
  dev: boolean;
  /** Why the last attempt failed, in words. */
  problem?: string;
  signedOut?: boolean;
  /** Plain http on a non-loopback address: no session can be kept safely there. */
  insecure?: boolean;
}

export const SignInPage: FC<SignInProps> = ({ next, sso, dev, problem, signedOut, insecure }) => (
  <Layout title="Sign in" session={null} section="sign-in">
    <div class="sign-in">
      <h1>Sign in</h1>
      <p class="lede">Launch, watch and open your cloud desktops from any browser.</p>
      {signedOut ? <Alert tone="info" title="You are signed out." /> : null}
      {problem ? (
        <Alert tone="error" title="Sign-in did not work">
          {problem}
        </Alert>
      ) : null}
      {insecure ? (
        <Alert tone="error" title="This address is not secure">
          The dashboard keeps your session only over HTTPS. Open it through its https:// address.
        </Alert>
      ) : null}
      {sso && !insecure ? (
        <section aria-labelledby="sso-title" class="panel">
          <h2 id="sso-title">Your organisation’s account</h2>
          <p>
            <a class="button" href={`/auth/oidc?next=${encodeURIComponent(next)}`}>
              Sign in with single sign-on
            </a>
          </p>
        </section>
      ) : null}
      {dev && !insecure ? (
        <section aria-labelledby="dev-title" class="panel panel-dev">
          <h2 id="dev-title">Development sign-in</h2>
          <p>Only on this local address, because DEV_SIGN_IN is set. Pick any user and role.</p>
          <form method="post" action="/auth/dev" class="form-grid">
            <input type="hidden" name="next" value={next} />
            <label for="dev-user">User id</label>
            <input
              id="dev-user"
              name="userId"
              required
              value="alice"
              autocomplete="username"
              pattern="[!-~]{1,255}"
              aria-describedby="dev-user-hint"
            />
            <p id="dev-user-hint" class="hint">
              Letters, digits and . _ @ : -
            </p>
            <fieldset>
              <legend>Role</legend>
              <label class="choice">
                <input type="radio" name="role" value="user" checked /> User
              </label>
              <label class="choice">
                <input type="radio" name="role" value="admin" /> Admin
              </label>
            </fieldset>
            <button type="submit">Sign in (development)</button>
          </form>
        </section>
      ) : null}
      {!sso && !dev && !insecure ? (
        <Alert tone="error" title="No sign-in is configured">
          Set OIDC_ISSUER and OIDC_CLIENT_ID (and OIDC_CLIENT_SECRET for a confidential client) to sign in with your identity provider.
        </Alert>
      ) : null}
    </div>
  </Layout>
);
