/**
 * Snapshots of a VM desktop (the owner, the service that created it, or an admin), as Proxmox takes them:
 *  GET    /api/v1/desktops/{id}/snapshots                  list them (read live from the site)
 *  POST   /api/v1/desktops/{id}/snapshots                  take one (202; the desktop's status stays)
 *  DELETE /api/v1/desktops/{id}/snapshots/{name}           delete one (202)
 *  POST   /api/v1/desktops/{id}/snapshots/{name}/restore   go back to one (202; STARTING … RUNNING)
 *  GET    /api/v1/desktops/{id}/snapshot-schedule          its scheduled snapshots: its own setting, its template's, which applies
 *  PUT    /api/v1/desktops/{id}/snapshot-schedule          set its own (a schedule, or off)
 *  DELETE /api/v1/desktops/{id}/snapshot-schedule          clear its own: its template's schedule applies again
 * A fork (a new desktop as a linked clone of a snapshot) is a create: POST /api/v1/desktops with `forkOf`.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { actorOf } from '../auth/jwt';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import { findSnapshot, listSnapshots, refuseUnlessSettled, refuseUnlessVm, snapshotCapableListing } from '../lib/snapshots';
import { DesktopSnapshotListSchema } from '../schemas/bridge-protocol';
import { DesktopSchema } from '../schemas/desktop';
import {
  CreateSnapshotSchema,
  DesktopScheduleSettingSchema,
  SnapshotNameSchema,
  SnapshotScheduleSchema,
  SnapshotsOffSchema,
  timestampedSnapshotName,
} from '../schemas/snapshot';
import { withDb } from '../db/client';
import { desktopSchedule, setDesktopSchedule } from '../db/snapshot-schedules';
import { effectiveSchedule } from '../desktop/snapshot-schedule';
import { ApiError } from '../errors';
import { IdParams, loadDesktop } from './desktops';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

const NameParams = IdParams.extend({
  name: SnapshotNameSchema.openapi({ param: { name: 'name', in: 'path' }, example: 'before-upgrade' }),
});

const CreateSnapshotBody = z
  .strictObject({
    ...CreateSnapshotSchema.shape,
    name: CreateSnapshotSchema.shape.name.openapi({
      description:
        'A letter, then letters, digits, - or _; 2 to 40 characters (Proxmox); not starting with auto- (kept for scheduled snapshots). Default: snap-<yyyymmdd>-<hhmmss> (UTC)',
      example: 'before-upgrade',
    }),
    // Optional rather than defaulted, so the documented request does not demand it.
    withRam: z.boolean().optional().openapi({
      description: 'Also save the running guest’s RAM: a restore resumes it where it was instead of booting it (default false)',
    }),
  })
  .openapi('CreateSnapshotRequest');

const DesktopOut = DesktopSchema.openapi('Desktop');

const PendingSnapshotSchema = z
  .object({
    snapshot: z.object({ name: z.string(), description: z.string(), withRam: z.boolean() }),
    desktop: DesktopOut,
  })
  .openapi('SnapshotOperation');

const errors = {
  400: errorSpec('Invalid input (a snapshot name outside Proxmox’s rule, or starting with auto-)'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not allowed'),
  404: errorSpec('No such desktop (or not yours), or no such snapshot'),
  409: errorSpec(
    'SNAPSHOTS_UNSUPPORTED (a WebRTC desktop, or disks on storage that cannot take snapshots), INVALID_STATE (not RUNNING or STOPPED), CONFLICT (a snapshot operation running, or the name taken), SNAPSHOT_QUOTA',
  ),
  503: errorSpec('The desktop’s site bridge is offline'),
} as const;

export const snapshotRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

snapshotRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/snapshots',
    summary: 'List a desktop’s snapshots',
    description:
      'Read from Proxmox through the site’s bridge, oldest first: name, description, time, whether RAM was saved, and the snapshot each was taken on top of. Proxmox lists no size. `unsupported` says why the desktop’s storage cannot take snapshots, when it cannot. A desktop whose VM is not made yet has none.',
    security: bearerAuth,
    request: { params: IdParams },
    responses: { 200: jsonSpec(DesktopSnapshotListSchema.openapi('DesktopSnapshotList'), 'The snapshots'), ...errors },
  }),
  async (c) => {
    const { desktop } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    refuseUnlessVm(desktop);
    const list = await listSnapshots(c.env, desktop);
    const n = list.snapshots.length;
    return c.json(success(list, `${n} snapshot${n === 1 ? '' : 's'}`), 200);
  },
);

snapshotRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/snapshots',
    summary: 'Take a snapshot of a desktop',
    description:
      'Answers 202 at once; the desktop keeps its status (RUNNING or STOPPED) while Proxmox takes the snapshot, and the webhook events desktop.snapshot_created or desktop.snapshot_failed tell the outcome (GET …/snapshots lists it once taken). Counts against the owner’s snapshot quota (SNAPSHOT_MAX_PER_USER); scheduled snapshots (auto-…, see …/snapshot-schedule) do not.',
    security: bearerAuth,
    request: {
      params: IdParams,
      body: { required: false, content: { 'application/json': { schema: CreateSnapshotBody } } },
    },
    responses: { 202: jsonSpec(PendingSnapshotSchema, 'Snapshot initiated'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { stub, desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    const body = c.req.valid('json') ?? {};
    const name = body.name ?? timestampedSnapshotName('snap-', new Date());
    refuseUnlessVm(desktop);
    refuseUnlessSettled(desktop, 'take a snapshot of');
    const existing = await snapshotCapableListing(c.env, desktop);
    if (existing.some((s) => s.name === name)) throw new ApiError('CONFLICT', `Desktop ${desktop.id} already has a snapshot named ${name}`);
    const snapshot = { name, withRam: body.withRam ?? false, ...(body.description ? { description: body.description } : {}) };
    const after = unwrap(await stub.snapshotCommand('take', snapshot, actorOf(p), c.var.requestId));
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { snapshot: name, withRam: snapshot.withRam });
    const data = { snapshot: { name, description: body.description ?? '', withRam: snapshot.withRam }, desktop: after };
    return c.json(success(data, `Taking the snapshot ${name} of desktop ${desktop.id}.`), 202);
  },
);

snapshotRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}/snapshots/{name}',
    summary: 'Delete a snapshot',
    description: 'Answers 202; desktop.snapshot_deleted (or desktop.snapshot_failed) follows. The desktop keeps its status.',
    security: bearerAuth,
    request: { params: NameParams },
    responses: { 202: jsonSpec(PendingSnapshotSchema, 'Deletion initiated'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { id, name } = c.req.valid('param');
    const { stub, desktop } = await loadDesktop(c.env, p, id);
    refuseUnlessVm(desktop);
    refuseUnlessSettled(desktop, 'delete a snapshot of');
    const found = findSnapshot((await listSnapshots(c.env, desktop)).snapshots, desktop, name);
    const after = unwrap(await stub.snapshotCommand('delete', { name, withRam: found.withRam }, actorOf(p), c.var.requestId));
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { snapshot: name });
    const data = { snapshot: { name, description: found.description, withRam: found.withRam }, desktop: after };
    return c.json(success(data, `Deleting the snapshot ${name} of desktop ${desktop.id}.`), 202);
  },
);

snapshotRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/snapshots/{name}/restore',
    summary: 'Restore a desktop to a snapshot',
    description:
      'Answers 202 with the desktop STARTING: Proxmox rolls the VM back (stopping it first), then the desktop comes online as after a start (STARTING → WAITING_FOR_IP → CONFIGURING → RUNNING), whether it was RUNNING or STOPPED. A snapshot with RAM resumes where it was; one without boots from its disks. What changed since the snapshot is lost. The transition’s event is `restore`; desktop.snapshot_restored follows desktop.running.',
    security: bearerAuth,
    request: { params: NameParams },
    responses: { 202: jsonSpec(DesktopOut, 'Restore initiated'), ...errors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { id, name } = c.req.valid('param');
    const { stub, desktop } = await loadDesktop(c.env, p, id);
    refuseUnlessVm(desktop);
    refuseUnlessSettled(desktop, 'restore');
    findSnapshot((await listSnapshots(c.env, desktop)).snapshots, desktop, name);
    const after = unwrap(await stub.act({ action: 'restore', actor: actorOf(p), requestId: c.var.requestId, snapshot: name }));
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { snapshot: name });
    return c.json(success(after, `Restoring desktop ${desktop.id} to the snapshot ${name}.`), 202);
  },
);

// ---- scheduled snapshots ----

const ScheduleOut = SnapshotScheduleSchema.openapi('SnapshotSchedule', {
  description:
    'A scheduled snapshot (without RAM) every `everyHours` hours, named auto-<yyyymmdd>-<hhmmss> (UTC). After each, the scheduled snapshots outside `retention` are deleted, the oldest first (one per cron run, every 5 minutes): those neither among the newest `keepLast` nor younger than `keepDays`. Snapshots taken by hand are never deleted. A schedule may keep at most 100 scheduled snapshots.',
  example: { everyHours: 24, retention: { keepLast: 7 } },
});
const SettingIn = z
  .union([ScheduleOut, SnapshotsOffSchema.openapi('SnapshotsOff', { description: 'No scheduled snapshots, whatever the template says' })])
  .openapi('DesktopSnapshotScheduleSetting');

const ScheduleViewSchema = z
  .object({
    own: DesktopScheduleSettingSchema.nullable().openapi({ description: 'The desktop’s own setting; null: it follows its template' }),
    template: SnapshotScheduleSchema.nullable().openapi({ description: 'Its template’s schedule, if any' }),
    effective: SnapshotScheduleSchema.nullable().openapi({ description: 'The schedule that applies; null: no scheduled snapshots' }),
    source: z.enum(['desktop', 'template']).nullable().openapi({ description: 'Where `effective` comes from' }),
    nextCheckAt: z.string().nullable().openapi({
      description:
        'When the cron next looks at the desktop (it takes a snapshot then if one is due, and the desktop is RUNNING or STOPPED and not busy; else it tries at the next run)',
    }),
    lastRunAt: z.string().nullable().openapi({ description: 'When a scheduled snapshot was last asked for' }),
  })
  .openapi('SnapshotScheduleView');

const scheduleErrors = {
  400: errorSpec('Invalid schedule (everyHours 1 to 168; retention with keepLast 1 to 100 and/or keepDays 1 to 3650; at most 100 kept)'),
  401: errors[401],
  403: errors[403],
  404: errorSpec('No such desktop (or not yours)'),
  409: errorSpec('SNAPSHOTS_UNSUPPORTED: a WebRTC (Selkies) desktop has no VM to snapshot'),
} as const;

async function scheduleView(c: { env: AppEnv['Bindings']; var: AppEnv['Variables'] }, d: { id: string; templateId: string | null }) {
  const row = await withDb(c.var.cfg, (db) => desktopSchedule(db, d.id, d.templateId));
  const { schedule, source } = effectiveSchedule(row.own, row.template);
  return { own: row.own, template: row.template, effective: schedule, source, nextCheckAt: row.dueAt, lastRunAt: row.runAt };
}

snapshotRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/snapshot-schedule',
    summary: 'A desktop’s scheduled snapshots',
    description:
      'Its own setting, its template’s schedule, and the one that applies (its own wins; `{ "off": true }` turns its template’s off for it). Scheduled snapshots do not count against the snapshot quota: retention bounds them.',
    security: bearerAuth,
    request: { params: IdParams },
    responses: { 200: jsonSpec(ScheduleViewSchema, 'The schedule'), ...scheduleErrors },
  }),
  async (c) => {
    const { desktop } = await loadDesktop(c.env, c.var.principal, c.req.valid('param').id);
    const view = await scheduleView(c, desktop);
    return c.json(success(view, view.effective ? `A snapshot every ${view.effective.everyHours} h` : 'No scheduled snapshots'), 200);
  },
);

snapshotRoutes.openapi(
  createRoute({
    method: 'put',
    path: '/{id}/snapshot-schedule',
    summary: 'Set a desktop’s own snapshot schedule (or turn scheduled snapshots off for it)',
    description:
      'Replaces the desktop’s own setting: a schedule `{ everyHours, retention: { keepLast?, keepDays? } }`, which wins over its template’s, or `{ "off": true }`. The first scheduled snapshot is taken at the next cron run (within 5 minutes) unless the desktop already has a scheduled snapshot younger than the interval. Turning it off leaves the scheduled snapshots already taken.',
    security: bearerAuth,
    request: { params: IdParams, body: { required: true, content: { 'application/json': { schema: SettingIn } } } },
    responses: { 200: jsonSpec(ScheduleViewSchema, 'Saved'), ...scheduleErrors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    refuseUnlessVm(desktop);
    const setting = c.req.valid('json');
    await withDb(c.var.cfg, (db) => setDesktopSchedule(db, desktop.id, setting, actorOf(p)));
    c.set('auditTarget', desktop.id);
    c.set('auditDetails', { setting });
    const view = await scheduleView(c, desktop);
    return c.json(success(view, 'off' in setting ? 'Scheduled snapshots off' : `A snapshot every ${setting.everyHours} h`), 200);
  },
);

snapshotRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}/snapshot-schedule',
    summary: 'Clear a desktop’s own snapshot schedule: its template’s applies again',
    description: 'Idempotent. The scheduled snapshots already taken stay.',
    security: bearerAuth,
    request: { params: IdParams },
    responses: { 200: jsonSpec(ScheduleViewSchema, 'Cleared'), ...scheduleErrors },
  }),
  async (c) => {
    const p = c.var.principal;
    const { desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    await withDb(c.var.cfg, (db) => setDesktopSchedule(db, desktop.id, null, actorOf(p)));
    c.set('auditTarget', desktop.id);
    const view = await scheduleView(c, desktop);
    return c.json(
      success(view, view.effective ? `Following the template: a snapshot every ${view.effective.everyHours} h` : 'No scheduled snapshots'),
      200,
    );
  },
);
