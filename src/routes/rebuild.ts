/**
 * POST /api/v1/desktops/{id}/rebuild: the desktop becomes a new VM cloned from its template, keeping the old VM's
 * data disk where the template has one (as Amazon WorkSpaces rebuilds a WorkSpace: a fresh system volume, the user
 * volume kept). The owner, the service that created it, or an admin; 202 with the desktop PROVISIONING. The rules
 * (which statuses, which backends, not while a snapshot operation runs) are src/desktop/decide.ts's.
 */
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { actorOf } from '../auth/jwt';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import { DesktopSchema } from '../schemas/desktop';
import { IdParams, loadDesktop } from './desktops';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const rebuildRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

rebuildRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/rebuild',
    summary: 'Rebuild a desktop from its template, keeping its data disk',
    description:
      'Answers 202 with the desktop PROVISIONING: the site clones a new VM from the desktop’s template, moves the old VM’s data disk onto it in place of the template’s empty one (Proxmox’s move_disk to another VM; a template without a data disk keeps nothing), destroys the old VM with its snapshots, and brings the new one online as after a create (PROVISIONING → STARTING → WAITING_FOR_IP → CONFIGURING → RUNNING), whether the desktop was RUNNING, STOPPED or FAILED (a FAILED desktop’s way back with its data disk, when its VM still exists; a rebuild that failed picks up where it stopped). What was on the system disk is gone; what was on the data disk stays. The desktop keeps its id and connection; its `vmId` changes. The transition’s event is `rebuild`; desktop.rebuilt follows desktop.running. 409 INVALID_STATE unless RUNNING, STOPPED or FAILED, or for a WebRTC (Selkies) desktop; 409 CONFLICT while a snapshot is being taken or deleted.',
    security: bearerAuth,
    request: { params: IdParams },
    responses: {
      202: jsonSpec(DesktopSchema.openapi('Desktop'), 'Rebuild initiated'),
      401: errorSpec('Missing or invalid token'),
      403: errorSpec('Not allowed'),
      404: errorSpec('No such desktop (or not yours)'),
      409: errorSpec('INVALID_STATE (not RUNNING, STOPPED or FAILED, or a WebRTC desktop), CONFLICT (a snapshot operation running)'),
    },
  }),
  async (c) => {
    const p = c.var.principal;
    const { stub, desktop } = await loadDesktop(c.env, p, c.req.valid('param').id);
    const after = unwrap(await stub.act({ action: 'rebuild', actor: actorOf(p), requestId: c.var.requestId }));
    c.set('auditTarget', desktop.id);
    return c.json(success(after, `Rebuilding desktop ${desktop.id} from its template.`), 202);
  },
);
