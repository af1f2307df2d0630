import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate, type TestCertificate } from '../node/testing/certificate.ts';
import { UsageError } from './io.ts';
import { tlsArgs } from './tls-args.ts';

let a: TestCertificate;
let b: TestCertificate;
beforeAll(async () => {
  [a, b] = await Promise.all([selfSignedCertificate(), selfSignedCertificate()]);
});
afterAll(async () => {
  await Promise.all([a?.remove(), b?.remove()]);
});

const day = 24 * 3600_000;

describe('tlsArgs (proofsync node --tls-cert/--tls-key)', () => {
  it('neither flag: no TLS', () => {
    expect(tlsArgs(undefined, undefined, undefined)).toBeUndefined();
    expect(tlsArgs(undefined, undefined, ['/ip4/0.0.0.0/tcp/4001/ws'])).toBeUndefined();
  });

  it('a matching certificate and key: their PEM bytes and a summary naming the certificate', () => {
    const t = tlsArgs(a.certFile, a.keyFile, undefined)!;
    expect(t.cert.toString()).toBe(a.cert);
    expect(t.key.toString()).toBe(a.key);
    expect(t.summary).toMatch(/^IP Address:127\.0\.0\.1, DNS:localhost, valid until \d{4}-/);
    expect(tlsArgs(a.certFile, a.keyFile, ['/ip4/0.0.0.0/tcp/443/tls/ws', '/ip4/0.0.0.0/tcp/80/ws'])).toBeDefined();
  });

  // [what, args, message]
  const refused: [string, () => Parameters<typeof tlsArgs>, RegExp][] = [
    ['a cert without a key', () => [a.certFile, undefined, undefined], /--tls-cert FILE and --tls-key FILE go together/],
    ['a key without a cert', () => [undefined, a.keyFile, undefined], /go together/],
    ['a /tls/ws listen address without a cert', () => [undefined, undefined, ['/ip4/0.0.0.0/tcp/443/tls/ws']], /--listen \/ip4\/0\.0\.0\.0\/tcp\/443\/tls\/ws needs --tls-cert/],
    ['a /wss listen address without a cert', () => [undefined, undefined, ['/dns4/x.example/tcp/443/wss']], /needs --tls-cert/],
    ['a cert but no secure listen address', () => [a.certFile, a.keyFile, ['/ip4/0.0.0.0/tcp/80/ws']], /add one, e\.g\. --listen/],
    ['a missing cert file', () => ['/nonexistent/cert.pem', a.keyFile, undefined], /--tls-cert: ENOENT/],
    ['a missing key file', () => [a.certFile, '/nonexistent/key.pem', undefined], /--tls-key: ENOENT/],
    ['a key file as the cert', () => [a.keyFile, a.keyFile, undefined], /--tls-cert .* not a PEM certificate/],
    ['a cert file as the key', () => [a.certFile, a.certFile, undefined], /--tls-key .* not a PEM private key/],
    ["another certificate's key", () => [a.certFile, b.keyFile, undefined], /is not the key of the certificate/],
    ['an expired cert', () => [a.certFile, a.keyFile, undefined, new Date(Date.now() + 3 * day)], /expired on/],
    ['a cert not yet valid', () => [a.certFile, a.keyFile, undefined, new Date(Date.now() - day)], /is not valid before/],
  ];
  for (const [what, args, message] of refused) {
    it(`refuses ${what} with a usage error`, () => {
      let err: unknown;
      try {
        tlsArgs(...args());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    });
  }
});
