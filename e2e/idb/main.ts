/**
 * Test page for the IndexedDB store: drives the store in a dedicated worker (worker.ts) and
 * checks every answer against the core's MemoryStore fed the same batches. e2e/idb.test.ts calls
 * the scenarios below through `window.idbTest` and asserts on what they return.
 */
import { compareBytes, toHex } from '../../src/core/bytes.ts';
import { MemoryStore, type BatchOp, type IterateOptions } from '../../src/core/store.ts';
import type { CommittedEvent, Query, QueryResult, Request, Response, Stats } from './worker-messages.ts';
import { PROGRESS_KEY, randomBatch, randomBytes, randomKey, randomRange, rng, streamBatch } from './scenario.ts';
import { readerAgrees, readerDuringCommits, readerEdgeCases } from './reader.ts';

class WorkerError extends Error {
  details: Record<string, unknown> | undefined;
  constructor(name: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = name;
    this.details = details;
  }
}

/** A store worker and its request/response plumbing. */
class StoreWorker {
  readonly worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 1;
  onCommitted: ((e: CommittedEvent) => void) | undefined;

  constructor() {
    this.worker.onmessage = (m: MessageEvent<Response | CommittedEvent>) => {
      if ('committed' in m.data) return this.onCommitted?.(m.data);
      const p = this.pending.get(m.data.id)!;
      this.pending.delete(m.data.id);
      if (m.data.ok) p.resolve(m.data.value);
      else p.reject(new WorkerError(m.data.name, m.data.message, m.data.details));
    };
  }

  call<T>(req: Request): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, ...req });
    });
  }

  terminate(): void {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error('worker terminated'));
    this.pending.clear();
  }
}

const show = (kvs: Iterable<[Uint8Array, Uint8Array]>) => [...kvs].map(([k, v]) => `${toHex(k)}=${toHex(v)}`);
const showRange = (o: IterateOptions) =>
  JSON.stringify(o, (_, v) => (v instanceof Uint8Array ? toHex(v) : v));
const dump = (w: StoreWorker) => w.call<QueryResult[]>({ op: 'query', queries: [{ iterate: {} }] }).then((r) => show(r[0] as [Uint8Array, Uint8Array][]));

/**
 * What an iteration must return. MemoryStore is the reference, except with two bounds on one
 * side, which it answers inconsistently (gt still excludes its key under gte; lt is ignored
 * under lte): the seam's meaning there is both bounds (their intersection), filtered here.
 */
function expected(model: MemoryStore, o: IterateOptions): Iterable<[Uint8Array, Uint8Array]> {
  if (!((o.gte && o.gt) || (o.lte && o.lt))) return model.iterateSync(o);
  const inRange = ([k]: [Uint8Array, Uint8Array]) =>
    (!o.gte || compareBytes(k, o.gte) >= 0) &&
    (!o.gt || compareBytes(k, o.gt) > 0) &&
    (!o.lte || compareBytes(k, o.lte) <= 0) &&
    (!o.lt || compareBytes(k, o.lt) < 0);
  const all = [...model.iterateSync({})].filter(inRange);
  if (o.reverse) all.reverse();
  return all.slice(0, Math.max(0, o.limit ?? Infinity));
}

/** Compares answers to queries against the model; returns mismatch descriptions. */
async function check(w: StoreWorker, model: MemoryStore, queries: Query[], where: string): Promise<string[]> {
  const answers = await w.call<QueryResult[]>({ op: 'query', queries });
  const bad: string[] = [];
  queries.forEach((q, i) => {
    if ('get' in q) {
      const want = model.getSync(q.get);
      const got = answers[i] as Uint8Array | null;
      const a = got ? toHex(got) : 'absent';
      const b = want ? toHex(want) : 'absent';
      if (a !== b) bad.push(`${where}: get ${toHex(q.get)}: got ${a}, want ${b}`);
    } else {
      const got = show(answers[i] as [Uint8Array, Uint8Array][]);
      const want = show(expected(model, q.iterate));
      if (got.join() !== want.join()) bad.push(`${where}: iterate ${showRange(q.iterate)}: got [${got.slice(0, 5)}…${got.length}], want [${want.slice(0, 5)}…${want.length}]`);
    }
  });
  return bad;
}

