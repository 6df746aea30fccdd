/**
 * The current status of several desktops, each from its own Durable Object, asked in
 * parallel: null for a desktop that does not exist (yet), undefined for one that could
 * not answer. For the checks that free quota and GPU slots a DELETED desktop still holds.
 */
import type { Bindings } from '../env';
import type { DesktopStatusView } from '../desktop/session-state';

export function desktopStatuses(env: Bindings, ids: string[]): Promise<(DesktopStatusView | null | undefined)[]> {
  return Promise.all(
    ids.map((id) =>
      env.DESKTOP_SESSION.getByName(id)
        .status()
        .catch(() => undefined),
    ),
  );
}
