/**
 * Secure WebSockets end to end: a real node started with `--tls-cert/--tls-key` (a self-signed
 * certificate for 127.0.0.1 made by the test) listens on `/tls/ws` alone and names it in
 * addresses.json; headless Chromium, which trusts exactly that certificate's key, loads the
 * light-client page over https and syncs over `wss` alone (no `ws`, no WebRTC in its bootstrap);
 * Node dials the same address through `proofsync fetch-range` when told to trust the
 * certificate, and refuses it when not.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { createServer, type Server } from 'node:https';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../src/core/bytes.ts';
import { generateKeyValues } from '../src/node/generate.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { selfSignedCertificate, type TestCertificate } from '../src/node/testing/certificate.ts';
import { chromiumTestBrowser } from './browsers/playwright.ts';
import { Cleanup, launchChromium, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { clientPage, fullSync, type CaseEnv } from './light-client/cases.ts';
import { nodeStatus } from './node-api.ts';
import { alive, rssMB } from './hostile/attacker-libp2p.ts';

const N = 5_000;
const BIN = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));
const expected = new Map(generateKeyValues(N, 1).map((kv) => [toHex(kv.key), toHex(kv.value)]));
const sampleKeys = [...expected.keys()].filter((_, i) => i % 499 === 0);
const cleanup = new Cleanup();
let cert: TestCertificate;
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;

const pageUrl = () => `${vite.url}/e2e/light-client/index.html`;

/** `proofsync ...` as a child process, with extra environment. */
async function run(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 30_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** An https server on loopback that counts completed TLS handshakes and refused ones. */
async function handshakeCounter(c: { cert: string; key: string }): Promise<{ server: Server; url: string; secure: () => number; refused: () => number }> {
  let secure = 0;
  let refused = 0;
  const server = createServer({ cert: c.cert, key: c.key }, (_req, res) => res.writeHead(404).end());
  server.on('secureConnection', () => secure++);
  server.on('tlsClientError', () => refused++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `wss://127.0.0.1:${port}/`, secure: () => secure, refused: () => refused };
}

beforeAll(async () => {
  cert = cleanup.add(await selfSignedCertificate(), (c) => c.remove());
  [node, vite, browser] = await Promise.all([
    // only /tls/ws: there is no other way in, so whatever connects came over TLS
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N), '--listen', '/ip4/127.0.0.1/tcp/0/tls/ws', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'], https: { cert: cert.cert, key: cert.key } }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium({ trustSpki: [cert.spki] }).then((b) => cleanup.add(b, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe('secure WebSockets (/tls/ws) with a certificate from files', () => {
  it('the node listens on /tls/ws only and names it in addresses.json', () => {
    expect(node.file.wss).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/tls\/ws\/p2p\/12D3KooW/);
    expect(node.file.addresses).toEqual([node.file.wss]);
    expect(node.file.webrtcDirect).toBeNull();
    expect(node.output()).toMatch(/^tls +IP Address:127\.0\.0\.1, DNS:localhost, valid until /m);
  });

  it('Chromium trusts exactly the test certificate: another self-signed one is refused', async () => {
    const other = await selfSignedCertificate();
    const trusted = await handshakeCounter(cert);
    const untrusted = await handshakeCounter(other);
    const page = clientPage(await chromiumTestBrowser(browser).open(pageUrl()));
    try {
      expect(await page.evaluate(() => location.href)).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
      const outcome = (url: string): Promise<string> =>
        page.evaluate(
          (u) =>
            new Promise<string>((resolve) => {
              const ws = new WebSocket(u);
              ws.onopen = () => resolve('open');
              ws.onerror = () => resolve('error');
            }),
          url,
        );
      // neither server speaks WebSocket: both dials fail, but only one after a TLS handshake
      await outcome(trusted.url);
      await outcome(untrusted.url);
      expect(trusted.secure()).toBeGreaterThan(0);
      expect(untrusted.secure()).toBe(0);
      expect(untrusted.refused()).toBeGreaterThan(0);
    } finally {
      await page.close();
      trusted.server.closeAllConnections();
      untrusted.server.closeAllConnections();
      await Promise.all([new Promise((r) => trusted.server.close(r)), new Promise((r) => untrusted.server.close(r)), other.remove()]);
    }
  });

  it('a page served over https syncs over wss alone: root equals the writer\'s, keys read back and prove', async () => {
    const env: CaseEnv = { node, n: N, expected, sampleKeys, browser: chromiumTestBrowser(browser), url: pageUrl() };
    await fullSync(env, { transport: 'websockets', address: node.file.wss!, via: 'worker', storageName: 'wss-only' });
  });

  it('Node dials /tls/ws too: fetch-range verifies when told to trust the certificate, and cannot connect otherwise', async () => {
    const writer = await nodeStatus(node);
    const trusted = await run({ NODE_EXTRA_CA_CERTS: cert.certFile }, 'fetch-range', '--peer', node.file.wss!, '--key-limit', '10');
    expect(trusted.code, trusted.stderr).toBe(0);
    const out = JSON.parse(trusted.stdout) as { ok: boolean; root: string; keyValues: { key: string; value: string }[] };
    expect(out).toMatchObject({ ok: true, root: writer.root });
    expect(out.keyValues).toHaveLength(10);
    for (const kv of out.keyValues) expect(kv.value).toBe(expected.get(kv.key));

    const untrusted = await run({}, 'fetch-range', '--peer', node.file.wss!);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain('TLS certificate is not trusted');
  });
  it('hostile bytes on the TLS port (garbage, truncated and oversized ClientHellos, silent sockets) cut only their socket', async () => {
    const port = Number(/\/tcp\/(\d+)\//.exec(node.file.wss!)![1]);
    const pid = node.child.pid!;
    const rssBefore = rssMB(pid);
    // a TLS record header: handshake (22), TLS 1.0, then a length
    const record = (length: number, body: Uint8Array): Buffer => Buffer.concat([Buffer.from([22, 3, 1, length >> 8, length & 0xff]), body]);
    const cases: Record<string, Buffer | null> = {
      'random bytes': randomBytes(4096),
      'a first byte below 32, then garbage': Buffer.concat([Buffer.from([1]), randomBytes(512)]),
      'a truncated ClientHello': record(512, Buffer.from([1, 0, 1, 252, 3, 3])),
      'a record claiming 16 KiB, then silence': record(16 * 1024, randomBytes(16)),
      'a record claiming 64 KiB of garbage': record(0xffff, randomBytes(0xffff)),
      'silent: nothing at all': null,
    };
    const sockets: Socket[] = [];
    const closed = Object.entries(cases).flatMap(([, bytes]) =>
      Array.from({ length: 20 }, () =>
        new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port });
          sockets.push(s);
          s.on('error', () => {});
          s.on('data', () => {});
          s.once('close', () => resolve());
          s.once('connect', () => {
            if (bytes) s.write(bytes);
          });
        }),
      ),
    );
    // every hostile socket is closed by the node (the truncated and silent ones at the handshake deadline)
    await Promise.all(closed);
    expect(alive(pid), node.output().slice(-2000)).toBe(true);
    expect(rssMB(pid) - rssBefore).toBeLessThanOrEqual(200);
    const writer = await nodeStatus(node);
    const after = await run({ NODE_EXTRA_CA_CERTS: cert.certFile }, 'fetch-range', '--peer', node.file.wss!, '--key-limit', '10');
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ ok: true, root: writer.root });
  });
});
