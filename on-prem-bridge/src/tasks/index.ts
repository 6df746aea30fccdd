/**
 * The typed task registry (graphile-worker's task list): one task per command kind.
 * Adding a kind to CommandKindSchema fails to compile here until it has a task.
 */
import type { CommandKind } from '../../../src/schemas/bridge-protocol';
import type { BridgeConfig } from '../config';
import type { Task, TaskDeps, TaskSettings } from './context';
import { createDesktop } from './create-desktop';
import { deleteDesktop } from './delete-desktop';
import { startDesktop } from './start-desktop';
import { stopDesktop } from './stop-desktop';
import { selkiesTasks } from './selkies';
import { deleteSnapshotOfDesktop, restoreDesktop, snapshotDesktop } from './snapshot-desktop';
import type { SnapshotDeps } from './snapshot-steps';
import { type RebuildDeps, rebuildDesktop } from './rebuild-desktop';
import { TaskError } from '../errors';

export type TaskRegistry = Record<CommandKind, Task>;

type SnapshotKind = 'snapshot' | 'restore' | 'delete_snapshot';

/** Whether the Proxmox driver has the snapshot calls (the real one does; test doubles may not). */
function withSnapshots(deps: TaskDeps): SnapshotDeps | null {
  return 'listSnapshots' in deps.proxmox ? (deps as SnapshotDeps) : null;
}

/** Whether the Proxmox driver can also move disks between VMs, which a rebuild needs. */
function withDisks(deps: TaskDeps): RebuildDeps | null {
  return 'listSnapshots' in deps.proxmox && 'moveDiskToVm' in deps.proxmox ? (deps as RebuildDeps) : null;
}

export function createTaskRegistry(deps: TaskDeps): TaskRegistry {
  const snapshots = withSnapshots(deps);
  const disks = withDisks(deps);
  const noSnapshots: Task = async () => {
    throw new TaskError("This site's bridge cannot take snapshots: its Proxmox driver has no snapshot calls");
  };
  const vm: TaskRegistry = {
    create: createDesktop(deps),
    start: startDesktop(deps),
    stop: stopDesktop(deps),
    delete: deleteDesktop(deps),
    snapshot: snapshots ? snapshotDesktop(snapshots) : noSnapshots,
    restore: snapshots ? restoreDesktop(snapshots) : noSnapshots,
    delete_snapshot: snapshots ? deleteSnapshotOfDesktop(snapshots) : noSnapshots,
    rebuild: disks
      ? rebuildDesktop(disks)
      : async () => {
          throw new TaskError("This site's bridge cannot rebuild desktops: its Proxmox driver cannot move disks between VMs");
        },
  };
  const selkies = deps.selkies ? selkiesTasks({ ...deps, selkies: deps.selkies }) : null;
  // A WebRTC desktop is a pod with a volume claim for its home: there is no VM to snapshot (the edge refuses first).
  const podsHaveNoSnapshots =
    (kind: SnapshotKind): Task =>
    async (spec) => {
      throw new TaskError(
        `The WebRTC desktop ${spec.desktopId} is a Kubernetes pod, not a VM: it has no snapshots to ${kind.replace('_', ' ')}`,
      );
    };
  // Each command runs on its desktop's backend (commands without one are VMs).
  const route =
    (kind: CommandKind): Task =>
    (spec, ctx) => {
      if (spec.backend !== 'selkies') return vm[kind](spec, ctx);
      if (kind === 'snapshot' || kind === 'restore' || kind === 'delete_snapshot') return podsHaveNoSnapshots(kind)(spec, ctx);
      if (kind === 'rebuild') {
        throw new TaskError(`The WebRTC desktop ${spec.desktopId} is a Kubernetes pod, not a VM: it has no template VM to be rebuilt from`);
      }
      if (!selkies)
        throw new TaskError(
          `This site's bridge has no Kubernetes configured (KUBERNETES_URL), so it cannot run the WebRTC desktop ${spec.desktopId}`,
        );
      return selkies[kind](spec, ctx);
    };
  return {
    create: route('create'),
    start: route('start'),
    stop: route('stop'),
    delete: route('delete'),
    snapshot: route('snapshot'),
    restore: route('restore'),
    delete_snapshot: route('delete_snapshot'),
    rebuild: route('rebuild'),
  };
}

export function taskSettings(config: BridgeConfig): TaskSettings {
  return {
    node: config.proxmox.node,
    templateVmid: config.proxmox.templateVmid,
    templates: config.proxmox.templates,
    logins: config.proxmox.logins,
    defaultLogin: config.proxmox.defaultLogin,
    vncPassword: config.vncPassword,
    guestNetworks: config.proxmox.guestNetworks,
    vmidRange: config.proxmox.vmidRange,
    linkedClone: config.proxmox.linkedClone,
    shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
    ipWaitSeconds: config.ipWaitSeconds,
    desktopWaitSeconds: config.desktopWaitSeconds,
    bridgeSecret: config.bridgeSecret,
  };
}
