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

export type TaskRegistry = Record<CommandKind, Task>;

export function createTaskRegistry(deps: TaskDeps): TaskRegistry {
  return {
    create: createDesktop(deps),
    start: startDesktop(deps),
    stop: stopDesktop(deps),
    delete: deleteDesktop(deps),
  };
}

export function taskSettings(config: BridgeConfig): TaskSettings {
  return {
    node: config.proxmox.node,
    templateVmid: config.proxmox.templateVmid,
    templates: config.proxmox.templates,
    vmidRange: config.proxmox.vmidRange,
    linkedClone: config.proxmox.linkedClone,
    shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
    ipWaitSeconds: config.ipWaitSeconds,
    bridgeSecret: config.bridgeSecret,
  };
}
