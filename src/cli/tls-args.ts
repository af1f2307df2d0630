/**
 * `proofsync node --tls-cert FILE --tls-key FILE`: the certificate for secure WebSockets
 * (`/tls/ws`), the only WebSockets a page served over `https` may open. Everything a TLS
 * handshake would later fail on is checked here, at start, with a message naming the flag:
 * otherwise the node starts, announces its `/tls/ws` address, and every browser's handshake
 * fails with nothing in the node's output.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UsageError } from './io.ts';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** One line for the node's start-up output: names and expiry. */
  summary: string;
}

const isSecureWsAddr = (a: string): boolean => /\/(wss|tls\/ws)(\/|$)/.test(a);

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}

/**
 * Reads and checks `--tls-cert`/`--tls-key` against `--listen`; undefined when neither is given.
 *
 * @example
 * const tls = tlsArgs(o['tls-cert'], o['tls-key'], o.listen);
 * await startFullNode({ ..., tls });
 */
export function tlsArgs(certPath: string | undefined, keyPath: string | undefined, listen: string[] | undefined, now = new Date()): TlsFiles | undefined {
  if (certPath === undefined && keyPath === undefined) {
    const secure = listen?.find(isSecureWsAddr);
    if (secure) throw new UsageError(`--listen ${secure} needs --tls-cert FILE and --tls-key FILE`);
    return undefined;
  }
  if (certPath === undefined || keyPath === undefined) throw new UsageError('--tls-cert FILE and --tls-key FILE go together');
  if (listen && !listen.some(isSecureWsAddr)) {
    throw new UsageError('--tls-cert is used by a /tls/ws listen address: add one, e.g. --listen /ip4/0.0.0.0/tcp/443/tls/ws');
  }
  const cert = readPem(certPath, 'tls-cert');
  const key = readPem(keyPath, 'tls-key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new UsageError(`--tls-cert ${certPath}: not a PEM certificate (${(err as Error).message})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new UsageError(`--tls-key ${keyPath}: not a PEM private key (${(err as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new UsageError(`--tls-key ${keyPath} is not the key of the certificate in ${certPath}`);
  const validFrom = new Date(x509.validFrom);
  const validTo = new Date(x509.validTo);
  if (now > validTo) throw new UsageError(`--tls-cert ${certPath} expired on ${validTo.toISOString()}`);
  if (now < validFrom) throw new UsageError(`--tls-cert ${certPath} is not valid before ${validFrom.toISOString()}`);
  const names = x509.subjectAltName ?? x509.subject.replaceAll('\n', ', ');
  return { cert, key, summary: `${names}, valid until ${validTo.toISOString()}` };
}
