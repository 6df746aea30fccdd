/**
 * `npm run -s token -- USER [--role admin|service]`: prints a bearer token the local
 * stack accepts (HS256 with the JWT_SECRET of .dev.vars), and nothing else. For a
 * deployment (README "Deploy"): its JWT_SECRET in the environment, and its JWT_ISSUER and
 * JWT_AUDIENCE as --issuer and --audience.
 */
import { parseArgs } from 'node:util';
import { isUserId } from '../src/schemas/user-id';
import { ensureLocalConfig } from './lib/local-config';
import { signToken, type TokenRole } from './lib/tokens';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { role: { type: 'string', multiple: true }, ttl: { type: 'string' }, issuer: { type: 'string' }, audience: { type: 'string' } },
});
const user = positionals[0];
const roles = (values.role ?? []).flatMap((r) => r.split(','));
const bad = roles.filter((r) => r !== 'admin' && r !== 'service');
if (!user || bad.length > 0 || !isUserId(user)) {
  process.stderr.write(
    'usage: [JWT_SECRET=…] npm run -s token -- USER [--role admin|service] [--ttl 12h] [--issuer ISS] [--audience AUD]\n',
  );
  process.exit(2);
}
const secret = process.env.JWT_SECRET || ensureLocalConfig().jwtSecret;
const token = await signToken(secret, user, {
  roles: roles as TokenRole[],
  ttl: values.ttl,
  issuer: values.issuer,
  audience: values.audience,
});
process.stdout.write(`${token}\n`);
