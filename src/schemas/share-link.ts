/**
 * Share links: a desktop's owner lets someone without an account into the desktop's live
 * Guacamole session, to watch (view) or to use it too (control), until a time and for a
 * number of openings. Guacamole shares the owner's session, not the desktop: a guest gets
 * in only while the owner is connected, and is dropped when the owner disconnects.
 */
import { ShareModeSchema } from './bridge-protocol';
import { z } from './zod';

export { ShareModeSchema, type ShareMode } from './bridge-protocol';

export const SHARE_LINK_LIMITS = {
  /** Short links are for showing someone something now; a test may use one that lapses quickly. */
  minTtlSeconds: 5,
  defaultTtlSeconds: 3600,
  /** A week: longer access is an account's business, not a link's. */
  maxTtlSeconds: 7 * 24 * 3600,
  maxUses: 100,
  /** Links a desktop may have that can still be opened (revoked, expired and used-up ones do not count). */
  maxOpenPerDesktop: 20,
} as const;

const { minTtlSeconds, defaultTtlSeconds, maxTtlSeconds, maxUses } = SHARE_LINK_LIMITS;

export const CreateShareLinkSchema = z
  .strictObject({
    mode: ShareModeSchema.openapi({
      description: 'view: the guest sees the desktop, their keyboard and mouse are ignored (read-only). control: the guest uses it too',
      example: 'view',
    }),
    ttlSeconds: z
      .number()
      .int()
      .min(minTtlSeconds)
      .max(maxTtlSeconds)
      .optional()
      .openapi({
        description: `Lifetime in seconds, ${minTtlSeconds} to ${maxTtlSeconds} (a week); default ${defaultTtlSeconds}`,
        example: 3600,
      }),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: 'Instead of ttlSeconds: when the link stops working (within a week)', example: '2026-12-31T18:00:00Z' }),
    maxUses: z
      .number()
      .int()
      .min(1)
      .max(maxUses)
      .optional()
      .openapi({ description: `How many times the link may be opened, 1 to ${maxUses}; default 1`, example: 1 }),
  })
  .refine((v) => v.ttlSeconds === undefined || v.expiresAt === undefined, { message: 'Send ttlSeconds or expiresAt, not both' })
  .openapi('CreateShareLinkRequest');
export type CreateShareLink = z.infer<typeof CreateShareLinkSchema>;

export const ShareLinkStateSchema = z.enum(['active', 'revoked', 'expired', 'used_up']).openapi({
  description: 'active: can be opened (while the desktop runs and its owner is connected); the others cannot, ever again',
});
export type ShareLinkState = z.infer<typeof ShareLinkStateSchema>;

export const ShareLinkSchema = z
  .object({
    id: z.string(),
    desktopId: z.string(),
    mode: ShareModeSchema,
    state: ShareLinkStateSchema,
    createdAt: z.string(),
    createdBy: z.string(),
    expiresAt: z.string(),
    maxUses: z.number().int(),
    uses: z.number().int().openapi({ description: 'Times a guest opened it' }),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
  })
  .openapi('ShareLink');
export type ShareLink = z.infer<typeof ShareLinkSchema>;

export const CreatedShareLinkSchema = ShareLinkSchema.extend({
  url: z.string().openapi({
    description:
      'The guest’s link, shown this once: its secret is after the #, which browsers never send to a server. Anyone holding it may open the desktop as the link allows',
  }),
}).openapi('CreatedShareLink');
export type CreatedShareLink = z.infer<typeof CreatedShareLinkSchema>;

export const RevokedShareLinkSchema = ShareLinkSchema.extend({
  guestsEnded: z.number().int().nullable().openapi({
    description:
      'Guests who had come in through the link and were disconnected now. null: the desktop’s site could not be reached, so they stay until the owner disconnects (revoking again retries)',
  }),
}).openapi('RevokedShareLink');
export type RevokedShareLink = z.infer<typeof RevokedShareLinkSchema>;

/** What the guest's page POSTs: the part of the link after `#`. */
export const RedeemShareLinkSchema = z
  .strictObject({ token: z.string().min(1).max(300).openapi({ description: 'The part of the share link after #' }) })
  .openapi('RedeemShareLinkRequest');

export const RedeemedShareLinkSchema = z
  .object({
    url: z.string().openapi({ description: 'Opens the owner’s live session in the Guacamole web client; no account needed' }),
    mode: ShareModeSchema,
    desktopName: z.string(),
  })
  .openapi('RedeemedShareLink');
