/**
 * The store under test, running in a dedicated worker as the light client will: the page sends
 * requests (protocol.ts) and compares answers with its in-memory model.
 */
import { deleteDB, openDB } from 'idb';
import type { BatchOp } from '../../src/core/store.ts';
import { acquireSyncLock, SyncChannel, waitForSyncLock, type SyncEvent, type SyncLock } from '../../src/client/idb/locks.ts';
import { PackedIdbStore } from '../../src/client/idb/packed-store.ts';
import type { Query, QueryResult, Request, Response, Stats } from './worker-messages.ts';
import { rng, randomBytes, streamBatch } from './scenario.ts';

let store: PackedIdbStore | undefined;
const iterators = new Map<number, AsyncIterator<[Uint8Array, Uint8Array]>>();
let nextIter = 1;
let lock: SyncLock | null = null;
let channel: SyncChannel | undefined;
const events: SyncEvent[] = [];
let eventWaiter: (() => void) | undefined;

const open = () => {
  if (!store) throw new Error('no store open');
  return store;
};

async function collect(it: AsyncIterable<[Uint8Array, Uint8Array]>): Promise<[Uint8Array, Uint8Array][]> {
  const out: [Uint8Array, Uint8Array][] = [];
  for await (const kv of it) out.push(kv);
  return out;
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'open':
      store = await PackedIdbStore.open(req.name, { pageBytes: req.pageBytes, cacheBytes: req.cacheBytes, logBytes: req.logBytes, compactPages: req.compactPages, logAmplification: req.logAmplification });
      return open().pageCount;
    case 'write':
      await open().write(req.ops, { handOver: req.handOver });
      return open().pageCount;
    case 'query': {
      const out: QueryResult[] = [];
      for (const q of req.queries) out.push('get' in q ? ((await open().get(q.get)) ?? null) : await collect(open().iterate(q.iterate)));
      return out;
    }
    case 'iterOpen': {
      const id = nextIter++;
      iterators.set(id, open().iterate(req.options)[Symbol.asyncIterator]());
      return id;
    }
    case 'iterNext': {
      const it = iterators.get(req.iter)!;
      const out: [Uint8Array, Uint8Array][] = [];
      while (out.length < req.n) {
        const r = await it.next();
        if (r.done) break;
        out.push(r.value);
      }
      return out;
    }
    case 'stats': {
      const e = await open().estimate();
      return { pages: e.pages, pageBytes: open().pageBytes, commits: open().commitCount, cachedPages: e.cachedPages, logBytes: e.logBytes, overlayKeys: e.overlayKeys, compactions: e.compactions, usage: e.usage, quota: e.quota } satisfies Stats;
    }
    case 'prefetch':
      await open().prefetchRanges(req.ranges);
      return null;
    case 'compact':
      await open().compact();
      return open().pageCount;
    case 'close':
      await store?.close();
      store = undefined;
      return null;
    case 'deleteDatabase':
      await deleteDB(req.name);
      return null;
    case 'stream':
      // writes batches back to back; the page terminates this worker somewhere in the middle
      for (let i = 0; i < req.count; i++) {
        await open().write(streamBatch(req.seed, i));
        postMessage({ committed: i });
      }
      return req.count;
    case 'shimQuota': {
      // The real DOMException the browser raises, thrown from inside the store's transaction
      // on the n-th put after this call (the earlier ones were issued, and must be rolled back).
      const put = IDBObjectStore.prototype.put;
      let calls = 0;
      IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
        if (++calls === req.failOnCall) {
          IDBObjectStore.prototype.put = put;
          throw new DOMException('shim: quota exceeded', 'QuotaExceededError');
        }
        return put.apply(this, args);
      };
      return null;
    }
    case 'lock':
      lock = await acquireSyncLock(req.db);
      return lock !== null;
    case 'waitLock':
      lock = await waitForSyncLock(req.db);
      return true;
    case 'unlock':
      lock?.release();
      lock = null;
      return null;
    case 'listen':
      channel = new SyncChannel(req.db);
      channel.subscribe((e) => {
        events.push(e);
        eventWaiter?.();
      });
      return null;
    case 'post':
      (channel ??= new SyncChannel(req.db)).post({ type: 'progress', completed: req.completed, total: req.total });
      return null;
    case 'events':
      while (events.length < req.atLeast) await new Promise<void>((r) => (eventWaiter = r));
      return events.slice();
    case 'bench':
      return bench(req);
  }
}

type BenchRequest = Extract<Request, { op: 'bench' }>;

/** 32-byte keys, 64-byte values; written in batches, then point reads. Timed here, in the worker. */
async function bench(req: BenchRequest): Promise<{ writeMs: number; getMs: number[]; halvesMs: [number, number]; found: number }> {
  const r = rng(req.seed);
  const keys = Array.from({ length: req.count }, () => randomBytes(r, 32));
  const values = Array.from({ length: req.count }, () => randomBytes(r, 64));
  const order = keys.map((_, i) => i);
  if (req.sorted) order.sort((a, b) => cmp(keys[a], keys[b]));
  const probes = Array.from({ length: req.gets }, () => keys[Math.floor(r() * req.count)]);
  await deleteDB(req.name);
  const getMs: number[] = [];
  let found = 0;
  let writeMs: number;
  let halves: [number, number] = [0, 0];
  if (req.kind === 'packed') {
    const s = await PackedIdbStore.open(req.name);
    const t = performance.now();
    for (let i = 0; i < req.count; i += req.batch) {
      const ops: BatchOp[] = [];
      for (const j of order.slice(i, i + req.batch)) ops.push({ type: 'put', key: keys[j], value: values[j] });
      await s.write(ops);
    }
    writeMs = performance.now() - t;
    await s.close();
    const cold = await PackedIdbStore.open(req.name); // reads start from an empty cache
    for (const k of probes) {
      const t0 = performance.now();
      if (await cold.get(k)) found++;
      getMs.push(performance.now() - t0);
    }
    halves = halvesOf(getMs);
    await cold.close();
  } else {
    const db = await openDB(req.name, 1, { upgrade: (d) => void d.createObjectStore('kv') });
    const t = performance.now();
    for (let i = 0; i < req.count; i += req.batch) {
      const tx = db.transaction('kv', 'readwrite', { durability: 'relaxed' });
      const os = tx.objectStore('kv');
      for (const j of order.slice(i, i + req.batch)) void os.put(values[j], keys[j]);
      await tx.done;
    }
    writeMs = performance.now() - t;
    for (const k of probes) {
      const t0 = performance.now();
      if (await db.get('kv', k)) found++;
      getMs.push(performance.now() - t0);
    }
    halves = halvesOf(getMs);
    db.close();
  }
  await deleteDB(req.name);
  return { writeMs, getMs, halvesMs: halves, found };
}

/** Summed time of the first and second half of the probes (timers in workers are coarse). */
function halvesOf(ms: number[]): [number, number] {
  const h = ms.length >> 1;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return [sum(ms.slice(0, h)), sum(ms.slice(h))];
}

function cmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

self.onmessage = async (m: MessageEvent<{ id: number } & Request>) => {
  const { id } = m.data;
  let res: Response;
  try {
    res = { id, ok: true, value: await handle(m.data) };
  } catch (err) {
    const e = err as Error & Record<string, unknown>;
    const details: Record<string, unknown> = {};
    for (const k of ['attemptedBytes', 'usage', 'quota']) if (k in e) details[k] = e[k];
    res = { id, ok: false, name: e.name, message: e.message, details };
  }
  postMessage(res);
};
