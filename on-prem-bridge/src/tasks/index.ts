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
import { TaskError } from '../errors';

export type TaskRegistry = Record<CommandKind, Task>;

export function createTaskRegistry(deps: TaskDeps): TaskRegistry {
  const vm: TaskRegistry = { create: createDesktop(deps), start: startDesktop(deps), stop: stopDesktop(deps), delete: deleteDesktop(deps) };
  const selkies = deps.selkies ? selkiesTasks({ ...deps, selkies: deps.selkies }) : null;
  // Each command runs on its desktop's backend (commands without one are VMs).
  const route =
    (kind: CommandKind): Task =>
    (spec, ctx) => {
      if (spec.backend !== 'selkies') return vm[kind](spec, ctx);
      if (!selkies)
        throw new TaskError(
          `This site's bridge has no Kubernetes configured (KUBERNETES_URL), so it cannot run the WebRTC desktop ${spec.desktopId}`,
        );
      return selkies[kind](spec, ctx);
    };
  return { create: route('create'), start: route('start'), stop: route('stop'), delete: route('delete') };
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
