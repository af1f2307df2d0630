/**
 * The package from its tarball (docs/design.md "A package, not a repository"): `npm pack`, then the
 * example dApps of examples/ (Vite, webpack, esbuild) installed from that tarball, built by
 * their bundlers, served as static files and driven in headless Chromium against a full node
 * run by the installed `proofsync` command. Each page must reach the node's root over WebSockets
 * (in the worker) and WebRTC-Direct (the bridge chunk, on the page), and read back a key written
 * through the node's HTTP API. Node programs import the Node entries from the same install.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, launchChromium, openPage } from './harness.ts';
import { buildExample, installExamples, packTarball, run, serveStatic, startInstalledNode, type InstalledNode } from './package-apps.ts';

const EXAMPLES = ['vite', 'webpack', 'esbuild'] as const;
/** Bundling libp2p takes a while on a busy 2-core machine (webpack's minifier: 130 s measured at load 18). */
const BUILD_AND_SYNC_MS = 600_000;

const cleanup = new Cleanup();
let work: string;
let tarball: string;
let apps: string;
let node: InstalledNode;
let browser: Browser;
let token: string;
const timings: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await f();
  } finally {
    timings[name] = Math.round(performance.now() - started);
  }
}

beforeAll(async () => {
  work = cleanup.add(await mkdtemp(join(tmpdir(), 'proofsync-package-')), (d) => rm(d, { recursive: true, force: true }));
  tarball = await timed('pack', () => packTarball(work));
  apps = await timed('install', () => installExamples(work, tarball, [...EXAMPLES, 'node']));
  const dataDir = join(work, 'node');
  node = cleanup.add(await startInstalledNode(apps, dataDir, ['--generate', '2000']), (n) => n.stop());
  token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
  browser = cleanup.add(await launchChromium(), (b) => b.close());
}, 900_000);

afterAll(async () => {
  console.info(`package test timings (ms): ${JSON.stringify(timings)}`);
  await cleanup.run();
});

describe('the packed tarball', () => {
  it('ships the compiled package and nothing of the repository', async () => {
    const list = (await run('tar', ['-tzf', tarball], work)).trim().split('\n');
    const outside = list.filter((f) => !/^package\/(dist\/.+|package\.json|README\.md|LICENSE|CHANGELOG\.md)$/.test(f));
    expect(outside).toEqual([]);
    expect(list.filter((f) => /\.test\.|\/testing\/|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    for (const entry of ['core/index', 'protocol/index', 'client/index', 'client/worker/entry', 'node/index', 'cli/bin']) {
      expect(list).toContain(`package/dist/${entry}.js`);
      expect(list).toContain(`package/dist/${entry}.d.ts`);
    }
  });

  it('runs the Node entries from node_modules (no type stripping there)', async () => {
    const script = [
      "const { startFullNode, loadOrCreateIdentity, createClientNode, fetchLogOperations } = await import('proofsync/node');",
      "const { MerkleDatabase, MemoryStore, toHex } = await import('proofsync/core');",
      "const { encodeRangeProof } = await import('proofsync/protocol');",
      'const db = await MerkleDatabase.open(new MemoryStore());',
      'await db.commit([{ key: Uint8Array.of(1), value: Uint8Array.of(42) }]);',
      'console.log(JSON.stringify({ root: toHex(db.root), types: [startFullNode, loadOrCreateIdentity, createClientNode, fetchLogOperations, encodeRangeProof].map((f) => typeof f) }));',
    ].join('\n');
    const out = JSON.parse(await run(process.execPath, ['--input-type=module', '-e', script], join(apps, 'vite'))) as { root: string; types: string[] };
    expect(out.types).toEqual(['function', 'function', 'function', 'function', 'function']);
    expect(out.root).toMatch(/^[0-9a-f]{64}$/);
  });

  it('runs the README\'s Node examples (examples/node) as they are', async () => {
    const lastLine = (s: string): string => s.trim().split('\n').at(-1)!;
    const core = JSON.parse(lastLine(await run('npm', ['run', '--silent', 'core'], join(apps, 'node')))) as { root: string; keyValues: number };
    expect(core).toEqual({ root: expect.stringMatching(/^[0-9a-f]{64}$/), keyValues: 1 });
    const full = JSON.parse(lastLine(await run('npm', ['run', '--silent', 'full-node'], join(apps, 'node')))) as { peerId: string; root: string; logSize: number };
    expect(full.peerId).toMatch(/^12D3KooW/);
    expect(full.root).toMatch(/^[0-9a-f]{64}$/);
    expect(full.logSize).toBe(1);
  });
});

describe.each(EXAMPLES)('the %s example, built from the tarball', (name) => {
  it('syncs to the node\'s root over both transports and reads back a key written through the HTTP API', async () => {
    const built = await timed(`build ${name}`, () => buildExample(apps, name));
    const dist = join(apps, name, 'dist');
    const sizes = await gzipSizes(dist);
    console.info(`${name} bundles (gzip bytes): ${JSON.stringify(sizes)}`);
    expect(Object.keys(sizes).length, built).toBeGreaterThan(1); // the page's bundle and the worker, at least

    const config = { db: node.file.db, writer: node.file.peerId, bootstrap: [node.file.ws, node.file.webrtcDirect], local: true };
    const server = cleanup.add(await serveStatic(dist, { '/config.json': JSON.stringify(config) }), (s) => s.close());
    const { page, log } = await openPage(browser, `${server.url}/`);
    const status = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };
    try {
      await timed(`synced ${name}`, () => page.waitForFunction((root) => document.getElementById('root')?.textContent === root, status.root, { timeout: 90_000 }));
      await page.waitForFunction(() => /websockets connected/.test(document.getElementById('peers')?.textContent ?? '') && /webrtc-direct connected/.test(document.getElementById('peers')?.textContent ?? ''), undefined, { timeout: 30_000 });

      const key = Buffer.from(`example-${name}`).toString('hex');
      const value = Buffer.from(`written for ${name}`).toString('hex');
      await page.fill('#key', key);
      await page.click('button');
      await page.waitForFunction(() => document.getElementById('value')?.textContent === '(absent)', undefined, { timeout: 30_000 });
      const res = await fetch(`${node.file.http}/v1/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ puts: [{ key, value }] }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      await page.waitForFunction((v) => document.getElementById('value')?.textContent === v, value, { timeout: 60_000 });
      expect(await page.textContent('#error')).toBe('');
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}\npage console:\n${log.join('\n')}\npage:\n${await page.textContent('body').catch(() => '')}\nnode:\n${node.output().slice(-2000)}`, { cause: err });
    } finally {
      await page.close();
    }
  }, BUILD_AND_SYNC_MS);
});

/** Gzip size of every JavaScript file a bundler emitted (its name as emitted). */
async function gzipSizes(dir: string): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !/\.m?js$/.test(e.name)) continue;
    const path = join(e.parentPath, e.name);
    sizes[path.slice(dir.length + 1)] = gzipSync(await readFile(path), { level: 9 }).length;
  }
  return sizes;
}
