/**
 * delete: power off, destroy, remove the connection and user. Whatever is already gone
 * is skipped, so a delete delivered twice, or after a half-finished create, succeeds.
 */
import type { Task, TaskDeps } from './context';
import { teardownDesktop } from './teardown';
import { toolsFor } from './tools';

export function deleteDesktop(deps: TaskDeps): Task {
  return async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    await teardownDesktop(deps, t, spec.desktopId, ctx.progress);
    // Facts describe infrastructure that exists; after a delete there is none.
    return {};
  };
}
