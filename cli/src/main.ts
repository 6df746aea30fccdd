/**
 * cdaas: the Cloud Desktop control plane on the command line, on top of @cdaas/sdk.
 * Exit codes by outcome are in ./exit-codes.ts; with --json, stdout is one JSON document.
 */
import { CdaasError } from '@cdaas/sdk';
import { Command, CommanderError } from 'commander';
import { COMMAND_GROUPS } from './commands/index.ts';
import { type Context, createContext, type GlobalOptions } from './context.ts';
import { EXIT, exitCodeOf } from './exit-codes.ts';
import { createOutput } from './output.ts';

const program = new Command('cdaas')
  .description('Cloud desktops on your own hardware: create, follow, open and end them')
  .version('0.1.0')
  .option('--url <address>', 'the API address (default: CDAAS_URL, or the one saved by cdaas login)')
  .option('--json', 'print the result as one JSON document on stdout (errors too)')
  .option('--no-progress', 'no progress display while waiting')
  .showHelpAfterError()
  .exitOverride();

let ctx: Context | undefined;
const globals = () => program.opts<GlobalOptions>();
const context = () => {
  ctx ??= createContext(createOutput({ json: Boolean(globals().json), progress: globals().progress !== false }), globals());
  return ctx;
};
for (const register of COMMAND_GROUPS) register(program, context);

process.on('SIGINT', () => {
  process.stderr.write('\ninterrupted\n');
  process.exit(EXIT.INTERRUPTED);
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and --version end here too, with code 0; commander has printed the rest.
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  const code = exitCodeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (globals().json) {
    const error =
      err instanceof CdaasError
        ? { code: err.code, status: err.status, message, requestId: err.requestId, details: err.details }
        : { code: err instanceof Error ? err.name : 'Error', message };
    process.stdout.write(`${JSON.stringify({ error, exitCode: code }, null, 2)}\n`);
  }
  process.stderr.write(`cdaas: ${message}${err instanceof CdaasError && err.requestId ? ` (request ${err.requestId})` : ''}\n`);
  return code;
}
