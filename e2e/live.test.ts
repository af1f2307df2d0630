/**
 * Live updates end to end, in Chromium (Playwright) and in Firefox ESR (puppeteer-core over
 * WebDriver BiDi), through the page interface (browsers/page.ts): e2e/live/ (a light client in
 * its worker, IndexedDB, libp2p over WebSockets) against a real writer node committing steadily
 * (`--simulate-writes`). A small database keeps it quick on two cores; the engines run one
 * after the other against the same node. Gossip loss is simulated
 * by the worker's `dropGossip` hook: it ignores the next N gossip deltas, and announcements
 * meanwhile, as a relay that filters them would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { useBrowser } from './browsers/launch.ts';
import { BROWSERS, type TestPage } from './browsers/page.ts';
import { Cleanup, startNode, startVite, type NodeProcess, type ViteHandle } from './harness.ts';
import type { Live, LiveRecord, LiveStart } from './live/main.ts';

const N = 2_000;
const WRITES_PER_SEC = 10;
const cleanup = new Cleanup();
let node: NodeProcess;
let vite: ViteHandle;

declare const live: Live;

async function writerStatus(): Promise<{ root: string; seq: number; logSize: number }> {
  return (await fetch(`${node.file.http}/v1/status`)).json() as Promise<{ root: string; seq: number; logSize: number }>;
}

/** Bytes the node served as change proofs (its metrics). */
async function changeBytes(): Promise<number> {
  const text = await (await fetch(`${node.file.http}/metrics`)).text();
  const m = /^proofsync_response_bytes_total\{protocol="change"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

function options(storageName: string, tuning: LiveStart['live'] = {}): LiveStart {
  return { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName, live: tuning };
}

/** Polls the page's record until `ready` holds (a deadline, not a fixed sleep). */
async function waitLive(page: TestPage, ready: (r: LiveRecord) => boolean, what: string, timeoutMs = 60_000): Promise<LiveRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await page.evaluate(() => live.recorded());
    if (ready(r)) return r;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...r, updates: r.updates.slice(-5) })}`);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a polling interval, not a wait for the condition
  }
}

const deltas = (r: LiveRecord) => r.updates.filter((u) => u.deltaId !== null);
/** Log indexes of applied deltas: consecutive when nothing was skipped. */
function gaps(r: LiveRecord): number[] {
  const idx = deltas(r).map((u) => u.logIndex!);
  return idx.flatMap((x, i) => (i > 0 && x !== idx[i - 1] + 1 ? [i] : []));
}

beforeAll(async () => {
  [node, vite] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N), '--simulate-writes', String(WRITES_PER_SEC)], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/live/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
  ]);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

describe.each(BROWSERS)('live updates in %s', (name) => {
  const browser = useBrowser(name, cleanup);
  const openPage = (): Promise<TestPage> => browser().open(`${vite.url}/e2e/live/index.html`);

  it('after the sync, the client follows the writer delta by delta, within one commit', async () => {
    const page = await openPage();
    try {
      await page.evaluate((o) => live.start(o), options('follow'));
      await page.evaluate(() => live.synced(90_000));
      const r = await waitLive(page, (x) => deltas(x).length >= 20, '20 live deltas');
      expect(gaps(r), page.log.join('\n')).toEqual([]);
      expect(r.live.some((l) => l.mode === 'live')).toBe(true);
      expect(r.errors).toEqual([]);
      // sampled: how far behind the writer the client is, and whether the writer's root arrives within a bound
      const behind: number[] = [];
      for (let i = 0; i < 8; i++) {
        const w = await writerStatus();
        const c = await page.evaluate(() => live.tail(1));
        behind.push(w.logSize - (deltas(c).at(-1)!.logIndex! + 1));
        await waitLive(page, (x) => x.updates.some((u) => u.root === w.root), `the writer's root ${w.root} at the client`, 2_000);
      }
      behind.sort((a, b) => a - b);
      expect(behind[Math.floor(behind.length / 2)], JSON.stringify(behind)).toBeLessThanOrEqual(1);
      const end = await page.evaluate(() => live.recorded());
      expect(gaps(end)).toEqual([]);
      const lat = deltas(end).map((u) => u.latencyMs!).sort((a, b) => a - b);
      if (process.env.E2E_VERBOSE) console.info(name, 'live latency ms: median', lat[lat.length >> 1], 'p99', lat[Math.floor(lat.length * 0.99)], 'behind', behind);
    } finally {
      await page.evaluate(() => live.close()).catch(() => {});
      await page.close();
    }
  });

  it('a run of dropped gossip is filled over /delta from the peer; nothing is skipped, no catch-up', async () => {
    const page = await openPage();
    try {
      await page.evaluate((o) => live.start(o), options('gap'));
      await page.evaluate(() => live.synced(90_000));
      await waitLive(page, (x) => deltas(x).length >= 3, 'first deltas');
      await page.evaluate(() => live.dropGossip(5));
      // The dropped run may be filled in one round or in several (a fill can start as soon as the
      // first delta with a missing parent arrives): every dropped delta comes back over /delta.
      const fetched = (x: LiveRecord) => x.gapFills.filter((g) => g.phase === 'finished').reduce((n, g) => n + g.fetched, 0);
      const r = await waitLive(page, (x) => fetched(x) >= 5 && deltas(x).length >= 15, 'the gap filled');
      const done = r.gapFills.filter((g) => g.phase === 'finished');
      expect(fetched(r), JSON.stringify(r.gapFills)).toBeGreaterThanOrEqual(5);
      for (const g of done) expect(g.peer).toBe(node.file.peerId);
      expect(gaps(r)).toEqual([]);
      expect(r.live.at(-1)).toMatchObject({ mode: 'live', catchUps: 0 });
      expect(r.errors).toEqual([]);
    } finally {
      await page.evaluate(() => live.close()).catch(() => {});
      await page.close();
    }
  });

  it('pending deltas survive a reload: still in IndexedDB, restored and applied', async () => {
    const page = await openPage();
    const name = 'reload';
    try {
      // a long grace period: the gap is not filled before the reload
      await page.evaluate((o) => live.start(o), options(name, { gossipGraceMs: 120_000 }));
      await page.evaluate(() => live.synced(90_000));
      await waitLive(page, (x) => deltas(x).length >= 3, 'first deltas');
      await page.evaluate(() => live.dropGossip(3));
      await waitLive(page, (x) => (x.pending?.count ?? 0) >= 4, 'held deltas behind the gap');
      const before = await page.evaluate(() => live.recorded());
      await page.evaluate(() => live.close()); // flushes the pending store
      const stored = await page.evaluate((n) => live.storedPending(n), name);
      expect(stored.length).toBeGreaterThanOrEqual(4);
      const applied = new Set(deltas(before).map((u) => u.deltaId));
      expect(stored.some((id) => applied.has(id))).toBe(false);

      await page.reload();
      // the writer commits 10 a second through the reload: this checks the restore path, which
      // a gap past `restoreGapFill` (default 16) would leave for a change proof
      await page.evaluate((o) => live.start(o), options(name, { restoreGapFill: 1000 }));
      await page.evaluate(() => live.synced(90_000));
      // They came from the pending store, not from the peer again: every delta fetched by gap
      // fills is applied once beside the stored ones, so the applied count reaches the sum (a
      // stored delta fetched again would be a duplicate, applied once, and the sum never reached).
      // Waiting for it (not sampling once) keeps deltas still being applied from racing the check.
      const fetchedOf = (x: LiveRecord) => x.gapFills.filter((g) => g.phase === 'finished').reduce((n, g) => n + g.fetched, 0);
      const r = await waitLive(
        page,
        (x) => stored.every((id) => x.updates.some((u) => u.deltaId === id)) && fetchedOf(x) + stored.length <= deltas(x).length,
        'the restored deltas applied, none fetched again',
      );
      expect(r.pending!.restored).toBe(stored.length);
      expect(r.live.find((l) => l.reason === 'restored'), JSON.stringify(r.live)).toBeDefined();
      expect(gaps(r)).toEqual([]);
      expect(fetchedOf(r) + stored.length).toBeLessThanOrEqual(deltas(r).length);
      expect(r.live.at(-1)?.catchUps).toBe(0);
      await page.evaluate(() => live.close()); // flushes the pending store's deletes
      const left = await page.evaluate((n) => live.storedPending(n), name);
      expect(stored.filter((id) => left.includes(id))).toEqual([]);
    } finally {
      await page.evaluate(() => live.close()).catch(() => {});
      await page.close();
    }
  });

  it('a gap beyond the limit recovers by change proof, then follows deltas again', async () => {
    const page = await openPage();
    try {
      await page.evaluate((o) => live.start(o), options('beyond', { maxGapFill: 4 }));
      await page.evaluate(() => live.synced(90_000)).catch((err: Error) => {
        throw new Error(`${err.message}\nnode exit: ${node.child.exitCode ?? node.child.signalCode}\nnode output (tail):\n${node.output().slice(-3000)}`);
      });
      await waitLive(page, (x) => deltas(x).length >= 3, 'first deltas');
      const served = await changeBytes();
      await page.evaluate(() => live.dropGossip(12));
      const r = await waitLive(page, (x) => x.live.some((l) => l.reason === 'gap-too-large') && x.live.at(-1)?.mode === 'live' && deltas(x).length > 0, 'catch-up by change proof');
      const catchUp = r.live.findIndex((l) => l.reason === 'gap-too-large');
      expect(r.live.slice(catchUp).some((l) => l.mode === 'live' && l.reason === 'synced')).toBe(true);
      expect(r.gapFills.some((g) => g.phase === 'failed' && g.reason === 'gap-too-large')).toBe(true);
      expect(await changeBytes()).toBeGreaterThan(served);
      // and deltas flow again on top of the caught-up state
      const after = r.updates.length;
      const r2 = await waitLive(page, (x) => deltas(x).length > 0 && x.updates.length >= after + 5, 'deltas after the catch-up');
      const tail = deltas({ ...r2, updates: r2.updates.slice(after) });
      expect(gaps({ ...r2, updates: tail })).toEqual([]);
      const w = await writerStatus();
      await waitLive(page, (x) => x.updates.some((u) => u.root === w.root), "the writer's root", 5_000);
      expect(r2.errors).toEqual([]);
    } finally {
      await page.evaluate(() => live.close()).catch(() => {});
      await page.close();
    }
  });
});
