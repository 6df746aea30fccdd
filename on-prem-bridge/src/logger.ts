/**
 * One JSON line per event on stdout, so any log shipper can parse the bridge without
 * configuration. Callers pass structured fields; a key-name filter is a last line of
 * defence against a secret slipping into a log line (the code never logs secrets on
 * purpose: config is summarised with `configSummary`).
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. commandId, desktopId). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where finished lines go; stdout by default, an array in tests. */
  write?: (line: string) => void;
  now?: () => Date;
}

const SECRET_KEY = /secret|password|passwd|^token$|authtoken|authorization|cookie|sitekey|apikey/i;

/**
 * stdout, one write per turn of the event loop: under load many commands log in the same turn, and a write
 * is a system call (a synchronous one, for a pipe). What is pending goes out before the process exits.
 */
const stdoutLines = (() => {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = `${pending.join('\n')}\n`;
    pending = [];
    process.stdout.write(text);
  };
  process.on('exit', flush);
  return (line: string) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
})();

export function createLogger(options: LoggerOptions = {}, bindings: LogFields = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? 'info');
  const write = options.write ?? stdoutLines;
  const now = options.now ?? (() => new Date());
  // A child's fields go on every line it writes: cleaned once, not per line.
  const bound = sanitize(bindings);

  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const record = { time: now().toISOString(), level, msg, ...bound, ...(fields ? sanitize(fields) : undefined) };
    write(JSON.stringify(record));
  };

  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger(options, { ...bindings, ...fields }),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

function sanitize(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : plain(value);
  }
  return out;
}

// Errors do not survive JSON.stringify (their fields are not enumerable), and their
// stacks belong in a debugger, not in every line an operator reads.
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const extra = value as Error & { status?: unknown; system?: unknown; retryable?: unknown };
    return { name: value.name, message: value.message, status: extra.status, system: extra.system, retryable: extra.retryable };
  }
  return value;
}
