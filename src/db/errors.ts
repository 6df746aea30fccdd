/**
 * What a database error may say in a log line or a stored record. Drizzle's query errors
 * carry the statement and every parameter in their message ("Failed query: … params: …"),
 * and parameters can be secrets (a webhook's signing secret) or whatever a user typed;
 * only Postgres' own code and message are kept.
 */

interface PgLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** The Postgres error underneath drizzle's wrapper, if there is one. */
function pgError(err: unknown): PgLike | null {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const candidate = e as PgLike;
    if (typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code)) return candidate;
    e = candidate.cause;
  }
  return null;
}

/** SQLSTATE of the error (e.g. 22021), or null when it did not come from Postgres. */
export function sqlState(err: unknown): string | null {
  return (pgError(err)?.code as string | undefined) ?? null;
}

/**
 * Postgres refused this row for what it holds (a data exception, class 22: bad encoding,
 * out of range; or an integrity violation, class 23): sending it again cannot succeed,
 * unlike a lost connection or an unreachable database.
 */
export function isRowRefusal(err: unknown): boolean {
  const state = sqlState(err);
  return state !== null && (state.startsWith('22') || state.startsWith('23'));
}

/** A loggable description: Postgres' code and message, never drizzle's statement and parameters. */
export function describeDbError(err: unknown): string {
  const pg = pgError(err);
  if (pg) return `${String(pg.code)}: ${String(pg.message ?? '').slice(0, 200)}`;
  if (err instanceof Error) {
    // Drizzle's own errors without a Postgres cause still carry the statement and parameters.
    if (err.message.startsWith('Failed query:')) return 'database query failed';
    return `${err.name}: ${err.message.slice(0, 200)}`;
  }
  return 'database error';
}
