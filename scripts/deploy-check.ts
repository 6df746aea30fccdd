/**
 * `npm run deploy:check`: validates a production configuration of the edge without
 * deploying and without a network: prints a table of checks and exits 1 when any fails
 * (2 for a usage error). Options: scripts/lib/deploy-config.ts (USAGE); rules:
 * scripts/lib/deploy-check.ts.
 *
 *   npm run deploy:check -- --secrets-file prod.secrets.json
 *   npx wrangler secret list --format json | npm run deploy:check -- --secret-list -
 */
import { checkDeployment, renderTable } from './lib/deploy-check';
import { loadDeployment, parseDeployCheckArgs, USAGE, UsageError } from './lib/deploy-config';

try {
  const opts = parseDeployCheckArgs(process.argv.slice(2));
  const deployment = loadDeployment(opts);
  const rows = checkDeployment(deployment);
  const withValues = [...deployment.secrets.values()].filter((v) => v !== null).length;
  console.log(
    `deploy:check ${opts.config}${opts.env ? ` --env ${opts.env}` : ''}: ${deployment.secrets.size} secrets (${withValues} with values)\n`,
  );
  console.log(renderTable(rows));
  process.exitCode = rows.some((r) => r.status === 'fail') ? 1 : 0;
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  console.error(`deploy:check: ${err.message}\n${USAGE}`);
  process.exitCode = 2;
}
