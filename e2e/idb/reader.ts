/**
 * Scenarios of the page's read-only store reader (src/client/idb/store-reader.ts): the store is
 * written by a packed store in a dedicated worker (worker.ts), as the light client's worker
 * writes it, and read here on the page's main thread, checked against the core's MemoryStore.
 * e2e/idb.test.ts asserts on what these return.
 */
import { toHex } from '../../src/core/bytes.ts';
import { valueKey } from '../../src/core/node-record.ts';
import { MemoryStore, type BatchOp } from '../../src/core/store.ts';
import { StoreReader } from '../../src/client/idb/store-reader.ts';
import { openProofsyncDatabase, PAGE_META_KEY, toBinaryKey } from '../../src/client/idb/schema.ts';
import type { Request, Stats } from './worker-messages.ts';
import { randomBatch, randomBytes, randomKey, rng } from './scenario.ts';

/** The store worker's calls (main.ts's `StoreWorker`, passed in to keep one definition). */
export interface StoreCalls {
  call<T>(req: Request): Promise<T>;
  terminate(): void;
}

const hexOr = (v: Uint8Array | undefined): string | null => (v ? toHex(v) : null);
const nameOf = (err: unknown): string => (err as { name?: string })?.name ?? String(err);

/** A batch of the user's keys as the trie stores them (values under 'v' ++ key), with some trie-node records ('n' ++ ...) beside. */
function storedBatch(r: () => number, ops: BatchOp[]): BatchOp[] {
  const out: BatchOp[] = ops.map((op) => (op.type === 'put' ? { type: 'put', key: valueKey(op.key), value: op.value } : { type: 'del', key: valueKey(op.key) }));
  out.push({ type: 'put', key: new Uint8Array([0x6e, ...randomBytes(r, 4)]), value: randomBytes(r, 40) });
  return out;
}

/**
 * Seeded random batches (puts and deletes; small ones go to the write log, larger ones to the
 * pages, and compactions move the log into the pages); after each, the reader's answer for
 * every key the batch touched and for absent keys equals the model's.
 */
export async function readerAgrees(w: StoreCalls, o: { name: string; seed: number; batches: number }) {
  const r = rng(o.seed);
  const model = new MemoryStore();
  await w.call({ op: 'deleteDatabase', name: o.name });
  // a small log bound: logged batches, compactions and page writes all happen
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: 4096 });
  const reader = await StoreReader.open(o.name);
  const mismatches: string[] = [];
  const touched: Uint8Array[] = [];
  let logged = 0;
  for (let b = 0; b < o.batches; b++) {
    const ops = randomBatch(r, 0.3, b % 5 === 0 ? 60 : 6, 80);
    const stored = storedBatch(r, ops);
    await w.call({ op: 'write', ops: stored });
    model.writeSync(stored);
    const stats = await w.call<Stats>({ op: 'stats' });
    if (stats.overlayKeys > 0) logged++;
    touched.push(...ops.map((op) => op.key));
    const probe = [...ops.map((op) => op.key), touched[Math.floor(r() * touched.length)], randomKey(r)];
    for (const k of probe) {
      const got = hexOr(await reader.get(k));
      const want = hexOr(model.getSync(valueKey(k)));
      if (got !== want) mismatches.push(`batch ${b}, key ${toHex(k)}: reader ${got}, model ${want}`);
    }
  }
  const stats = await w.call<Stats>({ op: 'stats' });
  reader.close();
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  return { mismatches, logged, compactions: stats.compactions, pages: stats.pages };
}

/**
 * One key rewritten by `rounds` commits (each with scattered keys, so most go to the write log,
 * and compactions run) while the page reads it in a loop: every answer is a committed value,
 * and answers never go back to an older commit.
 */
export async function readerDuringCommits(w: StoreCalls, o: { name: string; rounds: number }) {
  const r = rng(11);
  const key = new Uint8Array(32).fill(0x42);
  const u32 = (i: number) => new Uint8Array(new Uint32Array([i]).buffer);
  await w.call({ op: 'deleteDatabase', name: o.name });
  await w.call({ op: 'open', name: o.name, pageBytes: 512, logBytes: 2048 });
  // a state in the pages first
  const base: BatchOp[] = Array.from({ length: 200 }, () => ({ type: 'put', key: randomKey(r), value: randomBytes(r, 24) }));
  await w.call({ op: 'write', ops: storedBatch(r, [...base, { type: 'put', key, value: u32(0) }]) });
  const reader = await StoreReader.open(o.name);
  const seen: (number | null)[] = [];
  let writing = true;
  const reads = (async () => {
    while (writing) {
      const v = await reader.get(key);
      seen.push(v ? new Uint32Array(v.slice().buffer)[0] : null);
    }
  })();
  for (let i = 1; i <= o.rounds; i++) {
    const others: BatchOp[] = Array.from({ length: 4 }, () => ({ type: 'put', key: randomKey(r), value: randomBytes(r, 24) }));
    await w.call({ op: 'write', ops: storedBatch(r, [...others, { type: 'put', key, value: u32(i) }]) });
  }
  writing = false;
  await reads;
  const last = await reader.get(key);
  const stats = await w.call<Stats>({ op: 'stats' });
  reader.close();
  await w.call({ op: 'close' });
  await w.call({ op: 'deleteDatabase', name: o.name });
  const backwards = seen.filter((v, i) => i > 0 && (v === null || seen[i - 1] === null || v < seen[i - 1]!)).length;
  const invalid = seen.filter((v) => v === null || v < 0 || v > o.rounds).length;
  return { reads: seen.length, distinct: new Set(seen).size, backwards, invalid, last: last ? new Uint32Array(last.slice().buffer)[0] : null, compactions: stats.compactions };
}

