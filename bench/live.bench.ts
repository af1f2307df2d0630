/**
 * Live-update figures, in headless Chromium (e2e/live/ on Vite's dev
 * server) against a local writer node holding N keys (default 1,000,000; `BENCH_KEYS` to
 * shrink), after the client's full sync:
 *
 * - deltas applied per second in the worker: the client is paused while the writer commits K
 *   deltas of 10 puts each (received over gossip, signature-verified and held, so kept in the
 *   pending store), then resumed; the figure is K over the time from `resume()` to the K-th
 *   subscription callback. Every delta is applied to the trie and its `stateRoot` recomputed and
 *   compared; a backlog goes into the follower's journal (follower.ts `checkpointEvery`): its
 *   deltas are durable in the pending store before their callbacks, and the trie's records,
 *   position and progress reach the store at the journal's checkpoint. A second figure counts
 *   until that checkpoint is durable (what a sustained stream pays);
 * - WebCrypto Ed25519 verifications per second in the same browser (the receive-side cost the
 *   figure above excludes, since it is paid as each delta arrives);
 * - latency from the writer's commit (its HLC wall time, taken when the commit starts) to the
 *   subscription callback on the page, over loopback, while the writer commits steadily:
 *   median and 99th percentile.
 *
 * The throughput run goes twice: right after the latency run (the client's idle warm-up of the
 * trie node cache may not have finished: the cold share is in that figure), and again once the
 * warm-up is done. All runs also print where the worker's apply time went per delta (reading trie paths,
 * computing in memory, the store commit). The store's write log keeps its default bound
 * (48 MiB, no compaction within these runs); `BENCH_LOG_BYTES` makes it small so that
 * compactions run during the burst.
 *
 * The puts insert new random keys (each splits a leaf: the state grows). `BENCH_PUTS=update`
 * makes them overwrite keys the writer's generated database holds instead (seed 1), so the
 * state keeps its N keys.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../src/core/bytes.ts';
import { FULL_NODE_SCRIPT } from '../src/node/testing/process.ts';
import { generateKeyValues } from '../src/node/generate.ts';
import { Cleanup, launchChromium, startNode, startVite } from '../e2e/harness.ts';
import type { Live, LiveRecord } from '../e2e/live/main.ts';
import { type Figure, seededBytes, writeResults } from './lib.ts';
import { profileWorkers } from './worker-profile.ts';

declare const live: Live;
const N = Number(process.env.BENCH_KEYS ?? 1_000_000);
const K = Number(process.env.BENCH_DELTAS ?? 2_000);
const LATENCY_DELTAS = Number(process.env.BENCH_LATENCY_DELTAS ?? 300);
const LATENCY_RATE = 20; // commits per second while measuring latency
/** Deltas per IndexedDB commit (the follower's default is 1,024). */
const MAX_BATCH = process.env.BENCH_MAX_BATCH ? Number(process.env.BENCH_MAX_BATCH) : undefined;
/** Deltas the journal holds at most before a checkpoint (the follower's default is 4,096). */
const CHECKPOINT_EVERY = process.env.BENCH_CHECKPOINT_EVERY ? Number(process.env.BENCH_CHECKPOINT_EVERY) : undefined;
/** The store's write-log bound (bytes; default the store's, 48 MiB): smaller makes runs include compactions. */
const LOG_BYTES = process.env.BENCH_LOG_BYTES ? Number(process.env.BENCH_LOG_BYTES) : undefined;
/** A directory: CPU profiles of the page's workers during each throughput burst are written there. */
const PROFILE = process.env.BENCH_PROFILE;
const figures: Figure[] = [];
const cleanup = new Cleanup();
const log = (s: string): void => console.log(`live: ${s}`);
const bytes = seededBytes(5);
const UPDATE = process.env.BENCH_PUTS === 'update';
/** With `BENCH_PUTS=update`: the generated database's keys (the node's default seed), hex. */
const existing = UPDATE ? generateKeyValues(N, 1).map((kv) => toHex(kv.key)) : [];
const putKey = (): string => (UPDATE ? existing[bytes(4).reduce((a, b) => a * 256 + b, 0) % existing.length] : toHex(bytes(32)));

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

