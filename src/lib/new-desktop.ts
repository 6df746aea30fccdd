/** The record of a desktop that is about to be created: the one place that knows every field's starting value. */
import { type Backend, type Desktop, type GpuSlots, PLANS, type Plan, type Protocol } from '../schemas/desktop';

export interface NewDesktopInput {
  id: string;
  userId: string;
  name: string;
  plan: Plan;
  protocol: Protocol;
  siteId: string;
  createdBy: string;
  idleTimeoutMinutes: number;
  maxSessionMinutes?: number | null;
  expiresAt?: string | null;
  templateId?: string | null;
  backend?: Backend;
  gpuSlots?: GpuSlots;
}

export function newDesktop(input: NewDesktopInput, now = new Date()): Desktop {
  const at = now.toISOString();
  const plan = PLANS[input.plan];
  return {
    id: input.id,
    userId: input.userId,
    name: input.name,
    plan: input.plan,
    cpuCores: plan.cpuCores,
    memoryMb: plan.memoryMb,
    protocol: input.protocol,
    status: 'PENDING',
    statusMessage: 'desktop creation requested',
    errorMessage: null,
    siteId: input.siteId,
    vmId: null,
    node: null,
    ipAddress: null,
    connectionId: null,
    createdBy: input.createdBy,
    createdAt: at,
    updatedAt: at,
    lastAccessedAt: null,
    expiresAt: input.expiresAt ?? null,
    deletedAt: null,
    idleTimeoutMinutes: input.idleTimeoutMinutes,
    maxSessionMinutes: input.maxSessionMinutes ?? null,
    lastActivityAt: null,
    lastActivitySource: null,
    lastActivityReason: null,
    idleStopAt: null,
    sessionEndsAt: null,
    stopReason: null,
    templateId: input.templateId ?? null,
    backend: input.backend ?? 'proxmox',
    gpuSlots: input.gpuSlots ?? 0,
    sessionUrl: null,
    claimedFromPool: null,
  };
}
