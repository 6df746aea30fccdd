/**
 * How big a warm pool should be (issue 13): a fixed count for the running and the stopped
 * tier, schedule windows in the pool's time zone that set their own sizes (a peak window on
 * weekdays, say), and a demand rule that adds running members after recent misses; always
 * within a floor and a cap. The arithmetic is src/desktop/pool-sizing.ts.
 */
import { z } from './zod';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const ClockTimeSchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'a time of day as HH:MM (00:00 to 24:00)')
  .describe('Time of day in the pool’s time zone, HH:MM');

/** An IANA zone the runtime knows (Intl throws a RangeError for any other). */
const TimeZoneSchema = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'an IANA time zone such as Europe/Berlin or UTC' },
);

const Count = z.number().int().min(0).max(1000);

export const PoolWindowSchema = z
  .object({
    name: z.string().min(1).max(60),
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    /** From this time on each listed day; a window whose `to` is earlier runs past midnight into the next day. */
    from: ClockTimeSchema,
    to: ClockTimeSchema,
    running: Count,
    stopped: Count.optional(),
  })
  .refine((w) => w.from !== w.to, { message: 'a window must not start and end at the same time', path: ['to'] });
export type PoolWindow = z.infer<typeof PoolWindowSchema>;

export const PoolDemandRuleSchema = z.object({
  /** How far back claims and misses count. */
  windowMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60),
  /** Running members added per miss in the window. */
  perMiss: z.number().int().min(1).max(100),
  /** At most this many added by demand. */
  maxBoost: Count,
});
export type PoolDemandRule = z.infer<typeof PoolDemandRuleSchema>;

export const PoolSizingSchema = z
  .object({
    timeZone: TimeZoneSchema.default('UTC'),
    /** Outside every window. */
    running: Count,
    stopped: Count.default(0),
    windows: z.array(PoolWindowSchema).max(50).default([]),
    demand: PoolDemandRuleSchema.optional(),
    /** Running members never fewer than this, nor more than `cap` (demand included). */
    floor: Count.default(0),
    cap: Count,
  })
  .refine((s) => s.floor <= s.cap, { message: 'floor must not exceed cap', path: ['floor'] });
export type PoolSizing = z.infer<typeof PoolSizingSchema>;
