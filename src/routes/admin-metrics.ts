/**
 * GET /api/v1/admin/desktops/{id}/metrics: a desktop's recent CPU, memory, network and disk
 * use, read live by its site's bridge from Proxmox (status/current and an hour of rrddata).
 * A desktop with nothing to read (a Selkies pod, no VM yet, deleted) answers an empty
 * series with the reason, not an error.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { notFound } from '../errors';
import { success } from '../lib/envelope';
import { unwrap } from '../lib/result';
import { type DesktopMetrics, DesktopMetricsSchema } from '../schemas/bridge-protocol';
import { type Desktop, DesktopIdSchema } from '../schemas/desktop';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

export const adminMetricsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

export const SELKIES_METRICS_REASON =
  'Selkies desktops run as Kubernetes pods; the bridge does not collect pod CPU, memory, network or disk use (no metrics-server reading yet)';

/** Why a desktop has no VM to read now, or null when it has one. */
export function nothingToRead(desktop: Desktop): string | null {
  if (desktop.backend === 'selkies') return SELKIES_METRICS_REASON;
  if (desktop.status === 'DELETED') return 'The desktop is deleted; its VM is gone';
  if (desktop.vmId === null || desktop.node === null) return `The desktop has no VM yet (it is ${desktop.status})`;
  return null;
}

adminMetricsRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/desktops/{id}/metrics',
    summary: "A desktop's CPU, memory, network and disk use over the last hour",
    description:
      'Read live from Proxmox by the site bridge (status/current; rrddata timeframe=hour, cf=AVERAGE: one row a minute). ' +
      'Selkies desktops, and desktops without a VM, answer source "none", an empty series and the reason.',
    security: bearerAuth,
    request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) }) },
    responses: {
      200: jsonSpec(DesktopMetricsSchema, 'The desktop’s recent use'),
      400: errorSpec('Invalid input'),
      401: errorSpec('Missing or invalid token'),
      403: errorSpec('Not an admin'),
      404: errorSpec('No such desktop'),
      503: errorSpec('The site’s bridge is offline or could not read the VM'),
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    if (!DesktopIdSchema.safeParse(id).success) throw notFound('Desktop');
    const desktop = await c.env.DESKTOP_SESSION.getByName(id).get();
    if (!desktop) throw notFound('Desktop');
    const reason = nothingToRead(desktop);
    let metrics: DesktopMetrics;
    if (reason !== null || desktop.vmId === null || desktop.node === null) {
      metrics = { desktopId: id, source: 'none', reason, takenAt: new Date().toISOString(), current: null, series: [] };
    } else {
      metrics = unwrap(await c.env.SITE_HUB.getByName(desktop.siteId).desktopMetrics(id, desktop.vmId, desktop.node));
    }
    return c.json(success(metrics, 'Desktop metrics'), 200);
  },
);
