/**
 * Templates: GET /api/v1/templates lists what a user may launch; admins create, replace
 * and retire them under /api/v1/admin/templates. Retiring keeps existing desktops
 * working; it only stops new launches.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { withDb } from '../db/client';
import { getTemplate, listTemplates, putTemplate, retireTemplate } from '../db/queries';
import { ApiError, notFound } from '../errors';
import { success } from '../lib/envelope';
import { forgetTemplates } from '../lib/template-cache';
import { poolDirectory } from '../lib/pool-claim';
import { type Template, TemplateIdSchema, TemplateInputSchema, TemplateSchema, templateProblems } from '../schemas/template';
import { bearerAuth, errorSpec, jsonSpec } from './openapi';
import { validationHook } from './validation';

const TemplateOut = TemplateSchema.openapi('Template');
const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'gpu-workstation' }) });
const errors = {
  400: errorSpec('Invalid input'),
  401: errorSpec('Missing or invalid token'),
  403: errorSpec('Not an admin'),
  404: errorSpec('No such template'),
} as const;

export const templateRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

templateRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'Templates you may launch',
    security: bearerAuth,
    responses: { 200: jsonSpec(z.array(TemplateOut), 'Active templates'), ...errors },
  }),
  async (c) => {
    const list = await withDb(c.var.cfg, (db) => listTemplates(db, { includeRetired: false }));
    return c.json(success(list, `${list.length} templates`), 200);
  },
);

templateRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    summary: 'A template',
    security: bearerAuth,
    request: { params: IdParam },
    responses: { 200: jsonSpec(TemplateOut, 'Template'), ...errors },
  }),
  async (c) => {
    const id = c.req.valid('param').id;
    const t = TemplateIdSchema.safeParse(id).success ? await withDb(c.var.cfg, (db) => getTemplate(db, id)) : null;
    if (!t || t.retiredAt) throw notFound('Template');
    return c.json(success(t, 'Template'), 200);
  },
);

/** Admin side, mounted under /api/v1/admin (behind its admin check). */
export const adminTemplateRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

adminTemplateRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/templates',
    summary: 'Every template, retired ones included',
    security: bearerAuth,
    responses: { 200: jsonSpec(z.array(TemplateOut), 'Templates'), ...errors },
  }),
  async (c) => {
    const list = await withDb(c.var.cfg, (db) => listTemplates(db, { includeRetired: true }));
    return c.json(success(list, `${list.length} templates`), 200);
  },
);

async function save(c: { env: AppEnv['Bindings']; var: AppEnv['Variables'] }, id: string, input: z.infer<typeof TemplateInputSchema>) {
  if (!TemplateIdSchema.safeParse(id).success) throw new ApiError('VALIDATION_FAILED', 'template ids are lowercase letters, digits and -');
  const problems = templateProblems(input);
  if (problems.length) throw new ApiError('VALIDATION_FAILED', `Invalid template: ${problems.join('; ')}`, problems);
  const result = await withDb(c.var.cfg, (db) => putTemplate(db, id, input));
  forgetTemplates();
  return { ...result, pools: result.created ? [] : await poolsFollow(c.env, result.template) };
}

/**
 * The template's warm pools build from it as it is now: their ready desktops made from the earlier version are
 * replaced, never handed out (workers/warm-pool/pool-directory.ts templateChanged). Answers the pools told.
 */
async function poolsFollow(env: AppEnv['Bindings'], template: Template): Promise<string[]> {
  try {
    return await poolDirectory(env).templateChanged(template);
  } catch (err) {
    // The template is saved; its pools follow when the template or the pool is saved again.
    console.error(JSON.stringify({ msg: 'template change not passed to its warm pools', templateId: template.id, error: String(err) }));
    return [];
  }
}

/** For the answer's message: which warm pools follow the change, and how. */
const poolsNote = (pools: string[], how: string) => (pools.length === 0 ? '' : `; warm pools told: ${pools.join(', ')} (${how})`);

adminTemplateRoutes.openapi(
  createRoute({
    method: 'post',
    path: '/templates',
    summary: 'Create a template',
    security: bearerAuth,
    request: {
      body: {
        required: true,
        content: { 'application/json': { schema: TemplateInputSchema.extend({ id: TemplateIdSchema }).openapi('NewTemplate') } },
      },
    },
    responses: { 201: jsonSpec(TemplateOut, 'Created'), 409: errorSpec('A template with this id exists'), ...errors },
  }),
  async (c) => {
    const { id, ...input } = c.req.valid('json');
    if (await withDb(c.var.cfg, (db) => getTemplate(db, id))) throw new ApiError('CONFLICT', `Template ${id} exists; replace it with PUT`);
    const { template } = await save(c, id, input);
    c.header('Location', `/api/v1/templates/${id}`);
    return c.json(success(template, 'Template created'), 201);
  },
);

adminTemplateRoutes.openapi(
  createRoute({
    method: 'put',
    path: '/templates/{id}',
    summary: 'Create or replace a template (un-retires it)',
    description:
      'A warm pool of this template builds from it as it is now: its unclaimed desktops made from the earlier version (another plan, image, Proxmox template, GPU slots, storage or session limits; not a new name alone) are never handed out and are replaced.',
    security: bearerAuth,
    request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: TemplateInputSchema } } } },
    responses: { 200: jsonSpec(TemplateOut, 'Saved'), ...errors },
  }),
  async (c) => {
    const { template, created, pools } = await save(c, c.req.valid('param').id, c.req.valid('json'));
    const how = 'their desktops made from the earlier version are replaced';
    return c.json(success(template, created ? 'Template created' : `Template replaced${poolsNote(pools, how)}`), 200);
  },
);

adminTemplateRoutes.openapi(
  createRoute({
    method: 'delete',
    path: '/templates/{id}',
    summary: 'Retire a template: no new launches; existing desktops keep working',
    description: 'A warm pool of this template destroys its unclaimed desktops and builds none until the template is saved again.',
    security: bearerAuth,
    request: { params: IdParam },
    responses: { 200: jsonSpec(TemplateOut, 'Retired'), ...errors },
  }),
  async (c) => {
    const id = c.req.valid('param').id;
    const t = TemplateIdSchema.safeParse(id).success ? await withDb(c.var.cfg, (db) => retireTemplate(db, id)) : null;
    if (!t) throw notFound('Template');
    forgetTemplates();
    const pools = await poolsFollow(c.env, t);
    return c.json(success(t, `Template retired${poolsNote(pools, 'their unclaimed desktops are destroyed')}`), 200);
  },
);
