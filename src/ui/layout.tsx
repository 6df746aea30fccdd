/**
 * The frame every dashboard page shares: landmarks (banner, navigation, main), a skip
 * link, the regions the script announces into, the confirmation dialog, and the data the
 * script needs (CSRF token, the desktop model). No inline script or style: the CSP
 * forbids both.
 */
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { raw } from 'hono/html';
import type { Session } from '../auth/session-token';
import { assetPath } from './assets';
import { utc } from './format';
import type { UiModel } from './model-types';

export interface LayoutProps {
  title: string;
  session: Session | null;
  /** Which top navigation entry is the current page. */
  section: 'desktops' | 'admin' | 'sign-in';
  model?: UiModel;
}

/** JSON for a `<script type="application/json">` block: `<` escaped so no value can close the element. */
export const jsonBlock = (value: unknown) => raw(JSON.stringify(value).replace(/</g, '\\u003c'));

export const Layout: FC<PropsWithChildren<LayoutProps>> = ({ title, session, section, model, children }) => {
  const admin = session?.roles.includes('admin') ?? false;
  return (
    <>
      {raw('<!doctype html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${title} · Cloud Desktop`}</title>
          <link rel="icon" href="data:," />
          <link rel="stylesheet" href={assetPath('css')} />
          <script type="module" src={assetPath('js')} />
          {session ? <meta name="csrf-token" content={session.csrf} /> : null}
        </head>
        <body>
          <a class="skip-link" href="#main">
            Skip to main content
          </a>
          <header class="site-header">
            <a class="brand" href="/">
              Cloud Desktop
            </a>
            {session ? (
              <nav aria-label="Main" class="main-nav">
                <ul>
                  <li>
                    <a href="/" aria-current={section === 'desktops' ? 'page' : undefined}>
                      Desktops
                    </a>
                  </li>
                  {admin ? (
                    <li>
                      <a href="/admin" aria-current={section === 'admin' ? 'page' : undefined}>
                        Admin
                      </a>
                    </li>
                  ) : null}
                </ul>
              </nav>
            ) : null}
            {session ? (
              <div class="account">
                <span class="who">
                  <span class="visually-hidden">Signed in as </span>
                  <strong>{session.name ?? session.sub}</strong>
                  {admin ? <span class="role-tag">admin</span> : null}
                </span>
                <form method="post" action="/auth/sign-out">
                  <input type="hidden" name="csrf" value={session.csrf} />
                  <button type="submit" class="button-quiet">
                    Sign out
                  </button>
                </form>
              </div>
            ) : null}
          </header>
          <main id="main" tabindex={-1}>
            <div id="alerts" class="alerts" role="alert" aria-atomic="false" />
            {children}
          </main>
          <div id="announcer" class="visually-hidden" role="status" aria-live="polite" />
          <ConfirmDialog />
          {model ? (
            <script type="application/json" id="ui-model">
              {jsonBlock(model)}
            </script>
          ) : null}
        </body>
      </html>
    </>
  );
};

/** One accessible confirmation dialog (native <dialog>: modal, focus kept inside, Escape cancels); the script fills in the words. */
const ConfirmDialog: FC = () => (
  <dialog id="confirm" class="dialog" aria-labelledby="confirm-title" aria-describedby="confirm-text">
    <form method="dialog">
      <h2 id="confirm-title">Are you sure?</h2>
      <p id="confirm-text" />
      <div class="dialog-actions">
        <button type="submit" value="cancel" class="button-quiet" autofocus>
          Cancel
        </button>
        <button type="submit" value="confirm" class="button-danger" id="confirm-ok">
          Confirm
        </button>
      </div>
    </form>
  </dialog>
);

export const Alert: FC<{ tone: 'error' | 'info'; title: string; children?: Child }> = ({ tone, title, children }) => (
  <div class={`notice notice-${tone}`}>
    <p class="notice-title">{title}</p>
    {children ? <p>{children}</p> : null}
  </div>
);

/**
 * A time, readable without the script (UTC); the script rewrites the text in local time.
 * Postgres answers `2026-11-22 02:17:33.5+00`: the datetime attribute gets real ISO 8601.
 */
export const Time: FC<{ iso: string | null | undefined; fallback?: string }> = ({ iso, fallback = '—' }) => {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return <span>{fallback}</span>;
  return (
    <time datetime={at.toISOString()} data-local="">
      {utc(at.toISOString())}
    </time>
  );
};

/** A wide table that scrolls sideways on a phone; focusable so the keyboard can scroll it too. */
export const TableWrap: FC<PropsWithChildren<{ label: string }>> = ({ label, children }) => (
  <section class="table-wrap" aria-label={label} tabindex={0}>
    {children}
  </section>
);
