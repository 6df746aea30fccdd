/**
 * Certificates for the simulators' HTTPS, made with @peculiar/x509 on Node's WebCrypto:
 * a private CA (what pveproxy's pve-root-ca.pem and K3s's server CA are), server
 * certificates it signs, and Traefik's self-signed "TRAEFIK DEFAULT CERT" that a route
 * without a matching certificate is answered with. ECDSA P-256 keys: small and quick.
 *
 * `ensureDevCa(dir)` keeps one CA per checkout on disk (npm run dev writes it to .local/
 * and points the bridge at it); tests make throwaway ones in a temporary folder.
 */
import 'reflect-metadata';
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface Issued {
  /** PEM of the certificate. */
  cert: string;
  /** PEM (PKCS#8) of its private key. */
  key: string;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex, as Proxmox's GUI shows it. */
  fingerprint256: string;
}

interface Signer {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  // Positive (high bit clear), 16 random bytes as RFC 5280 recommends.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

export function fingerprintOf(certPem: string): string {
  return new NodeX509(certPem).fingerprint256;
}

function sanExtension(names: string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
  );
}

async function finish(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Issued> {
  const pem = cert.toString('pem');
  return { cert: pem, key: await keyPem(keys.privateKey), fingerprint256: fingerprintOf(pem) };
}

export async function createCa(commonName: string, validDays = 3650): Promise<Issued> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + validDays * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return finish(cert, keys);
}

async function signerOf(ca: Pick<Issued, 'cert' | 'key'>): Promise<Signer> {
  const der = x509.PemConverter.decodeFirst(ca.key);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
  return { cert: new x509.X509Certificate(ca.cert), privateKey: privateKey as CryptoKey };
}

/** A server certificate for `names` (DNS names and IP addresses) signed by `ca`. */
export async function issueServerCert(ca: Pick<Issued, 'cert' | 'key'>, names: string[], validDays = 825): Promise<Issued> {
  const signer = await signerOf(ca);
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? 'localhost'}`,
    issuer: signer.cert.subject,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + validDays * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      sanExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(signer.cert),
    ],
  });
  return finish(cert, keys);
}

/** A self-signed leaf, as Traefik generates for its default certificate. */
export async function selfSignedCert(commonName: string, names: string[] = []): Promise<Issued> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 365 * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]), ...(names.length ? [sanExtension(names)] : [])],
  });
  return finish(cert, keys);
}

export interface DevCa {
  dir: string;
  /** The CA certificate the bridge trusts (…_CA_FILE). */
  caFile: string;
  ca: Issued;
  /** The simulators' certificate: 127.0.0.1, ::1, localhost. */
  server: Issued;
  serverCertFile: string;
  serverKeyFile: string;
  /** The wildcard certificate of the Selkies session hosts (*.<routeDomain>), for the routes' TLS secret. */
  routes: Issued;
}

const SERVER_NAMES = ['localhost', '127.0.0.1', '::1'];

function readIssued(certFile: string, keyFile: string): Issued | null {
  if (!existsSync(certFile) || !existsSync(keyFile)) return null;
  const cert = readFileSync(certFile, 'utf8');
  const parsed = new NodeX509(cert);
  // Re-issue a month before expiry rather than fail on the day.
  if (Date.parse(parsed.validTo) - Date.now() < 30 * DAY_MS) return null;
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint256: parsed.fingerprint256 };
}

function write(file: string, text: string, mode: number): void {
  writeFileSync(file, text, { mode });
}

/** The CA and certificates in `dir`, made on first use (the CA's key never leaves it). */
export async function ensureDevCa(dir: string, routeDomain = 'desk.localhost'): Promise<DevCa> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (name: string) => join(dir, name);
  let ca = readIssued(f('ca.pem'), f('ca-key.pem'));
  let fresh = false;
  if (!ca) {
    ca = await createCa('cdaas development CA');
    write(f('ca.pem'), ca.cert, 0o644);
    write(f('ca-key.pem'), ca.key, 0o600);
    fresh = true;
  }
  const leaf = async (base: string, names: string[]) => {
    const existing = fresh ? null : readIssued(f(`${base}.pem`), f(`${base}-key.pem`));
    if (existing) return existing;
    const issued = await issueServerCert(ca, names);
    write(f(`${base}.pem`), issued.cert, 0o644);
    write(f(`${base}-key.pem`), issued.key, 0o600);
    return issued;
  };
  const server = await leaf('server', SERVER_NAMES);
  const routes = await leaf('routes', [`*.${routeDomain}`]);
  return { dir, caFile: f('ca.pem'), ca, server, serverCertFile: f('server.pem'), serverKeyFile: f('server-key.pem'), routes };
}

/**
 * The simulators' TLS from SIM_TLS_CERT / SIM_TLS_KEY (file paths); without them the certificate `npm run dev` made in
 * .local/ca, so `npm run sim:proxmox` alone serves what .local/bridge.env expects; else none (plain HTTP).
 */
export function simTlsFromEnv(env: Record<string, string | undefined> = process.env): { cert: string; key: string } | undefined {
  const local = join(process.cwd(), '.local/ca');
  const fallback = existsSync(join(local, 'server.pem')) && existsSync(join(local, 'server-key.pem'));
  const certFile = env.SIM_TLS_CERT ?? (fallback ? join(local, 'server.pem') : undefined);
  const keyFile = env.SIM_TLS_KEY ?? (fallback ? join(local, 'server-key.pem') : undefined);
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('SIM_TLS_CERT and SIM_TLS_KEY go together (PEM files of the certificate and its key)');
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
