/**
 * Static proofs end to end (docs/static-proofs.md): `proofsync snapshot` writes the canonical
 * plan's answers of a writer's data directory, a plain static HTTP server serves them, and a
 * browser (Chromium, e2e/light-client/) with `snapshots: [url]` syncs the state from those files
 * alone (the node's range-proof counter stays at zero), then catches up to the writer's newer
 * head by change proofs over libp2p. A tampered file is a rejected proof: the mirror is
 * penalised and the node finishes the work. The node's own `--snapshot-dir` is checked too.
 *
 * Size: E2E_STATIC_KEYS keys (default 100,000: the static sync took 20 s, the tampered one 15 s,
 * the file 62 s on the shared two-core machine, `npx vitest run --project e2e
 * e2e/static-proofs.test.ts`; under heavy load from other runs, 85 s and 72 s).
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { main } from '../src/cli/main.ts';
import '../src/cli/commands.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { startStaticServer, type StaticFileServer } from '../src/node/testing/static-server.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { Lc, StartOptions } from './light-client/main.ts';
import { nodeStatus } from './node-api.ts';

const N = Number(process.env.E2E_STATIC_KEYS ?? 100_000);
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;
let browser: Browser;
let files: StaticFileServer;
let snap: string;
let kept: string;
/** The root the snapshot holds: the writer's state before the test's own commits. */
let snapshotRoot: string;

declare const lc: Lc;

/** Proof bytes the node served, by protocol (its Prometheus counter). */
async function servedBytes(n: NodeProcess, protocol: 'range' | 'change'): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  const m = new RegExp(`^proofsync_response_bytes_total\\{protocol="${protocol}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function commit(n: NodeProcess, i: number): Promise<{ key: string; value: string; root: string }> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  const key = (0xe1000000 + i).toString(16).padStart(64, '0');
  const value = `5354${i.toString(16).padStart(4, '0')}`;
  const res = await fetch(`${n.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts: [{ key, value }] }) });
  expect(res.status).toBe(200);
  return { key, value, root: ((await res.json()) as { root: string }).root };
}

/** Polls for `path` (a deadline, no fixed sleeps). */
async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await stat(path).catch(() => undefined))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a polling interval
  }
}

function options(storageName: string): StartOptions {
  return { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName, snapshots: [`${files.url}/snap/`] };
}

beforeAll(async () => {
  snap = await mkdtemp(join(tmpdir(), 'proofsync-e2e-static-'));
  cleanup.add(snap, (d) => rm(d, { recursive: true, force: true }));
  kept = join(snap, 'kept');
  const started = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 300_000 }),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
  [, vite, browser] = started;
  // LevelDB is one process's: the snapshot command runs on the stopped writer's directory
  const first = started[0];
  await first.stop({ keepDataDir: true });
  expect(await main(['snapshot', '--data', first.dataDir, '--out', join(snap, 'snap')])).toBe(0);
  snapshotRoot = (await readdir(join(snap, 'snap'))).find((n) => /^[0-9a-f]{64}$/.test(n))!;
  // the same writer again, now also keeping a snapshot directory of its own current
  node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, dataDir: first.dataDir, args: ['--snapshot-dir', kept], readyTimeoutMs: 120_000 }), (x) => x.stop());
  cleanup.add(first.dataDir, (d) => rm(d, { recursive: true, force: true }));
  files = cleanup.add(await startStaticServer(snap), (f) => f.close());
}, 600_000);
afterAll(() => cleanup.run(), 60_000);

describe('static proofs', () => {
  it('proofsync snapshot wrote the writer’s state; the node keeps its own snapshot directory at its root', async () => {
    expect(snapshotRoot).toBe((await nodeStatus(node)).root);
    await waitForFile(join(kept, snapshotRoot), 120_000);
    await waitForFile(join(kept, 'announcement'), 10_000);
    // the same plan, the same files
    expect((await readdir(join(kept, snapshotRoot))).toSorted()).toEqual((await readdir(join(snap, 'snap', snapshotRoot))).toSorted());
  }, 180_000);

  it('a browser syncs from the static files alone, then catches up over libp2p by change proofs', async () => {
    // the head moves past the snapshot: what the browser must fetch from the node
    const added = [await commit(node, 1), await commit(node, 2)];
    const head = added[1]!.root;
    const rangeBefore = await servedBytes(node, 'range');
    const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
    try {
      await page.evaluate((o) => lc.start(o), options('static-only'));
      const synced = await page.evaluate(() => lc.synced(240_000));
      const rec = await page.evaluate(() => lc.recorded());
      const why = `snapshot ${snapshotRoot} added ${JSON.stringify(added)} synced ${JSON.stringify(rec.synced)} last ${JSON.stringify(rec.last)} ${JSON.stringify(rec.peers.slice(-10))}\npage:\n${log.slice(-30).join("\n")}\nnode:\n${node.output().slice(-2000)}`;
      expect(synced.root, why).toBe(head);
      expect(synced.localRoot, why).toBe(head);
      // the state came from the files: the node served no range proof, only the catch-up
      expect(await servedBytes(node, 'range'), why).toBe(rangeBefore);
      expect(await servedBytes(node, 'change'), why).toBeGreaterThan(0);
      const fetched = [...files.hits.keys()].filter((p) => p.startsWith(`/snap/${snapshotRoot}/`));
      expect(fetched.length, why).toBe((await readdir(join(snap, 'snap', snapshotRoot))).length);
      expect(rec.peers.filter((p) => p.status === 'penalised' || p.status === 'banned'), why).toEqual([]);
      for (const a of added) expect(await page.evaluate((k) => lc.get(k), a.key)).toBe(a.value);
    } finally {
      await page.close();
    }
  }, 300_000);

  it('a tampered file is rejected: the mirror is penalised and the node finishes the sync', async () => {
    const dir = join(snap, 'snap', snapshotRoot);
    // the largest file: a full answer, so the flipped byte lands in its key-values or proof
    const sizes = await Promise.all((await readdir(dir)).map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
    const { name } = sizes.reduce((a, b) => (b.size > a.size ? b : a));
    const good = await readFile(join(dir, name));
    const bad = Uint8Array.from(good);
    bad[bad.length - 40]! ^= 0x01;
    await writeFile(join(dir, name), bad);
    const rangeBefore = await servedBytes(node, 'range');
    const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
    try {
      await page.evaluate((o) => lc.start(o), options('static-tampered'));
      const synced = await page.evaluate(() => lc.synced(240_000));
      const rec = await page.evaluate(() => lc.recorded());
      const why = `${JSON.stringify(rec.peers.slice(-10))}\npage:\n${log.slice(-30).join('\n')}`;
      expect(synced.localRoot, why).toBe((await nodeStatus(node)).root);
      expect(rec.peers.find((p) => p.peer === `static:${files.url}/snap` && (p.status === 'penalised' || p.status === 'banned')), why).toBeDefined();
      // the work the mirror got wrong went to the node
      expect(await servedBytes(node, 'range'), why).toBeGreaterThan(rangeBefore);
    } finally {
      await page.close();
      await writeFile(join(dir, name), good);
    }
  }, 300_000);
});
