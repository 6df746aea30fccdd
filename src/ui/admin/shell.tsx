/** The admin console's frame: its sections, the heading and the section navigation every admin page shares. */
import type { Child, FC } from 'hono/jsx';
import type { Session } from '../../auth/session-token';
import { Layout } from '../layout';
import type { UiModel } from '../model-types';

/** The sections in navigation order; each is /admin/<key> (the overview is /admin). */
export const ADMIN_SECTIONS = {
  overview: 'Overview',
  sessions: 'Sessions',
  users: 'Users and quotas',
  templates: 'Templates',
  pools: 'Warm pools',
  audit: 'Audit log',
  webhooks: 'Webhook deliveries',
} as const;
export type AdminSection = keyof typeof ADMIN_SECTIONS;

export const AdminPage: FC<{ session: Session; model: UiModel; section: AdminSection; children: Child }> = ({
  session,
  model,
  section,
  children,
}) => (
  <Layout title={ADMIN_SECTIONS[section]} session={session} section="admin" model={model}>
    <AdminMain section={section}>{children}</AdminMain>
  </Layout>
);

/** The page's <main> content alone: what the script's fragment requests get. */
export const AdminMain: FC<{ section: AdminSection; children: Child }> = ({ section, children }) => (
  <>
    <h1>Admin · {ADMIN_SECTIONS[section]}</h1>
    <nav aria-label="Admin" class="sub-nav">
      <ul>
        {(Object.keys(ADMIN_SECTIONS) as AdminSection[]).map((s) => (
          <li>
            <a href={s === 'overview' ? '/admin' : `/admin/${s}`} aria-current={s === section ? 'page' : undefined}>
              {ADMIN_SECTIONS[s]}
            </a>
          </li>
        ))}
      </ul>
    </nav>
    {children}
  </>
);