/**
 * Seeded random batches (puts, overwrites, deletes; growth phases then shrink phases so pages
 * split and merge) with point reads and range scans after each, then close and reopen.
 */
/** `handOver`: every other batch is written with `{ handOver: true }` (kept uncopied until it commits). */
async function randomModel(o: { name: string; seed: number; batches: number; pageBytes: number; logBytes?: number; compactPages?: number; logAmplification?: number; handOver?: boolean }) {
  const r = rng(o.seed);
  const w = new StoreWorker();
  const model = new MemoryStore();
  const bad: string[] = [];
  let pages = await w.call<number>({ op: 'open', name: o.name, pageBytes: o.pageBytes, logBytes: o.logBytes, compactPages: o.compactPages, logAmplification: o.logAmplification });
  let maxPages = pages;
  let maxOverlayKeys = 0;
  let shrinks = 0;
  let grows = 0;
  let queries = 0;
  for (let b = 0; b < o.batches && bad.length < 10; b++) {
    const deleting = b % 50 >= 30; // 30 growing batches, then 20 deleting ones
    const ops: BatchOp[] = randomBatch(r, deleting ? 0.85 : 0.2);
    const before = pages;
    pages = await w.call<number>({ op: 'write', ops, handOver: o.handOver === true && b % 2 === 1 });
    model.writeSync(ops);
    if (pages > before) grows++;
    if (pages < before) shrinks++;
    maxPages = Math.max(maxPages, pages);
    const qs: Query[] = [];
    for (let i = 0; i < 4; i++) qs.push({ get: randomKey(r) });
    for (const op of ops.slice(0, 2)) qs.push({ get: op.key }); // keys just written or deleted
    for (let i = 0; i < 3; i++) qs.push({ iterate: randomRange(r) });
    if (b % 10 === 9) qs.push({ iterate: {} }, { iterate: { reverse: true } });
    queries += qs.length;
    bad.push(...(await check(w, model, qs, `batch ${b}`)));
    maxOverlayKeys = Math.max(maxOverlayKeys, (await w.call<Stats>({ op: 'stats' })).overlayKeys);
  }
  const stats = await w.call<Stats>({ op: 'stats' });
  const before = await dump(w);
  await w.call({ op: 'close' });
  w.terminate();
  const again = new StoreWorker();
  await again.call({ op: 'open', name: o.name, pageBytes: o.pageBytes, logBytes: o.logBytes, compactPages: o.compactPages, logAmplification: o.logAmplification });
  const after = await dump(again);
  bad.push(...(await check(again, model, [{ iterate: {} }, { iterate: { reverse: true, limit: 7 } }], 'after reopen')));
  // the whole log compacted into the pages: the same content from the pages alone
  await again.call({ op: 'compact' });
  const compacted = await again.call<Stats>({ op: 'stats' });
  bad.push(...(await check(again, model, [{ iterate: {} }, { iterate: { reverse: true } }, ...[...model.iterateSync({ limit: 20 })].map(([k]) => ({ get: k }))], 'after compacting everything')));
  await again.call({ op: 'close' });
  await again.call({ op: 'deleteDatabase', name: o.name });
  again.terminate();
  return {
    mismatches: bad,
    keys: model.size,
    maxPages,
    finalPages: pages,
    grows,
    shrinks,
    queries,
    reopenEqual: before.join() === after.join(),
    maxOverlayKeys,
    compactions: stats.compactions,
    commits: stats.commits,
    logBytesAfterCompact: compacted.logBytes,
    overlayKeysAfterCompact: compacted.overlayKeys,
  };
}

