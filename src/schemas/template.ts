/** Templates: what users may launch (PRD 8 "desktop templates"; issue: GPU desktops). */
import { BackendSchema, GpuSlotsSchema, PlanSchema, ProtocolSchema } from './desktop';
import { SnapshotScheduleSchema } from './snapshot';
import { z } from './zod';

export const TemplateIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'template ids are lowercase letters, digits and -');

const printable = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

export const TemplateSchema = z.object({
  id: TemplateIdSchema,
  name: printable(100),
  os: printable(100),
  description: printable(500).nullable(),
  backend: BackendSchema,
  protocol: ProtocolSchema,
  defaultPlan: PlanSchema,
  gpu: z.boolean(),
  gpuSlots: GpuSlotsSchema,
  idleTimeoutMinutes: z.number().min(0.1).max(10_080),
  maxSessionMinutes: z.number().int().min(1).max(10_080).nullable(),
  storageGb: z.number().int().min(1).max(10_000).nullable(),
  image: printable(300).nullable(),
  vmTemplate: printable(100).nullable(),
  /** Scheduled snapshots of its desktops (proxmox), unless a desktop has its own setting; null: none. */
  snapshotSchedule: SnapshotScheduleSchema.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  retiredAt: z.string().nullable(),
});
export type Template = z.infer<typeof TemplateSchema>;

/** What an admin sends to create or replace a template; the rules that tie fields together are checked in `templateProblems`. */
export const TemplateInputSchema = z.strictObject({
  name: printable(100),
  os: printable(100),
  description: printable(500).nullable().default(null),
  backend: BackendSchema,
  protocol: ProtocolSchema,
  defaultPlan: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), PlanSchema).default('STANDARD'),
  gpuSlots: GpuSlotsSchema.default(0),
  idleTimeoutMinutes: z.number().min(0.1).max(10_080).default(60),
  maxSessionMinutes: z.number().int().min(1).max(10_080).nullable().default(null),
  storageGb: z.number().int().min(1).max(10_000).nullable().default(null),
  image: printable(300).nullable().default(null),
  vmTemplate: printable(100).nullable().default(null),
  /** Scheduled snapshots of its desktops (proxmox templates); a desktop's own setting wins. */
  snapshotSchedule: SnapshotScheduleSchema.nullable().default(null),
});
export type TemplateInput = z.infer<typeof TemplateInputSchema>;

export function templateProblems(t: TemplateInput): string[] {
  const problems: string[] = [];
  if (t.backend === 'selkies') {
    if (t.protocol !== 'webrtc') problems.push('selkies templates stream over webrtc');
    if (!t.image)
      problems.push('selkies templates need a pinned image (e.g. ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250101000000)');
    if (t.image && /:latest$|^[^:]+$/.test(t.image)) problems.push('pin the image to a tag other than latest');
    if (t.vmTemplate) problems.push('vmTemplate is for proxmox templates');
    if (t.snapshotSchedule) problems.push('snapshot schedules are for proxmox templates: a selkies desktop has no VM to snapshot');
  } else {
    if (t.protocol === 'webrtc') problems.push('proxmox templates open through Guacamole: vnc or rdp');
    if (t.gpuSlots !== 0) problems.push('GPU sessions are selkies templates');
    if (t.image) problems.push('image is for selkies templates');
  }
  return problems;
}
