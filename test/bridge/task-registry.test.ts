/**
 * The task registry sends each command kind to its task: snapshot commands of a VM desktop to the snapshot tasks,
 * and those of a WebRTC desktop (a pod, no VM) to a refusal that says so, before any infrastructure is touched.
 */
import { describe, expect, it } from 'vitest';
import { TaskError } from '../../on-prem-bridge/src/errors';
import { createTaskRegistry } from '../../on-prem-bridge/src/tasks';
import { desktopId, makeDeps, makeInfra, makeSpec, recordingContext } from './support/harness';

describe('task registry', () => {
  it('refuses the snapshot commands of a WebRTC desktop, saying it is a pod', async () => {
    const tasks = createTaskRegistry(makeDeps(makeInfra()));
    const spec = makeSpec(desktopId(), { backend: 'selkies', snapshot: { name: 'before', withRam: false } });
    for (const kind of ['snapshot', 'restore', 'delete_snapshot'] as const) {
      const error = await tasks[kind](spec, recordingContext().ctx).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskError);
      expect((error as Error).message).toMatch(/is a Kubernetes pod, not a VM: it has no snapshots/);
    }
  });

  it('says so when its Proxmox driver has no snapshot calls, rather than failing on a missing method', async () => {
    const infra = makeInfra();
    const tasks = createTaskRegistry(makeDeps(infra));
    // The test double of the driver has none.
    expect('listSnapshots' in infra.proxmox).toBe(false);
    const error = await tasks
      .snapshot(makeSpec(desktopId(), { snapshot: { name: 'before', withRam: false } }), recordingContext().ctx)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskError);
    expect((error as Error).message).toBe("This site's bridge cannot take snapshots: its Proxmox driver has no snapshot calls");
  });
});
