/** An alarm this late is presumed lost; the cron sweep then nudges the desktop (./sweep.ts). */
export const SWEEP_LATE_MS = 60_000;