/**
 * Snapshot and ordering: an iteration opened before several writes (which split, merge and
 * delete pages) still returns the state from when it started; writes fired without waiting
 * apply in call order.
 */
async function snapshotAndOrder(o: { name: string; seed: number; logBytes?: number; compactPages?: number; logAmplification?: number }) {
  const r = rng(o.seed);
  const w = new StoreWorker();
  const model = new MemoryStore();
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: o.logBytes, compactPages: o.compactPages, logAmplification: o.logAmplification });
  for (let i = 0; i < 8; i++) {
    const ops = randomBatch(r, 0.1);
    await w.call({ op: 'write', ops });
    model.writeSync(ops);
  }
  const bad: string[] = [];
  const forward = show(model.iterateSync({}));
  const backward = show(model.iterateSync({ reverse: true, gt: new Uint8Array([0x01]) }));
  const fwd = await w.call<number>({ op: 'iterOpen', options: {} });
  const bwd = await w.call<number>({ op: 'iterOpen', options: { reverse: true, gt: new Uint8Array([0x01]) } });
  const got1 = show(await w.call<[Uint8Array, Uint8Array][]>({ op: 'iterNext', iter: fwd, n: 5 }));
  const got2 = show(await w.call<[Uint8Array, Uint8Array][]>({ op: 'iterNext', iter: bwd, n: 5 }));
  // fired together: the worker starts all of them before any finishes
  const batches = Array.from({ length: 6 }, (_, i) => randomBatch(r, i % 2 ? 0.9 : 0.1, 80));
  const writes = batches.map((ops) => w.call<number>({ op: 'write', ops }));
  for (const ops of batches) model.writeSync(ops);
  const pageCounts = await Promise.all(writes);
  const stats = await w.call<Stats>({ op: 'stats' });
  got1.push(...show(await w.call<[Uint8Array, Uint8Array][]>({ op: 'iterNext', iter: fwd, n: 1e9 })));
  got2.push(...show(await w.call<[Uint8Array, Uint8Array][]>({ op: 'iterNext', iter: bwd, n: 1e9 })));
  if (got1.join() !== forward.join()) bad.push(`forward snapshot: ${got1.length} entries, want ${forward.length}`);
  if (got2.join() !== backward.join()) bad.push(`reverse snapshot: ${got2.length} entries, want ${backward.length}`);
  bad.push(...(await check(w, model, [{ iterate: {} }], 'after concurrent writes')));
  const changed = forward.join() !== show(model.iterateSync({})).join();
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  return { mismatches: bad, snapshotEntries: forward.length, stateChanged: changed, pageCounts, compactions: stats.compactions };
}

/**
 * Crash consistency: a worker writes batches back to back (each with its progress record);
 * after `stopAfter` acknowledged commits it is terminated mid-stream. Reopened, the store must
 * equal the model after exactly the batches its progress record claims: whole batches only.
 */
async function crash(o: { name: string; seed: number; count: number; stopAfter: number; logBytes?: number; compactPages?: number; logAmplification?: number }) {
  const w = new StoreWorker();
  await w.call({ op: 'open', name: o.name, pageBytes: 4096, logBytes: o.logBytes, compactPages: o.compactPages, logAmplification: o.logAmplification });
  let acked = -1;
  const stopped = new Promise<void>((resolve) => {
    w.onCommitted = (e) => {
      acked = e.committed;
      if (e.committed === o.stopAfter) {
        w.terminate();
        resolve();
      }
    };
  });
  void w.call({ op: 'stream', seed: o.seed, count: o.count }).catch(() => undefined);
  await stopped;
  const again = new StoreWorker();
  await again.call({ op: 'open', name: o.name, pageBytes: 4096, logBytes: o.logBytes, compactPages: o.compactPages, logAmplification: o.logAmplification });
  const reopened = await again.call<Stats>({ op: 'stats' });
  const [progress] = await again.call<QueryResult[]>({ op: 'query', queries: [{ get: PROGRESS_KEY }] });
  const done = progress ? ((progress as Uint8Array)[0] << 8) | (progress as Uint8Array)[1] : -1;
  const model = new MemoryStore();
  for (let i = 0; i <= done; i++) model.writeSync(streamBatch(o.seed, i));
  const got = await dump(again);
  const want = show(model.iterateSync({}));
  // and no later batch left a trace: the state is not that of any other prefix either
  const next = new MemoryStore();
  for (let i = 0; i <= done + 1; i++) next.writeSync(streamBatch(o.seed, i));
  await again.call({ op: 'close' });
  await again.call({ op: 'deleteDatabase', name: o.name });
  again.terminate();
  return { acked, progress: done, equal: got.join() === want.join(), equalsNextPrefix: got.join() === show(next.iterateSync({})).join(), entries: got.length, logBytesAtReopen: reopened.logBytes };
}

