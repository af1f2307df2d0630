/**
 * Peer discovery end to end: a writer and three replicas (real node processes), and a light
 * client in headless Chromium given the writer's address alone. The client asks the writer for
 * the database's other full nodes (`/proofsync/1/peers`), dials the replicas, and its sync
 * spreads range requests over all four by measured throughput; the writer is then stopped
 * (SIGTERM) mid-sync, and the sync completes from the replicas and verifies against the signed
 * root. Whether replicas served the client is read from their `/metrics` (range-proof bytes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import { CASE_KEYS, caseDatabase } from './light-client/cases.ts';
import type { Lc } from './light-client/main.ts';
import { nodeStatus } from './node-api.ts';

declare const lc: Lc;

const N = CASE_KEYS;
const { expected, sampleKeys } = caseDatabase();
const cleanup = new Cleanup();
let writer: NodeProcess;
let replicas: NodeProcess[];
let vite: ViteHandle;
let browser: Browser;

/** Bytes of range proofs `n` has served (its Prometheus counter). */
async function rangeBytesServed(n: NodeProcess): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  const m = /^proofsync_response_bytes_total\{protocol="range"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Polls `probe` until it returns a value (a deadline, no fixed sleeps). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a polling interval, not a wait for the condition
  }
}

beforeAll(async () => {
  [writer, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
  replicas = await Promise.all(
    [0, 1, 2].map(() =>
      startNode({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    ),
  );
  // each replica holds the writer's state before the client starts
  const { root } = await nodeStatus(writer);
  await Promise.all(replicas.map((r, i) => until(`replica ${i} at the writer's root`, async () => ((await nodeStatus(r)).root === root ? true : undefined), 90_000)));
}, 180_000);
afterAll(() => cleanup.run(), 60_000);

describe('peer discovery', () => {
  it('a client bootstrapped from the writer alone fetches from the three replicas, and completes after the writer is stopped mid-sync', async () => {
    const { page, log } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
    const context = (extra = ''): string =>
      `${extra}\npage:\n${log.slice(-40).join('\n')}\nwriter:\n${writer.output().slice(-2000)}\nreplicas:\n${replicas.map((r) => r.output().slice(-1000)).join('\n--\n')}`;
    try {
      const { root } = await nodeStatus(writer);
      const before = await Promise.all(replicas.map(rangeBytesServed));
      const replicaIds = replicas.map((r) => r.file.peerId);
      // small answers, so the sync is many requests long and the writer's stop falls in its middle
      await page.evaluate(
        (o) => lc.start(o),
        { db: writer.file.db!, writer: writer.file.peerId, bootstrap: [writer.file.ws!], storageName: 'discovery', keyLimit: 32, concurrency: 4, autoStart: false },
      );
      // discovery runs before the sync: every replica connects, though only the writer was given
      await until('the three replicas connected', async () => {
        const r = await page.evaluate(() => lc.recorded());
        const connected = new Set(r.peers.filter((p) => p.status === 'connected').map((p) => p.peer));
        return replicaIds.every((id) => connected.has(id)) ? true : undefined;
      });
      await page.evaluate(() => lc.resume());
      await page.evaluate(() => lc.fractionDone(0.2, 60_000));
      await writer.stop({ keepDataDir: true });
      const atStop = await page.evaluate(() => lc.recorded());
      expect(atStop.synced, context('the sync finished before the writer stopped: not a mid-sync stop')).toEqual([]);
      const duringStop = await Promise.all(replicas.map(rangeBytesServed));

      const synced = await page.evaluate(() => lc.synced(120_000));
      // verified against the root the writer signed, with every key-value of the database
      expect(synced.root).toBe(root);
      expect(synced.localRoot, context()).toBe(root);
      const values = await page.evaluate((keys) => lc.getMany(keys), sampleKeys);
      expect(values).toEqual(sampleKeys.map((k) => expected.get(k)));

      const after = await Promise.all(replicas.map(rangeBytesServed));
      // each replica served range proofs to this client (nothing else asks them for ranges)
      for (let i = 0; i < 3; i++) expect(after[i], context(`replica ${i} served no range proof`)).toBeGreaterThan(before[i]);
      // and the rest after the writer was gone came from them
      expect(after.reduce((a, b) => a + b, 0), context()).toBeGreaterThan(duringStop.reduce((a, b) => a + b, 0));
      const r = await page.evaluate(() => lc.recorded());
      expect(r.peers.some((p) => p.peer === writer.file.peerId && p.status === 'disconnected')).toBe(true);
      expect(r.errors.filter((e) => e.fatal)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