async function outcome(f: () => Promise<unknown>): Promise<string> {
  try {
    const v = await f();
    return v instanceof Uint8Array ? `value ${toHex(v)}` : v === undefined ? 'undefined' : `returned ${String(v)}`;
  } catch (err) {
    return nameOf(err);
  }
}

const exists = async (name: string): Promise<boolean> => (await indexedDB.databases()).some((d) => d.name === name);
const versionOf = async (name: string): Promise<number | undefined> => (await indexedDB.databases()).find((d) => d.name === name)?.version;

function deleteRaw(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
  });
}

function openRaw(name: string, version: number, upgrade: (db: IDBDatabase) => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, version);
    req.onupgradeneeded = () => upgrade(req.result);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Missing, foreign, older, uninitialised, empty, damaged and deleted stores: what the reader answers for each. */
export async function readerEdgeCases(w: StoreCalls, o: { name: string }) {
  const n = (s: string) => `${o.name}-${s}`;
  const key = new Uint8Array([1, 2, 3]);
  const out: Record<string, string | boolean | number | undefined> = {};
  for (const s of ['missing', 'older', 'foreign', 'uninitialised', 'empty', 'page', 'meta', 'log', 'deleted']) await deleteRaw(n(s));

  out.missing = await outcome(() => StoreReader.open(n('missing')));
  out.missingCreated = await exists(n('missing'));

  (await openRaw(n('older'), 1, (db) => db.createObjectStore('pages'))).close();
  out.older = await outcome(() => StoreReader.open(n('older')));
  out.olderVersionAfter = await versionOf(n('older'));

  (await openRaw(n('foreign'), 2, (db) => db.createObjectStore('things'))).close();
  out.foreign = await outcome(async () => (await StoreReader.open(n('foreign'))).get(key));

  (await openProofsyncDatabase(n('uninitialised'))).close();
  out.uninitialised = await outcome(async () => (await StoreReader.open(n('uninitialised'))).get(key));

  await w.call({ op: 'open', name: n('empty') });
  await w.call({ op: 'close' });
  out.empty = await outcome(async () => (await StoreReader.open(n('empty'))).get(key));

  // damaged records, written behind the store's back
  const damaged = async (s: string, damage: (db: Awaited<ReturnType<typeof openProofsyncDatabase>>) => Promise<unknown>) => {
    await w.call({ op: 'open', name: n(s), logBytes: s === 'log' ? 1 << 20 : 0 });
    await w.call({ op: 'write', ops: [{ type: 'put', key: valueKey(key), value: new Uint8Array([7]) }] });
    await w.call({ op: 'close' });
    const db = await openProofsyncDatabase(n(s));
    await damage(db);
    db.close();
    const reader = await StoreReader.open(n(s));
    try {
      return await outcome(() => reader.get(key));
    } finally {
      reader.close();
    }
  };
  out.page = await damaged('page', async (db) => db.put('pages', new Uint8Array([1, 0, 0, 0, 99, 0, 0, 0, 1, 2]), toBinaryKey(new Uint8Array(0))));
  out.meta = await damaged('meta', async (db) => db.put('meta', { ...(await db.get('meta', PAGE_META_KEY))!, format: 99 }, PAGE_META_KEY));
  out.log = await damaged('log', async (db) => {
    const meta = (await db.get('meta', PAGE_META_KEY))!;
    await db.put('log', new Uint8Array([5, 0, 0, 0, 1]), meta.seq + 1);
  });

  // a deletion (the client's `clear()`) is not blocked by the reader: it lets go, later reads say so
  await w.call({ op: 'open', name: n('deleted') });
  await w.call({ op: 'close' });
  const reader = await StoreReader.open(n('deleted'));
  out.beforeDelete = await outcome(() => reader.get(key));
  await deleteRaw(n('deleted'));
  out.afterDelete = await outcome(() => reader.get(key));

  for (const s of ['missing', 'older', 'foreign', 'uninitialised', 'empty', 'page', 'meta', 'log', 'deleted']) await deleteRaw(n(s));
  return out;
}