const held = new Map<string, { w: StoreWorker; model: MemoryStore }>();

/** Quota, step 1 (with a small quota forced from outside): fill until the typed error. */
async function quotaFill(o: { name: string; seed: number; valueBytes: number; maxBatches: number }) {
  const r = rng(o.seed);
  const w = new StoreWorker();
  const model = new MemoryStore();
  held.set(o.name, { w, model });
  await w.call({ op: 'open', name: o.name });
  let committed = 0;
  let error: { name: string; message: string; details?: Record<string, unknown> } | undefined;
  for (let b = 0; b < o.maxBatches && !error; b++) {
    const ops: BatchOp[] = [];
    for (let i = 0; i < 16; i++) ops.push({ type: 'put', key: randomKey(r).map((x, j) => (j === 0 ? b : x)), value: randomBytes(r, o.valueBytes) }); // incompressible: IndexedDB compresses values
    ops.push({ type: 'put', key: PROGRESS_KEY, value: new Uint8Array([b]) });
    try {
      await w.call({ op: 'write', ops });
      model.writeSync(ops);
      committed++;
    } catch (err) {
      const e = err as WorkerError;
      error = { name: e.name, message: e.message, details: e.details };
    }
  }
  const mismatches = await check(w, model, [{ iterate: {} }, { get: PROGRESS_KEY }, { iterate: { reverse: true, limit: 3 } }], 'after quota error');
  return { committed, error, mismatches, stats: await w.call<Stats>({ op: 'stats' }) };
}

/** Quota, step 2 (quota restored): the same store accepts writes again and stays consistent. */
async function quotaResume(o: { name: string }) {
  const { w, model } = held.get(o.name)!;
  const ops: BatchOp[] = [{ type: 'put', key: new Uint8Array([0xee]), value: new Uint8Array(1000) }];
  await w.call({ op: 'write', ops });
  model.writeSync(ops);
  const mismatches = await check(w, model, [{ iterate: {} }], 'after quota restored');
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  held.delete(o.name);
  return { mismatches };
}

/** The real QuotaExceededError raised from inside the transaction by a shim (worker.ts). */
async function quotaShim(o: { name: string; seed: number; logBytes?: number; failOnCall?: number; bigOps?: number }) {
  const r = rng(o.seed);
  const w = new StoreWorker();
  const model = new MemoryStore();
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: o.logBytes });
  for (let i = 0; i < 5; i++) {
    const ops = randomBatch(r, 0.1);
    await w.call({ op: 'write', ops });
    model.writeSync(ops);
  }
  const before = await w.call<Stats>({ op: 'stats' });
  const pagesBefore = before.pages;
  // page path: two page puts issued, the third throws; log path: the record put issued, the meta put throws
  await w.call({ op: 'shimQuota', failOnCall: o.failOnCall ?? 3 });
  let error: { name: string; message: string } | undefined;
  const big = randomBatch(r, 0, o.bigOps ?? 200, 200);
  try {
    await w.call({ op: 'write', ops: big });
  } catch (err) {
    error = { name: (err as Error).name, message: (err as Error).message };
  }
  const mismatches = await check(w, model, [{ iterate: {} }, { iterate: { reverse: true } }, ...big.slice(0, 20).map((op) => ({ get: op.key }))], 'after shimmed quota error');
  const after = await w.call<Stats>({ op: 'stats' });
  const pagesAfter = after.pages;
  // the same batch goes through once the shim is gone, and the reopened store agrees
  await w.call({ op: 'write', ops: big });
  model.writeSync(big);
  const logBytesRetried = (await w.call<Stats>({ op: 'stats' })).logBytes;
  await w.call({ op: 'close' });
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: o.logBytes });
  mismatches.push(...(await check(w, model, [{ iterate: {} }], 'after retry and reopen')));
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  return { error, mismatches, pagesBefore, pagesAfter, logBytesBefore: before.logBytes, logBytesAfter: after.logBytes, logBytesRetried };
}

