import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { success } from '../lib/envelope';
import { jsonSpec } from './openapi';
import { PLANS, PlanSchema } from '../schemas/desktop';

const PlanOut = z.object({ plan: PlanSchema, cpuCores: z.number(), memoryMb: z.number(), description: z.string() }).openapi('Plan');

export const planRoutes = new OpenAPIHono<AppEnv>();

planRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'Desktop plans (PRD 5.1)',
    responses: { 200: jsonSpec(z.array(PlanOut), 'The plans') },
  }),
  (c) => {
    const plans = PlanSchema.options.map((plan) => ({ plan, ...PLANS[plan] }));
    return c.json(success(plans, `${plans.length} plans`), 200);
  },
);
