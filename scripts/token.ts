/**
 * `npm run -s token -- USER [--role admin|service]`: prints a bearer token the local
 * stack accepts (HS256 with the JWT_SECRET of .dev.vars), and nothing else.
 */
import { parseArgs } from 'node:util';
import { isUserId } from '../src/schemas/user-id';
import { ensureLocalConfig } from './lib/local-config';
import { signToken, type TokenRole } from './lib/tokens';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { role: { type: 'string', multiple: true }, ttl: { type: 'string' } },
});
const user = positionals[0];
const roles = (values.role ?? []).flatMap((r) => r.split(','));
const bad = roles.filter((r) => r !== 'admin' && r !== 'service');
if (!user || bad.length > 0 || !isUserId(user)) {
  process.stderr.write('usage: npm run -s token -- USER [--role admin|service] [--ttl 12h]\n');
  process.exit(2);
}
const { jwtSecret } = ensureLocalConfig();
process.stdout.write(`${await signToken(jwtSecret, user, { roles: roles as TokenRole[], ttl: values.ttl })}\n`);