/**
 * A compaction whose transaction fails half-way (the shim throws QuotaExceededError on a page
 * put inside it): the store keeps its state (log and pages), reads agree with the model, and
 * the next compaction, then a reopen, give the same content from the pages alone.
 */
async function compactionFails(o: { name: string; seed: number }) {
  const r = rng(o.seed);
  const w = new StoreWorker();
  const model = new MemoryStore();
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: 1 << 20, compactPages: 4 });
  for (let i = 0; i < 12; i++) {
    const ops = randomBatch(r, 0.2, 20, 40);
    await w.call({ op: 'write', ops });
    model.writeSync(ops);
  }
  const before = await w.call<Stats>({ op: 'stats' });
  await w.call({ op: 'shimQuota', failOnCall: 2 }); // inside the first chunk's transaction
  await w.call({ op: 'compact' });
  const failed = await w.call<Stats>({ op: 'stats' });
  const mismatches = await check(w, model, [{ iterate: {} }, { iterate: { reverse: true } }, ...[...model.iterateSync({ limit: 10 })].map(([k]) => ({ get: k }))], 'after a failed compaction');
  await w.call({ op: 'compact' });
  const done = await w.call<Stats>({ op: 'stats' });
  mismatches.push(...(await check(w, model, [{ iterate: {} }], 'after compacting')));
  await w.call({ op: 'close' });
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: 1 << 20 });
  mismatches.push(...(await check(w, model, [{ iterate: {} }], 'after reopen')));
  const reopened = await w.call<Stats>({ op: 'stats' });
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  return { mismatches, before, failed, done, reopened };
}

/**
 * The page size a store opened without `pageBytes` takes: the one its database was last written
 * with (meta.pageBytes), through reopens and a change of size; a new database: the default.
 */
/**
 * `prefetchRanges`: a reopened store (nothing cached) told two ranges caches the pages holding
 * them and no more than half its cache; the scans of those ranges answer as before.
 */
