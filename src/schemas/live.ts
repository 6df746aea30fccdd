/**
 * What GET /api/v1/desktops/{id}/live sends, one message per WebSocket text frame or SSE
 * `data:` line: the desktop as it is now first, then each change with the desktop after it.
 * Registered in the OpenAPI document (components.schemas.LiveMessage) for the SDK.
 */
import { ActivitySourceSchema, DesktopSchema, TransitionRecordSchema, WarningKindSchema } from './desktop';
import { z } from './zod';

// The same component as the desktop routes' answers (src/routes/desktops.ts names it too), so the document holds it once.
const Desktop = DesktopSchema.openapi('Desktop');

export const LiveMessageSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('snapshot'), desktop: Desktop }),
    z.object({ type: z.literal('transition'), transition: TransitionRecordSchema, desktop: Desktop }),
    z.object({ type: z.literal('progress'), step: z.string(), message: z.string(), desktop: Desktop }),
    z.object({ type: z.literal('warning'), warning: WarningKindSchema, at: z.string(), desktop: Desktop }),
    z.object({ type: z.literal('activity'), source: ActivitySourceSchema, reason: z.string().nullable(), desktop: Desktop }),
  ])
  .openapi('LiveMessage');
export type LiveMessage = z.infer<typeof LiveMessageSchema>;