try {
  log(`starting a writer node with ${N} generated keys`);
  const node = cleanup.add(await startNode({ script: FULL_NODE_SCRIPT, args: ['--generate', String(N)], readyTimeoutMs: 1_800_000 }), (n) => n.stop());
  const token = (await readFile(join(node.dataDir, 'token'), 'utf8')).trim();
  const roundTrips: number[] = [];
  const commit = async (): Promise<void> => {
    const puts = Array.from({ length: 10 }, () => ({ key: putKey(), value: toHex(bytes(64)) }));
    const t = performance.now();
    const res = await fetch(`${node.file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ puts }) });
    if (!res.ok) throw new Error(`commit failed: ${res.status} ${await res.text()}`);
    roundTrips.push(performance.now() - t);
  };
  const vite = cleanup.add(await startVite({ pages: ['e2e/live/index.html'] }), (v) => v.close());
  const browser = cleanup.add(await launchChromium(), (b) => b.close());
  const page = await browser.newPage();
  page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
  await page.goto(`${vite.url}/e2e/live/index.html`);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, undefined, { timeout: 120_000 });

  const waitFor = async (ready: (r: LiveRecord) => boolean, what: string, timeoutMs: number): Promise<LiveRecord> => {
    const deadline = Date.now() + timeoutMs;
    let said = Date.now();
    for (;;) {
      const r = await page.evaluate(() => live.tail(0));
      if (ready(r)) return page.evaluate(() => live.recorded());
      const state = () => JSON.stringify({ pending: r.pending, live: r.live.slice(-1), errors: r.errors });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${state()}`);
      if (Date.now() - said > 10_000) {
        said = Date.now();
        log(`waiting for ${what}: ${state()}`);
      }
      await new Promise((r) => setTimeout(r, 100)); // polling interval
    }
  };
  let applied = 0;
  const appliedCount = (r: LiveRecord) => r.live.at(-1)?.applied ?? 0;
  // where the worker's apply time went between two records (its cumulative timings)
  const timingsOf = (r: LiveRecord) => r.live.at(-1)?.timings ?? { commits: 0, deltas: 0, readMs: 0, computeMs: 0, commitMs: 0, checkpoints: 0, checkpointMs: 0, checkpointsStored: 0 };
  const split = (a: LiveRecord | undefined, b: LiveRecord): string => {
    const x = a ? timingsOf(a) : timingsOf({ ...b, live: [] });
    const y = timingsOf(b);
    const d = y.deltas - x.deltas || 1;
    const per = (k: 'readMs' | 'computeMs' | 'commitMs' | 'checkpointMs') => ((y[k] - x[k]) / d).toFixed(2);
    return `${y.commits - x.commits} groups, ${y.deltas - x.deltas} deltas, ${y.checkpoints - x.checkpoints} checkpoints; per delta: read ${per('readMs')} ms, compute ${per('computeMs')} ms, store commit ${per('commitMs')} ms, checkpoint ${per('checkpointMs')} ms`;
  };

  log('full sync');
  const t0 = performance.now();
  await page.evaluate(
    (o) => live.start(o),
    { db: node.file.db!, writer: node.file.peerId, bootstrap: [node.file.ws!], storageName: 'bench-live', writeLogBytes: LOG_BYTES, live: { maxPending: K + 1000, maxPendingBytes: 256 * 1024 * 1024, maxGapFill: K + 1000, maxBatch: MAX_BATCH, checkpointEvery: CHECKPOINT_EVERY } },
  );
  await page.evaluate(() => live.synced(1_800_000));
  log(`synced ${N} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // latency: the writer commits at a steady rate; the page notes Date.now() - hlc at each callback
  log(`latency: ${LATENCY_DELTAS} commits at ${LATENCY_RATE}/s`);
  const beforeLatency = await page.evaluate(() => live.recorded());
  const start = performance.now();
  for (let i = 0; i < LATENCY_DELTAS; i++) {
    await commit();
    const due = start + ((i + 1) * 1000) / LATENCY_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // the commit rate, not a wait for a condition
  }
  applied += LATENCY_DELTAS;
  let r = await waitFor((x) => appliedCount(x) >= applied, 'the latency run applied', 120_000);
  log(`latency run: ${split(beforeLatency, r)}`);
  const lat = r.updates.filter((u) => u.latencyMs !== null).slice(-LATENCY_DELTAS).map((u) => u.latencyMs!);
  figures.push({ name: `commit-to-callback latency on loopback, median (${N} keys, ${lat.length} deltas at ${LATENCY_RATE}/s)`, value: percentile(lat, 0.5), unit: 'ms', goal: '<= 50' });
  figures.push({ name: 'commit-to-callback latency on loopback, 99th percentile', value: percentile(lat, 0.99), unit: 'ms', goal: null });
  // the first deltas after going live read cold trie pages; the second half shows the steady state
  const warm = lat.slice(lat.length >> 1);
  figures.push({ name: 'commit-to-callback latency, second half of the run: median', value: percentile(warm, 0.5), unit: 'ms', goal: null });
  figures.push({ name: 'commit-to-callback latency, second half of the run: 99th percentile', value: percentile(warm, 0.99), unit: 'ms', goal: null });
  // the writer's own share: its HLC is read when the commit starts, the delta is published after it
  figures.push({ name: 'of which the writer: HTTP commit round trip, median', value: percentile(roundTrips, 0.5), unit: 'ms', goal: null });

  // throughput: hold K deltas while paused, then apply them all; first as the burst finds the
  // node cache (the idle warm-up may not have finished), then again once the warm-up is done
  const burst = async (label: string): Promise<void> => {
    log(`throughput (${label}): ${K} deltas held while paused; node cache warm-up done: ${r.live.at(-1)?.warm ?? false}`);
    await page.evaluate(() => live.pause());
    await waitFor((x) => x.live.at(-1)?.mode === 'syncing', 'paused', 30_000);
    const w0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < K) {
          next++;
          await commit();
        }
      }),
    );
    log(`writer committed ${K} deltas in ${((performance.now() - w0) / 1000).toFixed(1)} s`);
    await waitFor((x) => (x.pending?.count ?? 0) >= K, `${K} held deltas`, 300_000);
    const beforeBurst = await page.evaluate(() => live.recorded());
    const apply = async (): Promise<number> => {
      const at = await page.evaluate(() => live.resume());
      r = await waitFor((x) => appliedCount(x) >= applied + K, `${K} deltas applied`, 600_000);
      return at;
    };
    const resumedAt = PROFILE ? await profileWorkers(page, PROFILE, label.replace(/\W+/g, '-'), apply) : await apply();
    applied += K;
    const done = r.updates.filter((u) => u.deltaId !== null && u.at >= resumedAt);
    const seconds = (done[done.length - 1].at - resumedAt) / 1000;
    // then the store itself catches up: no applied delta is left only in the journal
    const lastAt = done[done.length - 1].at;
    const storedRecord = (x: LiveRecord) => x.live.find((l) => l.at >= lastAt && l.unstored === 0);
    r = await waitFor((x) => storedRecord(x) !== undefined, 'the checkpoint', 120_000);
    log(`throughput run (${label}): ${split(beforeBurst, r)}`);
    const storedAt = storedRecord(r)!.at;
    const what = `10 ${UPDATE ? 'updates of existing keys' : 'puts of new keys'} each, ${N}-key state, stateRoot checked`;
    figures.push({ name: `deltas applied per second in the worker, ${label} (${what}; ${done.length} deltas, each durable before its callback: in the pending store, the trie at the journal's checkpoint, at most every ${CHECKPOINT_EVERY ?? 4096}; groups of at most ${MAX_BATCH ?? 1024}, write log bound ${LOG_BYTES ?? 'default'})`, value: done.length / seconds, unit: 'deltas/s', goal: '>= 2000' });
    figures.push({ name: `the same, until the store holds them all (the checkpoint of the journal durable)`, value: done.length / ((storedAt - resumedAt) / 1000), unit: 'deltas/s', goal: null });
  };
  await burst('after the latency run');
  r = await waitFor((x) => x.live.at(-1)?.warm === true, 'the node cache warm-up', 600_000); // usually done before the first burst already
  await burst('second burst');
  if (r.errors.length) log(`errors: ${JSON.stringify(r.errors)}`);
  const verify = await page.evaluate(() => live.verifyRate(2000));
  figures.push({ name: 'WebCrypto Ed25519 verifications per second in the browser (paid as each delta arrives)', value: verify, unit: 'verifications/s', goal: null });
  await page.evaluate(() => live.close());
  writeResults('live', figures);
} finally {
  await cleanup.run();
}