async function prefetchRanges(o: { name: string }) {
  const w = new StoreWorker();
  const key = (i: number): Uint8Array => new Uint8Array([i >> 8, i & 255]);
  const ops: BatchOp[] = [];
  for (let i = 0; i < 2000; i++) ops.push({ type: 'put', key: key(i), value: new Uint8Array(100).fill(i & 255) });
  const ranges = [
    { gte: key(100), lt: key(140) },
    { gte: key(1500), lt: key(1510) },
  ];
  const scans: Query[] = ranges.map((r) => ({ iterate: { gte: r.gte, lt: r.lt } }));
  await w.call({ op: 'deleteDatabase', name: o.name });
  // 512-byte pages hold ~4 entries: the first range spans ~10 pages, the second ~3
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: 0 });
  await w.call({ op: 'write', ops });
  const reopen = async (cacheBytes: number) => {
    await w.call({ op: 'close' });
    await w.call({ op: 'open', name: o.name, pageBytes: 512, cacheBytes, logBytes: 0 });
  };
  await reopen(1024 * 1024);
  const before = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  await w.call({ op: 'prefetch', ranges });
  const after = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  const answers = await w.call<QueryResult[]>({ op: 'query', queries: scans });
  const cachedAfterScans = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  // a cache of 4 pages: at most 2 are prefetched
  await reopen(4 * 512);
  await w.call({ op: 'prefetch', ranges });
  const bounded = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  const answersSmall = await w.call<QueryResult[]>({ op: 'query', queries: scans });
  // hostile bounds: an inverted range reads nothing; one over every key stays within half the cache
  await reopen(4 * 512);
  await w.call({ op: 'prefetch', ranges: [{ gte: key(1500), lt: key(100) }] });
  const inverted = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  await w.call({ op: 'prefetch', ranges: [{ gte: new Uint8Array(0), lt: new Uint8Array([0xff, 0xff, 0xff]) }] });
  const everything = (await w.call<Stats>({ op: 'stats' })).cachedPages;
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  const lengths = (a: QueryResult[]) => a.map((x) => (Array.isArray(x) ? x.length : -1));
  const firstKeys = (a: QueryResult[]) => a.map((x) => (Array.isArray(x) && x.length ? toHex(x[0][0]) : ''));
  return { before, after, cachedAfterScans, bounded, inverted, everything, lengths: lengths(answers), lengthsSmall: lengths(answersSmall), firstKeys: firstKeys(answers) };
}

async function storedPageSize(o: { name: string }) {
  const w = new StoreWorker();
  const sizes: number[] = [];
  const reopen = async (pageBytes?: number) => {
    await w.call({ op: 'close' });
    await w.call({ op: 'open', name: o.name, pageBytes, logBytes: 0 });
  };
  const pageBytesNow = async () => sizes.push((await w.call<Stats>({ op: 'stats' })).pageBytes);
  const put = (i: number): BatchOp => ({ type: 'put', key: new Uint8Array([i]), value: new Uint8Array(64) });
  await w.call({ op: 'deleteDatabase', name: o.name });
  await w.call({ op: 'open', name: o.name, pageBytes: 1024, logBytes: 0 });
  await w.call({ op: 'write', ops: [put(1), put(2)] });
  await reopen();
  await pageBytesNow(); // created with 1024
  await reopen(2048);
  await w.call({ op: 'write', ops: [put(3)] });
  await reopen();
  await pageBytesNow(); // last written with 2048
  await reopen(4096);
  await reopen();
  await pageBytesNow(); // opened with 4096 but never written: still 2048
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  await w.call({ op: 'open', name: o.name, logBytes: 0 });
  await pageBytesNow(); // a new database: the default
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  w.terminate();
  return sizes;
}

/** Generic access for the two-tab and bench tests: named workers and raw requests. */
const workers = new Map<string, StoreWorker>();
function spawn(id: string): void {
  workers.set(id, new StoreWorker());
}
function call<T>(id: string, req: Request): Promise<T> {
  return workers.get(id)!.call<T>(req);
}

/** The page's read-only reader (reader.ts) against a store the worker writes. */
const withWorker = <O, R>(f: (w: StoreWorker, o: O) => Promise<R>) => async (o: O): Promise<R> => {
  const w = new StoreWorker();
  try {
    return await f(w, o);
  } finally {
    w.terminate();
  }
};

const api = {
  randomModel,
  snapshotAndOrder,
  crash,
  quotaFill,
  quotaResume,
  quotaShim,
  compactionFails,
  storedPageSize,
  prefetchRanges,
  spawn,
  call,
  readerAgrees: withWorker(readerAgrees),
  readerDuringCommits: withWorker(readerDuringCommits),
  readerEdgeCases: withWorker(readerEdgeCases),
};
export type IdbTestApi = typeof api;
(window as unknown as { idbTest: IdbTestApi }).idbTest = api;
(window as unknown as { __result: unknown }).__result = 'ready';
document.getElementById('out')!.textContent = 'ready';
