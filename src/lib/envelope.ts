/** The PRD response envelope: `{ success: true, message, data }`. */
import { z } from '../schemas/zod';

export function envelope<T extends z.ZodType>(data: T) {
  return z.object({ success: z.literal(true), message: z.string(), data });
}

export const success = <T>(data: T, message: string) => ({ success: true as const, message, data });
