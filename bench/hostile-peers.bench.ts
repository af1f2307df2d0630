/**
 * The light client among hostile peers (Chromium, the e2e test page on a Vite dev server, real
 * node processes): an honest full node of N keys (default 20,000; `BENCH_KEYS`) and a malicious
 * node (e2e/hostile-peers/malicious-node.ts) that relays it except for one behaviour, listed
 * first in `bootstrap`. Figures:
 *
 * - sync time with a silent peer listed first / without it (the peer answers 10x slower than
 *   the client's default 30 s deadline);
 * - sync time with an endless-answer peer listed first / without it;
 * - hostile answers the client processed up to its ban, worst of the malformed and oversized
 *   behaviours (endless, huge-prefix, many-nodes, oversized, wrong-type);
 * - delta ids requested for one 100,000-deep missing chain in 60 s, from bench/missing-chain.ts
 *   (`missingChainFigure()`).
 *
 * Each time is the median of `BENCH_REPEAT` runs (default 3), each a fresh client and storage.
 */
import type { Browser, Page } from 'playwright-core';
import { missingChainFigure } from './missing-chain.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite, type NodeProcess } from '../e2e/harness.ts';
import { BEHAVIOURS, type Behaviour } from '../e2e/hostile-peers/behaviours.ts';
import { startMalicious, syncScenario, type ScenarioResult } from '../e2e/hostile-peers/scenario.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { type Figure, writeResults } from './lib.ts';

const N = Number(process.env.BENCH_KEYS ?? 20_000);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
/** The client's default deadline; the silent peer answers 10x later. */
const DEADLINE_MS = 30_000;
const log = (s: string): void => console.log(`hostile-peers: ${s}`);
const cleanup = new Cleanup();
const figures: Figure[] = [];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let run = 0;
async function once(browser: Browser, url: string, honest: NodeProcess, malicious: NodeProcess | undefined): Promise<ScenarioResult> {
  const { page } = await openReadyPage(browser, url);
  try {
    return await syncScenario(page as Page, { honest, malicious, storageName: `bench-hostile-${run++}`, timeoutMs: 20 * DEADLINE_MS });
  } finally {
    await page.close();
  }
}

/** Median sync time over REPEAT runs, with `behaviour`'s malicious node listed first (or none). */
async function syncTime(browser: Browser, url: string, honest: NodeProcess, behaviour: Behaviour | undefined): Promise<{ ms: number; results: ScenarioResult[] }> {
  const malicious = behaviour ? cleanup.add(await startMalicious(honest, behaviour, behaviour === 'silent' ? { delayMs: 10 * DEADLINE_MS } : {}), (m) => m.stop()) : undefined;
  const results: ScenarioResult[] = [];
  try {
    for (let i = 0; i < REPEAT; i++) {
      const r = await once(browser, url, honest, malicious);
      results.push(r);
      log(`${behaviour ?? 'honest only'}: ${Math.round(r.synced.ms)} ms (hedges ${r.rec.last?.hedges ?? 0}, judged ${r.judged.length}, banned ${r.banned})`);
    }
  } finally {
    await malicious?.stop();
  }
  return { ms: median(results.map((r) => r.synced.ms)), results };
}

async function main(): Promise<void> {
  const [honest, vite, browser] = await Promise.all([
    startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 300_000 }).then((n) => cleanup.add(n, (x) => x.stop())),
    startVite({ pages: ['e2e/light-client/index.html'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
  const url = `${vite.url}/e2e/light-client/index.html`;
  // a first sync warms the dev server's module graph and the node's caches
  await once(browser, url, honest, undefined);

  const alone = await syncTime(browser, url, honest, undefined);
  const silent = await syncTime(browser, url, honest, 'silent');
  const endless = await syncTime(browser, url, honest, 'endless');
  figures.push(
    { name: `sync time with a silent peer listed first / without it (${N} keys)`, value: silent.ms / alone.ms, unit: 'x', goal: '<= 1.5' },
    { name: `sync time with an endless-answer peer listed first / without it (${N} keys)`, value: endless.ms / alone.ms, unit: 'x', goal: '<= 1.5' },
    { name: 'sync time alone', value: alone.ms, unit: 'ms', goal: null },
    { name: 'sync time with a silent peer listed first', value: silent.ms, unit: 'ms', goal: null },
    { name: 'sync time with an endless-answer peer listed first', value: endless.ms, unit: 'ms', goal: null },
  );

  // the worst count of hostile answers processed before the ban, over every decode behaviour
  let worst = 0;
  let worstOf = '';
  const unbanned: string[] = [];
  for (const behaviour of BEHAVIOURS.filter((b) => b !== 'silent')) {
    const runs = behaviour === 'endless' ? endless.results : (await syncTime(browser, url, honest, behaviour)).results;
    for (const r of runs) {
      if (!r.banned) unbanned.push(behaviour);
      if (r.beforeBan > worst) [worst, worstOf] = [r.beforeBan, behaviour];
    }
  }
  log(`worst: ${worst} hostile answers before the ban (${worstOf}); not banned in: ${unbanned.join(', ') || 'none'}`);
  figures.push({ name: 'hostile answers processed before the ban (worst scenario)', value: worst, unit: 'answers', goal: '<= 3' });
  // an endless answer is often overtaken by a hedge before the client has read its whole
  // frame: the peer is then charged as slow (backed off), not struck, and may end unbanned
  figures.push({ name: `runs in which a malformed-answer peer was not banned (of ${REPEAT * (BEHAVIOURS.length - 1)})`, value: unbanned.length, unit: 'runs', goal: null });

  figures.push({ ...(await missingChainFigure()), goal: '<= 3000' });
  writeResults('hostile-peers', figures);
}

try {
  await main();
} finally {
  await cleanup.run();
}
