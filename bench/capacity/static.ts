/**
 * Static proofs, measured (part of `npm run bench -- capacity`, docs/static-proofs.md): a fresh
 * browser (headless Chromium, the e2e test page on Vite's dev server) syncs N keys
 *
 * - from static files: `proofsync snapshot` of the writer's data directory on a plain static
 *   HTTP server (src/node/testing/static-server.ts), `snapshots: [url]`, the node only dialed
 *   for its head (it serves no range proof: checked);
 * - from one libp2p node: the same node over /ws, no snapshots;
 *
 * and reports both times and their ratio (goal: the files take at most half the node's time).
 * Both from a fresh storage name, one after the other, at the same root.
 *
 * Alone: `node bench/capacity/static.ts` (BENCH_KEYS, default 1,000,000), writes
 * bench/results/capacity-static.json. The capacity suite imports `run`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import '../../src/cli/commands.ts';
import { FULL_NODE_SCRIPT } from '../../src/node/testing/process.ts';
import { startStaticServer } from '../../src/node/testing/static-server.ts';
import { Cleanup, launchChromium, openReadyPage, startNode, startVite } from '../../e2e/harness.ts';
import type { Lc, StartOptions } from '../../e2e/light-client/main.ts';
import { type Figure, writeResults } from '../lib.ts';

declare const lc: Lc;

/** What this module needs of the capacity suite's context (a subset of bench/capacity/types.ts's). */
export interface StaticBenchContext {
  keys: number;
  log?(line: string): void;
}

const SYNC_TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 1_800_000);

/** Range-proof bytes the node has served (its Prometheus counter). */
async function rangeBytes(http: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = /^proofsync_response_bytes_total\{protocol="range"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

export async function run(ctx: StaticBenchContext): Promise<Figure[]> {
  const n = ctx.keys;
  const log = (line: string): void => (ctx.log ?? ((l: string) => console.log(`static: ${l}`)))(line);
  const cleanup = new Cleanup();
  try {
    log(`generating ${n} keys`);
    const first = await startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(n)], readyTimeoutMs: SYNC_TIMEOUT_MS });
    cleanup.add(first.dataDir, (d) => rm(d, { recursive: true, force: true }));
    await first.stop({ keepDataDir: true });
    const snap = await mkdtemp(join(tmpdir(), 'proofsync-bench-static-'));
    cleanup.add(snap, (d) => rm(d, { recursive: true, force: true }));
    const t0 = performance.now();
    if ((await main(['snapshot', '--data', first.dataDir, '--out', snap])) !== 0) throw new Error('proofsync snapshot failed');
    log(`snapshot written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, dataDir: first.dataDir, readyTimeoutMs: 120_000 }), (x) => x.stop());
    const files = cleanup.add(await startStaticServer(snap), (f) => f.close());
    const vite = cleanup.add(await startVite({ pages: ['e2e/light-client/index.html'] }), (v) => v.close());
    const browser = cleanup.add(await launchChromium(), (b) => b.close());
    const writer = (await (await fetch(`${node.file.http}/v1/status`)).json()) as { root: string };

    const sync = async (label: string, o: StartOptions): Promise<number> => {
      const { page } = await openReadyPage(browser, `${vite.url}/e2e/light-client/index.html`);
      try {
        const s = await page.evaluate(
          async ({ o, timeout }) => {
            lc.start(o);
            return lc.synced(timeout);
          },
          { o, timeout: SYNC_TIMEOUT_MS },
        );
        if (s.localRoot !== writer.root) throw new Error(`${label}: synced to ${s.localRoot}, the writer is at ${writer.root}`);
        log(`${label}: ${(s.ms / 1000).toFixed(1)} s`);
        await page.evaluate(() => lc.close());
        return s.ms;
      } finally {
        await page.context().close();
      }
    };
    const base = { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!] };
    const before = await rangeBytes(node.file.http!);
    const fromFiles = await sync('from static files', { ...base, storageName: 'bench-static-files', snapshots: [files.url] });
    const served = (await rangeBytes(node.file.http!)) - before;
    if (served > 0) log(`warning: the node served ${served} range-proof bytes during the static sync`);
    const fromNode = await sync('from one libp2p node', { ...base, storageName: 'bench-static-node' });
    return [
      { name: `browser sync of ${n} keys from static files (one static HTTP server on loopback)`, value: fromFiles / 1000, unit: 's', goal: null },
      { name: `browser sync of ${n} keys from one libp2p node (/ws)`, value: fromNode / 1000, unit: 's', goal: null },
      { name: `browser sync of ${n} keys from static files / from one libp2p node`, value: fromFiles / fromNode, unit: 'ratio', goal: '<= 0.5' },
      { name: 'range-proof bytes the node served during the static sync', value: served, unit: 'bytes', goal: '<= 0' },
    ];
  } finally {
    await cleanup.run();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const figures = await run({ keys: Number(process.env.BENCH_KEYS ?? 1_000_000) });
  for (const f of figures) console.log(`${f.name}: ${f.value} ${f.unit}${f.goal ? ` (goal ${f.goal})` : ''}`);
  writeResults('capacity-static', figures);
  process.exit(0);
}
