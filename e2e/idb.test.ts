/**
 * The IndexedDB store (src/client/idb) in headless Chromium, inside a dedicated worker as the
 * light client runs it, checked against the core's MemoryStore (e2e/idb/main.ts holds the
 * scenarios; this file asserts on what they report).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Cleanup, launchChromium, openPage, pageResult, startVite, type ViteHandle } from './harness.ts';
import type { IdbTestApi } from './idb/main.ts';

const cleanup = new Cleanup();
let vite: ViteHandle;
let browser: Browser;
let page: Page;
let log: string[];

type Api = IdbTestApi;
/** Runs scenario `name` of the test page with `arg`. */
function run<K extends keyof Api>(p: Page, name: K, ...args: Parameters<Api[K]>): Promise<Awaited<ReturnType<Api[K]>>> {
  return p.evaluate(
    ([n, a]) => (window as unknown as { idbTest: Record<string, (...x: unknown[]) => unknown> }).idbTest[n as string](...(a as unknown[])),
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<Api[K]>>>;
}

beforeAll(async () => {
  [vite, browser] = await Promise.all([
    startVite({ pages: ['e2e/idb/index.html', 'e2e/idb/worker.ts'] }).then((v) => cleanup.add(v, (x) => x.close())),
    launchChromium().then((b) => cleanup.add(b, (x) => x.close())),
  ]);
  ({ page, log } = await openPage(browser, `${vite.url}/e2e/idb/index.html`));
  await pageResult(page, log);
}, 120_000);
afterAll(() => cleanup.run(), 60_000);

const context = () => `page console:\n${log.join('\n')}`;

describe('PackedIdbStore in a worker, against MemoryStore', () => {
  it('seeded random batches with gets and ranges of every bound kind agree; pages split and merge; reopen gives the same content', async () => {
    const r = await run(page, 'randomModel', { name: 'random', seed: 7, batches: 200, pageBytes: 512, logBytes: 0 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.reopenEqual).toBe(true);
    expect(r.grows).toBeGreaterThan(10); // splits
    expect(r.shrinks).toBeGreaterThan(10); // merges and folded empty pages
    expect(r.maxPages).toBeGreaterThan(20);
    expect(r.keys).toBeGreaterThan(0);
  });

  it('write log: reads see buffered writes (no compaction), reopen replays the log, compacting it keeps the content', async () => {
    const r = await run(page, 'randomModel', { name: 'log-only', seed: 17, batches: 120, pageBytes: 512, logBytes: 64 * 1024 * 1024 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.reopenEqual).toBe(true);
    expect(r.compactions).toBe(0);
    expect(r.maxOverlayKeys).toBeGreaterThan(500); // answered from the overlay merged with the pages
    expect(r.logBytesAfterCompact).toBe(0);
    expect(r.overlayKeysAfterCompact).toBe(0);
  });

  it('handed-over batches (every other one; see WriteOptions) to the pages and to the log, with compaction: content agrees', async () => {
    const r = await run(page, 'randomModel', { name: 'hand-over', seed: 9, batches: 200, pageBytes: 512, logBytes: 4 * 1024, compactPages: 3, handOver: true });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.reopenEqual).toBe(true);
    expect(r.maxOverlayKeys).toBeGreaterThan(0); // some batches were logged
    expect(r.compactions).toBeGreaterThan(0);
    expect(r.grows).toBeGreaterThan(10);
  });

  it('write log with a small bound: compaction in small chunks between writes splits and merges pages, content agrees', async () => {
    const r = await run(page, 'randomModel', { name: 'log-compact', seed: 7, batches: 200, pageBytes: 512, logBytes: 4 * 1024, compactPages: 3, logAmplification: 0 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.reopenEqual).toBe(true);
    // compaction runs in chunks queued behind writes, so how many land between two given writes
    // depends on scheduling: the counts only need to show pages were split and merged
    expect(r.compactions).toBeGreaterThan(3);
    expect(r.grows).toBeGreaterThan(3);
    expect(r.shrinks).toBeGreaterThan(0);
    expect(r.maxOverlayKeys).toBeGreaterThan(0);
  });

  it('the default page size agrees too', async () => {
    const r = await run(page, 'randomModel', { name: 'random-default', seed: 8, batches: 60, pageBytes: 32 * 1024 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.reopenEqual).toBe(true);
  });

  it('an iteration sees the state of its start across later writes; unawaited writes apply in call order', async () => {
    const r = await run(page, 'snapshotAndOrder', { name: 'snapshot', seed: 11 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.stateChanged).toBe(true);
    expect(r.snapshotEntries).toBeGreaterThan(50);
  });

  it.each([
    { logBytes: 64 * 1024 * 1024, compacting: false },
    { logBytes: 2048, compacting: true },
  ])('an iteration holds its snapshot across logged writes (log bound $logBytes: compactions $compacting)', async ({ logBytes, compacting }) => {
    const r = await run(page, 'snapshotAndOrder', { name: `snapshot-log-${logBytes}`, seed: 12, logBytes, compactPages: 2, logAmplification: 0 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.stateChanged).toBe(true);
    expect(r.compactions > 0).toBe(compacting);
  });
});

describe('crash consistency', () => {
  it.each([
    { seed: 4, stopAfter: 5, logBytes: 64 * 1024 * 1024, compacting: false },
    { seed: 5, stopAfter: 12, logBytes: 16 * 1024, compacting: true },
    { seed: 6, stopAfter: 25, logBytes: 16 * 1024, compacting: true },
  ])('write log: worker terminated after $stopAfter acknowledged batches (log bound $logBytes, compacting 1 page at a time): every batch whole or absent', async ({ seed, stopAfter, logBytes, compacting }) => {
    const r = await run(page, 'crash', { name: `crash-log-${seed}`, seed, count: 60, stopAfter, logBytes, compactPages: 1, logAmplification: 0 });
    expect(r.progress, context()).toBeGreaterThanOrEqual(stopAfter);
    expect(r.equal, JSON.stringify(r)).toBe(true);
    expect(r.equalsNextPrefix).toBe(false);
    if (!compacting) expect(r.logBytesAtReopen).toBeGreaterThan(0); // the reopened state came through the log
  });

  it.each([
    { seed: 1, stopAfter: 0 },
    { seed: 2, stopAfter: 3 },
    { seed: 3, stopAfter: 9 },
  ])('worker terminated after $stopAfter acknowledged batches (seed $seed): every batch whole or absent', async ({ seed, stopAfter }) => {
    const r = await run(page, 'crash', { name: `crash-${seed}`, seed, count: 40, stopAfter });
    expect(r.progress, context()).toBeGreaterThanOrEqual(stopAfter);
    expect(r.equal, JSON.stringify(r)).toBe(true);
    expect(r.equalsNextPrefix).toBe(false);
  });
});

describe('quota', () => {
  it('a small quota forced through CDP gives StorageQuotaExceeded and the store keeps its last committed state', async () => {
    const { page: p, log: plog } = await openPage(browser, `${vite.url}/e2e/idb/index.html`);
    cleanup.add(p, (x) => x.close());
    await pageResult(p, plog);
    const cdp = await p.context().newCDPSession(p);
    const origin = new URL(vite.url).origin;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 2 * 1024 * 1024 });
    const filled = await run(p, 'quotaFill', { name: 'quota', seed: 5, valueBytes: 16 * 1024, maxBatches: 200 });
    expect(filled.error, JSON.stringify(filled) + plog.join('\n')).toBeDefined();
    expect(filled.error!.name).toBe('StorageQuotaExceeded');
    expect(filled.error!.message).toMatch(/quota exceeded/);
    expect(filled.error!.details?.attemptedBytes).toBeGreaterThan(0);
    expect(filled.committed).toBeGreaterThan(0);
    expect(filled.mismatches).toEqual([]);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin }); // back to the default quota
    const resumed = await run(p, 'quotaResume', { name: 'quota' });
    expect(resumed.mismatches).toEqual([]);
  });

  it('a real QuotaExceededError raised inside the transaction (shim) gives the typed error and rolls back', async () => {
    const r = await run(page, 'quotaShim', { name: 'quota-shim', seed: 9 });
    expect(r.error, context()).toMatchObject({ name: 'StorageQuotaExceeded' });
    expect(r.mismatches).toEqual([]);
    expect(r.pagesAfter).toBe(r.pagesBefore);
  });

  it('write log: the record put issued, the meta put throws QuotaExceededError: typed error, nothing logged, retry logs it', async () => {
    const r = await run(page, 'quotaShim', { name: 'quota-shim-log', seed: 10, logBytes: 64 * 1024 * 1024, failOnCall: 2, bigOps: 4 });
    expect(r.error, context()).toMatchObject({ name: 'StorageQuotaExceeded' });
    expect(r.mismatches).toEqual([]);
    expect(r.pagesAfter).toBe(r.pagesBefore);
    expect(r.logBytesAfter).toBe(r.logBytesBefore);
    expect(r.logBytesRetried).toBeGreaterThan(r.logBytesAfter);
  });

  it('a compaction whose transaction fails half-way keeps log and pages consistent; the next compaction empties the log', async () => {
    const r = await run(page, 'compactionFails', { name: 'compaction-fails', seed: 13 });
    expect(r.mismatches, context()).toEqual([]);
    expect(r.before.logBytes).toBeGreaterThan(0);
    expect(r.failed.logBytes).toBe(r.before.logBytes);
    expect(r.failed.compactions).toBe(0);
    expect(r.done.compactions).toBe(1);
    expect(r.done.logBytes).toBe(0);
    expect(r.reopened.logBytes).toBe(0);
  });
});

describe('prefetchRanges', () => {
  it('caches the pages holding the ranges (no more than half the cache); the scans answer as before', async () => {
    const r = await run(page, 'prefetchRanges', { name: 'prefetch' });
    expect(r.before).toBe(0);
    // 40 + 10 keys of ~104 bytes on 512-byte pages (~4 per page): at least 10 + 3 pages
    expect(r.after).toBeGreaterThanOrEqual(13);
    expect(r.after).toBeLessThan(30);
    expect(r.cachedAfterScans).toBe(r.after); // the scans read nothing more
    expect(r.bounded).toBe(2);
    expect(r.inverted).toBe(0);
    expect(r.everything).toBe(2);
    expect(r.lengths).toEqual([40, 10]);
    expect(r.lengthsSmall).toEqual([40, 10]);
    expect(r.firstKeys).toEqual(['0064', '05dc']);
  });
});

describe('stored page size', () => {
  it('a store opened without pageBytes takes the size its database was last written with; a new one, 32 KiB', async () => {
    expect(await run(page, 'storedPageSize', { name: 'page-size' })).toEqual([1024, 2048, 2048, 32 * 1024]);
  });
});

describe('two tabs', () => {
  it('one holds the sync lock, the other gets null and progress events; the lock passes on when the holder goes', async () => {
    const ctx = await browser.newContext();
    cleanup.add(ctx, (c) => c.close());
    const tabs = await Promise.all([0, 1].map(async () => {
      const p = await ctx.newPage();
      const l: string[] = [];
      p.on('console', (m) => l.push(m.text()));
      await p.goto(`${vite.url}/e2e/idb/index.html`);
      await pageResult(p, l);
      await run(p, 'spawn', 'w');
      return p;
    }));
    const [a, b] = tabs;
    expect(await run(a, 'call', 'w', { op: 'lock', db: 'shared' })).toBe(true);
    expect(await run(b, 'call', 'w', { op: 'lock', db: 'shared' })).toBe(false);
    expect(await run(b, 'call', 'w', { op: 'lock', db: 'other' })).toBe(true); // per database
    await run(b, 'call', 'w', { op: 'listen', db: 'shared' });
    await run(a, 'call', 'w', { op: 'post', db: 'shared', completed: 1, total: 4 });
    await run(a, 'call', 'w', { op: 'post', db: 'shared', completed: 4, total: 4 });
    expect(await run(b, 'call', 'w', { op: 'events', atLeast: 2 })).toEqual([
      { type: 'progress', completed: 1, total: 4 },
      { type: 'progress', completed: 4, total: 4 },
    ]);
    // both read the data the syncing tab writes
    await run(a, 'call', 'w', { op: 'open', name: 'shared' });
    await run(b, 'call', 'w', { op: 'open', name: 'shared' });
    await run(a, 'call', 'w', { op: 'write', ops: [{ type: 'put', key: new Uint8Array([1]), value: new Uint8Array([42]) }] });
    const read = (await run(b, 'call', 'w', { op: 'query', queries: [{ get: new Uint8Array([1]) }] })) as unknown as Record<string, number>[];
    expect(Object.values(read[0])).toEqual([42]);
    // a write from the other connection starts from the current pages, not its stale index
    await run(b, 'call', 'w', { op: 'write', ops: [{ type: 'put', key: new Uint8Array([2]), value: new Uint8Array([43]) }] });
    const both = (await run(b, 'call', 'w', { op: 'query', queries: [{ iterate: {} }] })) as unknown as Record<string, number>[][][];
    expect(both[0].map(([k, v]) => [Object.values(k), Object.values(v)])).toEqual([[[1], [42]], [[2], [43]]]);
    // the waiting tab takes over when the syncing tab closes
    const waiting = run(b, 'call', 'w', { op: 'waitLock', db: 'shared' });
    await a.close();
    expect(await waiting).toBe(true);
  });
});

describe('StoreReader: the page reads the store the worker writes (store-reader.ts)', () => {
  it('answers as the store does: pages, write log (puts and deletes), after compactions', async () => {
    const r = await run(page, 'readerAgrees', { name: 'reader-agrees', seed: 21, batches: 120 });
    expect(r.mismatches, context()).toEqual([]);
    // both paths were exercised: keys in the log, and compactions into the pages
    expect(r.logged).toBeGreaterThan(10);
    expect(r.compactions).toBeGreaterThan(0);
    expect(r.pages).toBeGreaterThan(1);
  });

  it('while commits and compactions run, every answer is a committed value and never an older one', async () => {
    const r = await run(page, 'readerDuringCommits', { name: 'reader-commits', rounds: 150 });
    expect(r.invalid, context()).toBe(0);
    expect(r.backwards, context()).toBe(0);
    expect(r.last).toBe(150);
    // the reads overlapped the commits (not all before or after them)
    expect(r.distinct).toBeGreaterThan(2);
    expect(r.compactions).toBeGreaterThan(0);
  });

  it('a missing, older, foreign, uninitialised, damaged or deleted store gives a typed error; nothing is created', async () => {
    const r = await run(page, 'readerEdgeCases', { name: 'reader-edge' });
    expect(r, context()).toEqual({
      missing: 'StoreMissing',
      missingCreated: false,
      older: 'StoreMissing',
      olderVersionAfter: 1,
      foreign: 'StoreMissing',
      uninitialised: 'StoreMissing',
      empty: 'undefined',
      page: 'StorageCorrupted',
      meta: 'StorageCorrupted',
      log: 'StorageCorrupted',
      beforeDelete: 'undefined',
      afterDelete: 'StoreClosed',
    });
  });
});
