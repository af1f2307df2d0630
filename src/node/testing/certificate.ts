/**
 * Self-signed certificates for TLS tests on loopback: a P-256 key and an X.509 certificate for
 * 127.0.0.1 and localhost, made by the system's `openssl` (node:crypto makes keys but not
 * certificates), and the SPKI hash Chromium's `--ignore-certificate-errors-spki-list` takes.
 */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestCertificate {
  /** PEM files, for `proofsync node --tls-cert/--tls-key` and NODE_EXTRA_CA_CERTS. */
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** base64 SHA-256 of the certificate's SubjectPublicKeyInfo. */
  spki: string;
  /** Removes the files. */
  remove(): Promise<void>;
}

/** base64 SHA-256 of a PEM certificate's DER SubjectPublicKeyInfo. */
export function spkiHash(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/**
 * A certificate for `CN=localhost`, SAN `IP:127.0.0.1, DNS:localhost`, valid for two days.
 *
 * @example
 * const c = await selfSignedCertificate();
 * const browser = await launchChromium({ trustSpki: [c.spki] });
 */
export async function selfSignedCertificate(): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'proofsync-cert-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    await promisify(execFile)(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      { timeout: 30_000 },
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`openssl could not make a test certificate (is it installed?): ${(err as Error).message}`, { cause: err });
  }
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, cert, key, spki: spkiHash(cert), remove: () => rm(dir, { recursive: true, force: true }) };
}
