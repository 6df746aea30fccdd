import { SignJWT } from 'jose';

export type TokenRole = 'admin' | 'service';

/** Issuer and audience of the local stack, as wrangler.toml [vars] sets them. */
export const LOCAL_ISSUER = 'cdaas-local';
export const LOCAL_AUDIENCE = 'cdaas-api';

export async function signToken(
  secret: string,
  sub: string,
  opts: { roles?: TokenRole[]; ttl?: string; issuer?: string; audience?: string } = {},
) {
  return new SignJWT({ roles: opts.roles ?? [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuer(opts.issuer ?? LOCAL_ISSUER)
    .setAudience(opts.audience ?? LOCAL_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.ttl ?? '12h')
    .sign(new TextEncoder().encode(secret));
}
