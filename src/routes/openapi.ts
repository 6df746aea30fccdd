/** Building blocks for route definitions, so every route documents the same envelope and errors. */
import type { z } from 'zod';
import { ErrorEnvelopeSchema } from '../errors';
import { envelope } from '../lib/envelope';

/** The bearer JWT requirement (the scheme is registered in app.ts). */
export const bearerAuth = [{ bearerAuth: [] }];

/** A success response whose `data` is `schema`, in the PRD envelope. */
export const jsonSpec = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema: envelope(schema) } },
});

/** An error response in the envelope, for the given status. */
export const errorSpec = (description: string) => ({ description, content: { 'application/json': { schema: ErrorEnvelopeSchema } } });
