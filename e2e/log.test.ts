/**
 * The history log in the browser, in Chromium (Playwright) and in Firefox ESR (puppeteer-core
 * over WebDriver BiDi), through the page interface (browsers/page.ts), one engine after the
 * other: each loads e2e/log/, whose `window.logPage` runs `client.log.fetch` in the light
 * client's worker against two real node processes: a writer whose log starts at `OPS` operations (default
 * 100,000, made by `--generate-log`: real signed commits with their real state roots, see
 * src/node/generate-log.ts) and that keeps committing, so the target moves; and a replica that
 * follows it, having filled its log over `/log` with every batch verified against the writer's
 * signed log root. The expected ids are read from the writer, whose operations must rebuild the
 * MMR root it signed. The resume test stops and reloads within the first `RESUME_OPS`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { toHex } from '../src/core/bytes.ts';
import { decodeDelta } from '../src/core/delta.ts';
import { MmrFrontier } from '../src/core/mmr.ts';
import { fetchHeads, fetchLog } from '../src/protocol/client.ts';
import { createClientNode, type ClientNode } from '../src/node/host.ts';
import { FULL_NODE_SCRIPT, waitForOutput } from '../src/node/testing/process.ts';
import { useBrowser } from './browsers/launch.ts';
import { BROWSERS, type TestPage } from './browsers/page.ts';
import { Cleanup, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { LogFetchResult, LogPage, LogStart } from './log/main.ts';

const OPS = Number(process.env.LOG_OPS ?? 100_000);
const RESUME_OPS = 2_000;
const cleanup = new Cleanup();
let writer: NodeProcess;
let replica: NodeProcess;
let vite: ViteHandle;
let probe: ClientNode;

declare const logPage: LogPage;

async function commit(n: NodeProcess, i: number): Promise<{ logSize: number; root: string }> {
  const token = (await readFile(join(n.dataDir, 'token'), 'utf8')).trim();
  const key = (0xe0000000 + i).toString(16).padStart(64, '0');
  const res = await fetch(`${n.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ puts: [{ key, value: 'e2e0' }] }) });
  expect(res.status).toBe(200);
  return (await res.json()) as { logSize: number; root: string };
}

async function logSize(): Promise<number> {
  return ((await (await fetch(`${writer.file.http}/v1/status`)).json()) as { logSize: number }).logSize;
}

/** `/proofsync/1/log` requests a node answered (its Prometheus counter). */
async function logRequestsServed(n: NodeProcess): Promise<number> {
  const text = await (await fetch(`${n.file.http}/metrics`)).text();
  const m = /^proofsync_requests_total\{[^}]*protocol="log"[^}]*outcome="ok"[^}]*\} (\d+)/m.exec(text) ?? /^proofsync_requests_total\{[^}]*outcome="ok"[^}]*protocol="log"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * The writer's delta ids `[0, end)`, read straight from it (unverified): the expected answer.
 * Checked on their own first: the writer's whole log as of its newest signed announcement
 * rebuilds, with the core, the log root it signed.
 */
async function writerIds(end: number): Promise<string[]> {
  const ann = await fetchHeads(probe, multiaddr(writer.file.ws!), { writerPublicKey: peerIdFromString(writer.file.peerId).publicKey!.raw });
  expect(ann.logSize).toBeGreaterThanOrEqual(end);
  const frontier = MmrFrontier.fromPeaks(0, []);
  const ids: string[] = [];
  while (frontier.leafCount < ann.logSize) {
    const b = await fetchLog(probe, multiaddr(writer.file.ws!), { start: frontier.leafCount, end: ann.logSize, logSize: ann.logSize });
    for (const op of b.operations) {
      frontier.append(op);
      if (ids.length < end) ids.push(toHex(decodeDelta(op).id));
    }
  }
  expect(toHex(frontier.root())).toBe(toHex(ann.logRoot));
  return ids;
}

/** `a` equals `b` (reported as the first differing index, not a 100,000-line diff). */
function expectSameIds(a: string[], b: string[]): void {
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++;
  expect({ length: a.length, firstDifference: i === a.length && a.length === b.length ? -1 : i }).toEqual({ length: b.length, firstDifference: -1 });
}

