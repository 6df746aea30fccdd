/**
 * A desktop's share links (GET /desktops/{id}/share): the owner makes a link (view only or
 * full control, how long, how many openings), sees each link's state and uses, and revokes
 * them. The script (data-form="share-link", data-action="revoke-share") calls the API and
 * shows a new link's URL once; the page says what happens when the owner disconnects.
 */
import type { FC } from 'hono/jsx';
import type { Session } from '../auth/session-token';
import type { Desktop } from '../schemas/desktop';
import type { ShareLink, ShareLinkState } from '../schemas/share-link';
import { Alert, Layout, TableWrap, Time } from './layout';

const STATE_TEXT: Record<ShareLinkState, string> = { active: 'Active', revoked: 'Revoked', expired: 'Expired', used_up: 'Used up' };
const EXPIRY_CHOICES = [
  [900, '15 minutes'],
  [3600, '1 hour'],
  [8 * 3600, '8 hours'],
  [24 * 3600, '1 day'],
  [7 * 24 * 3600, '1 week'],
] as const;

export interface SharePageProps {
  desktop: Desktop;
  links: ShareLink[] | string;
}

export const ShareMain: FC<SharePageProps> = ({ desktop, links }) => (
  <>
    <h1>{`Share “${desktop.name}”`}</h1>
    <p>
      <a href="/">Back to your desktops</a>
    </p>
    <Alert tone="info" title="Guests join your live session">
      A share link lets someone without an account into this desktop while you have it open: Guacamole shares your session, not the desktop.
      If you are not connected, the link is refused for now; when you disconnect, every guest is disconnected too. The link keeps working
      until it expires, is used up or you revoke it.
    </Alert>
    {desktop.backend === 'selkies' ? (
      <Alert tone="error" title="This desktop cannot be shared">
        GPU desktops are streamed with Selkies, whose released image serves one viewer at a time and has no view-only mode.
      </Alert>
    ) : (
      <section aria-labelledby="make-title" class="section" data-desktop-id={desktop.id}>
        <h2 id="make-title">Make a link</h2>
        <form class="inline-form" data-form="share-link" data-desktop-id={desktop.id}>
          <fieldset class="field">
            <legend>Guests may</legend>
            <label>
              <input type="radio" name="mode" value="view" checked /> Watch only (view)
            </label>
            <label>
              <input type="radio" name="mode" value="control" /> Use it too (full control)
            </label>
          </fieldset>
          <div class="field">
            <label for="share-ttl">Works for</label>
            <select id="share-ttl" name="ttlSeconds">
              {EXPIRY_CHOICES.map(([seconds, text]) => (
                <option value={String(seconds)} selected={seconds === 3600}>
                  {text}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="share-uses">Times it may be opened</label>
            <input id="share-uses" name="maxUses" type="number" min={1} max={100} step={1} value="1" required />
          </div>
          <button type="submit" class="button">
            Make link
          </button>
        </form>
        <div id="new-share-link" class="notice" hidden>
          <p class="notice-title">Your new link (shown only now: copy it)</p>
          <label for="new-share-url">Share link</label>
          <input id="new-share-url" type="text" readonly />
        </div>
      </section>
    )}
    <section aria-labelledby="links-title" class="section">
      <h2 id="links-title">Links</h2>
      {typeof links === 'string' ? (
        <Alert tone="error" title="The links could not be loaded">
          {links}
        </Alert>
      ) : links.length === 0 ? (
        <p class="empty">No links yet.</p>
      ) : (
        <TableWrap label="Share links">
          <table>
            <thead>
              <tr>
                <th scope="col">Guests may</th>
                <th scope="col">State</th>
                <th scope="col">Opened</th>
                <th scope="col">Expires</th>
                <th scope="col">Made</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {links.map((l) => (
                <tr data-share-link-id={l.id} data-desktop-id={desktop.id}>
                  <td>{l.mode === 'view' ? 'Watch only' : 'Full control'}</td>
                  <td data-field="share-state">{STATE_TEXT[l.state]}</td>
                  <td>{`${l.uses} of ${l.maxUses}`}</td>
                  <td>
                    <Time iso={l.expiresAt} />
                  </td>
                  <td>
                    <Time iso={l.createdAt} />
                  </td>
                  <td>
                    {l.state === 'active' ? (
                      <button type="button" class="button-danger small" data-action="revoke-share" aria-label={`Revoke link ${l.id}`}>
                        Revoke
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  </>
);

export const SharePage: FC<SharePageProps & { session: Session }> = ({ session, ...props }) => (
  <Layout title={`Share ${props.desktop.name}`} session={session} section="desktops">
    <ShareMain {...props} />
  </Layout>
);
