/**
 * `delta ids requested for one 100,000-deep missing chain, in 60 s` (goal <= 3000): a real writer
 * node committing 5 deltas a second, the light client in headless Chromium (e2e/live/, the
 * follower runs in its worker) and the attacker process (e2e/hostile-peers/gossip-attacker.ts)
 * listed first in `bootstrap`, gossiping writer-signed deltas on top of a 100,000-deep chain
 * whose bottom parent nobody has, a new one every 500 ms, and serving the chain over /delta.
 * The figure is the number of chain ids the attacker was asked for in the 60 s after its first
 * chain delta. A fill may request at most `maxGapFill` (1,000) ids; without a memory of chains
 * given up on, the client walked the same chain again after every catch-up.
 *
 * bench/hostile-peers.bench.ts calls `missingChainFigure`; `node bench/missing-chain.ts` runs it
 * alone and writes bench/results/missing-chain.json.
 */
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite } from '../e2e/harness.ts';
import { startAttacker } from '../e2e/hostile-peers/attacker-process.ts';
import type { Live, LiveStart } from '../e2e/live/main.ts';
import { writeResults } from './lib.ts';

declare const live: Live;

const WINDOW_MS = 60_000;
const DEPTH = 100_000;

export async function missingChainFigure(): Promise<{ name: string; value: number; unit: string }> {
  const cleanup = new Cleanup();
  try {
    const [writer, vite, browser] = await Promise.all([
      startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', '2000', '--simulate-writes', '5'], readyTimeoutMs: 60_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
      startVite({ pages: ['e2e/live/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
      launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
    ]);
    const attacker = await startAttacker(writer);
    cleanup.add(attacker.process, (x) => x.stop());
    const { page } = await openReadyPage(browser, `${vite.url}/e2e/live/index.html`);
    cleanup.add(page, (p) => p.close());
    const o: LiveStart = { db: writer.file.db!, writer: writer.file.peerId, bootstrap: [attacker.process.file.ws!, writer.file.ws!], storageName: 'missing-chain' };
    await page.evaluate((x) => live.start(x), o);
    await page.evaluate(() => live.synced(120_000));
    const deadline = Date.now() + 60_000;
    while (((await page.evaluate(() => live.tail(1))).live.at(-1)?.applied ?? 0) < 3) {
      if (Date.now() > deadline) throw new Error('the client did not go live');
      await page.waitForTimeout(100);
    }
    attacker.send(`chain ${DEPTH} 500`);
    while (attacker.stats().published.chain === 0) await new Promise((r) => setTimeout(r, 50));
    const start = attacker.stats().chainIdsRequested;
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const requested = attacker.stats().chainIdsRequested - start;
    const r = await page.evaluate(() => live.recorded());
    const catchUps = r.live.filter((l) => l.mode === 'catching-up').map((l) => l.reason);
    const fills = r.gapFills.filter((g) => g.phase !== 'started').map((g) => `${g.phase}${g.reason ? ` ${g.reason}` : ''} (${g.fetched} fetched, ${g.rounds} rounds)`);
    console.log(
      `missing chain: ${requested} ids in ${WINDOW_MS / 1000} s; ${attacker.stats().published.chain} chain deltas gossiped, ${r.pending?.abandoned ?? 0} dropped as abandoned; applied ${r.live.at(-1)?.applied}; catch-ups ${JSON.stringify(catchUps)}; fills ${JSON.stringify(fills)}`,
    );
    await page.evaluate(() => live.close()).catch(() => {});
    return { name: `delta ids requested for one ${DEPTH.toLocaleString('en')}-deep missing chain, in ${WINDOW_MS / 1000} s`, value: requested, unit: 'ids' };
  } finally {
    await cleanup.run();
  }
}

if (import.meta.main) {
  const f = await missingChainFigure();
  writeResults('missing-chain', [{ ...f, goal: '<= 3000' }]);
}
