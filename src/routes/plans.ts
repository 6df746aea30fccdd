import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { envelope, success } from '../lib/envelope';
import { PLANS, PlanSchema } from '../schemas/desktop';

const PlanOut = z.object({ plan: PlanSchema, cpuCores: z.number(), memoryMb: z.number(), description: z.string() }).openapi('Plan');

export const planRoutes = new OpenAPIHono<AppEnv>();

planRoutes.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'Desktop plans (PRD 5.1)',
    responses: { 200: { description: 'The plans', content: { 'application/json': { schema: envelope(z.array(PlanOut)) } } } },
  }),
  (c) => {
    const plans = PlanSchema.options.map((plan) => ({ plan, ...PLANS[plan] }));
    return c.json(success(plans, `${plans.length} plans`), 200);
  },
);
