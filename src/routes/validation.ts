import type { Hook } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env';
import { ApiError } from '../errors';

/** Every request validated by zod fails the same way: 400 VALIDATION_FAILED naming each bad field. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new ApiError('VALIDATION_FAILED', `Invalid ${result.target}: ${summary}`, issues);
};