const startOptions = (storageName: string): LogStart => ({
  db: writer.file.db!,
  writer: writer.file.peerId,
  bootstrap: [writer.file.ws!, replica.file.ws!],
  storageName,
});

beforeAll(async () => {
  [writer, vite, probe] = await Promise.all([
    startNode({
      script: FULL_NODE_SCRIPT,
      args: ['--generate-log', String(OPS), '--generate-log-keys', '4096', '--simulate-writes', '20'],
      readyTimeoutMs: 240_000,
    }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/log/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    createClientNode().then((c) => cleanup.add(c, (x) => x.stop())),
  ]);
  replica = cleanup.add(
    await startNode({ script: FULL_NODE_SCRIPT, args: ['--follow', writer.file.peerId, '--bootstrap', writer.file.ws!], readyTimeoutMs: 60_000 }),
    (x) => x.stop(),
  );
  await waitForOutput(replica, /log filled to \d+/);
  // the replica has applied everything up to a commit made now (a lagging replica cannot serve
  // proofs against the newest log size: it would only be asked and backed off)
  const c = await commit(writer, 0);
  await waitForOutput(replica, new RegExp(`applied log ${c.logSize - 1} root ${c.root}|catch-up done: root ${c.root}`));
}, 400_000);
afterAll(() => cleanup.run(), 60_000);

describe.each(BROWSERS)('client.log.fetch in %s', (name) => {
  const browser = useBrowser(name, cleanup);
  const openPage = (): Promise<TestPage> => browser().open(`${vite.url}/e2e/log/index.html`);

  it("returns the writer's operations, verified, following the writer past its size at the start", async () => {
    const page = await openPage();
    try {
      await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-1'));
      const to = (await logSize()) + 10; // reached only through newer announcements
      const served = await Promise.all([writer, replica].map(logRequestsServed));
      const r: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, batchSize: 1024 }), to);
      const servedAfter = await Promise.all([writer, replica].map(logRequestsServed));
      expect(r.indices.length, page.log.join('\n')).toBe(to);
      expect(r.indices.findIndex((index, i) => index !== i)).toBe(-1);
      expectSameIds(r.ids, await writerIds(to));
      expect(r.malformed).toBe(0);
      expect(r.progress).toMatchObject({ next: to, fetched: to, fromStore: 0, rejected: 0 });
      expect(r.targetSizes.length).toBeGreaterThan(1); // the target moved
      expect(servedAfter[0]).toBeGreaterThan(served[0]); // both nodes served batches
      expect(servedAfter[1]).toBeGreaterThan(served[1]);
    } finally {
      // a failed fetch must not keep the page fetching into the next test
      await page.evaluate(() => logPage.close()).catch(() => {});
      await page.close();
    }
  }, 300_000);

  it('a stored fetch stopped part-way resumes after a reload from where it stopped', async () => {
    const page = await openPage();
    try {
      await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-2'));
      const to = RESUME_OPS;
      const first: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, store: true, batchSize: 64, stopAfter: 200 }), to);
      expect(first.indices).toEqual([...Array(200).keys()]);
      await page.reload();
      await page.evaluate((o) => logPage.start(o), startOptions('log-e2e-2'));
      const second: LogFetchResult = await page.evaluate((t) => logPage.fetch({ to: t, store: true, batchSize: 64 }), to);
      expect(second.indices, page.log.join('\n')).toEqual([...Array(to).keys()]);
      expectSameIds(second.ids, await writerIds(to));
      // what was stored (at least the 200 delivered; the worker may have stored a batch or two ahead)
      expect(second.progress!.fromStore).toBeGreaterThanOrEqual(200);
      expect(second.progress!.fromStore + second.progress!.fetched).toBe(to);
      expect(second.progress!.storedUpTo).toBe(to);
    } finally {
      await page.evaluate(() => logPage.close()).catch(() => {});
      await page.close();
    }
  }, 240_000);
});
