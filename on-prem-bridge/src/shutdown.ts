/**
 * SIGTERM/SIGINT handling as graphile-worker does it: the first signal starts a
 * graceful stop, a second one exits at once (an operator pressing Ctrl-C twice means it).
 */
import type { Logger } from './logger';

export function onShutdownSignals(
  stop: (signal: NodeJS.Signals) => Promise<void>,
  log: Logger,
  exit: (code: number) => void = process.exit,
): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal; exiting now', { signal });
      exit(1);
      return;
    }
    stopping = true;
    log.info('signal received; finishing running commands (send it again to exit now)', { signal });
    stop(signal).then(
      () => exit(0),
      (err: unknown) => {
        log.error('graceful stop failed', { error: err });
        exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
