/**
 * The write log of the packed IndexedDB store (packed-store.ts, page-writes.ts): small batches of scattered
 * keys (a live delta rewrites ~10 values and ~50 trie nodes spread over the whole key space)
 * are appended as ONE record to the `log` object store, in the same transaction as the `meta`
 * record that names them, instead of rewriting every ~32 KiB page they touch (with
 * `logBytes: 0`, 10 random puts on a 1M-key state rewrite MBs of pages: 65–86 deltas/s, measured;
 * `BENCH_LOG_BYTES=0 BENCH_CHECKPOINT_EVERY=0 npm run bench -- live` runs that case).
 *
 * This module is pure: the record codec, and the in-memory `Overlay` of every logged key's
 * newest operation that reads consult before the pages. Records are numbered by the store's
 * `seq` (the commit that wrote them), so replaying them in key order reproduces the overlay.
 *
 * Record layout (little-endian): u32 count, then per op: u8 kind (1 put, 0 del), u32 key
 * length, key, and for a put u32 value length, value.
 */
import { compareBytes } from '../../core/bytes.ts';
import type { BatchOp } from '../../core/store.ts';
import { StorageCorrupted } from './errors.ts';

/** Encoded size of `ops` as a log record. */
export function logRecordSize(ops: readonly BatchOp[]): number {
  let n = 4;
  for (const op of ops) n += 5 + op.key.length + (op.type === 'put' ? 4 + op.value.length : 0);
  return n;
}

/** Encodes ops (any order; replay applies them in this order) as one log record. */
export function encodeLogRecord(ops: readonly BatchOp[]): Uint8Array {
  const out = new Uint8Array(logRecordSize(ops));
  const view = new DataView(out.buffer);
  view.setUint32(0, ops.length, true);
  let o = 4;
  for (const op of ops) {
    out[o++] = op.type === 'put' ? 1 : 0;
    view.setUint32(o, op.key.length, true);
    out.set(op.key, o + 4);
    o += 4 + op.key.length;
    if (op.type === 'put') {
      view.setUint32(o, op.value.length, true);
      out.set(op.value, o + 4);
      o += 4 + op.value.length;
    }
  }
  return out;
}

/**
 * Walks a log record's ops in order, validating as it goes: `visit` gets each op's kind (1 put,
 * 0 del) and the offsets of its key and value (a del's value is empty) within `b`. Throws
 * `StorageCorrupted` on anything malformed, including trailing bytes after the last op.
 */
function walkLogRecord(b: Uint8Array, visit: (kind: number, key: number, keyEnd: number, value: number, valueEnd: number) => void): void {
  const bad = (why: string) => new StorageCorrupted(`log record: ${why}`);
  if (b.length < 4) throw bad(`${b.length} bytes, need at least 4`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = view.getUint32(0, true);
  let o = 4;
  const length = (): number => {
    if (o + 4 > b.length) throw bad(`truncated at byte ${o}`);
    const len = view.getUint32(o, true);
    o += 4;
    if (o + len > b.length) throw bad(`length ${len} at byte ${o - 4} runs past the end`);
    return len;
  };
  for (let i = 0; i < count; i++) {
    if (o >= b.length) throw bad(`truncated at op ${i} of ${count}`);
    const kind = b[o++];
    if (kind !== 0 && kind !== 1) throw bad(`op ${i}: unknown kind ${kind}`);
    const keyLen = length();
    const key = o;
    o += keyLen;
    let value = o;
    if (kind === 1) {
      const valueLen = length();
      value = o;
      o += valueLen;
    }
    visit(kind, key, key + keyLen, value, o);
  }
  if (o !== b.length) throw bad(`${b.length - o} trailing bytes`);
}

/** Decodes a log record; throws `StorageCorrupted` on anything malformed. Keys and values are views. */
export function decodeLogRecord(b: Uint8Array): BatchOp[] {
  const ops: BatchOp[] = [];
  walkLogRecord(b, (kind, key, keyEnd, value, valueEnd) => {
    ops.push(kind === 1 ? { type: 'put', key: b.subarray(key, keyEnd), value: b.subarray(value, valueEnd) } : { type: 'del', key: b.subarray(key, keyEnd) });
  });
  return ops;
}

/**
 * The last operation on `key` in one log record (a later op on a key wins, as in replay), or
 * undefined when the record does not touch it. Throws `StorageCorrupted` on a malformed record,
 * as `decodeLogRecord` does. A reader without the overlay (store-reader.ts, on the page's main
 * thread) scans records with this: keys are compared in place and only the answer is
 * allocated, so a record of thousands of ops costs no garbage.
 */
export function lastOpOn(b: Uint8Array, key: Uint8Array): BatchOp | undefined {
  let found: { put: boolean; value: number; valueEnd: number } | undefined;
  walkLogRecord(b, (kind, k, kEnd, value, valueEnd) => {
    if (kEnd - k !== key.length) return;
    for (let j = 0; j < key.length; j++) if (b[k + j] !== key[j]) return;
    found = { put: kind === 1, value, valueEnd };
  });
  if (!found) return undefined;
  return found.put ? { type: 'put', key: key.slice(), value: b.slice(found.value, found.valueEnd) } : { type: 'del', key: key.slice() };
}

/** A logged key's newest operation (`value` undefined: deleted) and the record that wrote it. */
export interface OverlayEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
  readonly rec: number;
}

const keyString = (k: Uint8Array): string => String.fromCharCode.apply(null, k as unknown as number[]);

/**
 * The newest logged operation of every key not yet compacted into pages. Entries are replaced,
 * never mutated, and `sorted()` returns an immutable array, so an iteration can hold it as its
 * snapshot while later writes go on.
 */
export class Overlay {
  readonly #map = new Map<string, OverlayEntry>();
  #sorted: OverlayEntry[] | undefined = [];
  #bytes = 0;

  get size(): number {
    return this.#map.size;
  }

  /** Key and value bytes held (an estimate of the memory). */
  get bytes(): number {
    return this.#bytes;
  }

  get(key: Uint8Array): OverlayEntry | undefined {
    return this.#map.get(keyString(key));
  }

  has(key: Uint8Array): boolean {
    return this.#map.has(keyString(key));
  }

  /**
   * The ops (sorted by key, unique) whose key the overlay holds, in order. A small overlay
   * looks its keys up in `ops`, rather than each op in it: a key string per op of every range
   * write was ~2% of a 200k-key browser sync's worker CPU, with a few keys logged.
   */
  held(ops: readonly BatchOp[]): BatchOp[] {
    if (this.#map.size === 0) return [];
    if (this.#map.size * 16 >= ops.length) return ops.filter((op) => this.has(op.key));
    const out: BatchOp[] = [];
    for (const e of this.sorted()) {
      let lo = 0;
      let hi = ops.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareBytes(ops[mid].key, e.key) < 0) lo = mid + 1;
        else hi = mid;
      }
      if (lo < ops.length && compareBytes(ops[lo].key, e.key) === 0) out.push(ops[lo]);
    }
    return out;
  }

  /** Applies one record's ops (in order: a later op on a key wins). Keys and values are kept, not copied. */
  apply(ops: readonly BatchOp[], rec: number): void {
    for (const op of ops) {
      const s = keyString(op.key);
      const old = this.#map.get(s);
      if (old) this.#bytes -= old.key.length + (old.value?.length ?? 0);
      else this.#sorted = undefined;
      const e: OverlayEntry = { key: op.key, value: op.type === 'put' ? op.value : undefined, rec };
      this.#map.set(s, e);
      this.#bytes += e.key.length + (e.value?.length ?? 0);
    }
    if (this.#sorted && ops.length) this.#sorted = undefined;
  }

  /** Forgets entries written by records up to `rec` (they are in the pages now). */
  dropThrough(rec: number): void {
    for (const [s, e] of this.#map) {
      if (e.rec > rec) continue;
      this.#map.delete(s);
      this.#bytes -= e.key.length + (e.value?.length ?? 0);
    }
    this.#sorted = undefined;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
    this.#sorted = [];
  }

  /** Every entry in key order; the array is never changed afterwards. */
  sorted(): readonly OverlayEntry[] {
    if (!this.#sorted) this.#sorted = [...this.#map.values()].sort((a, b) => compareBytes(a.key, b.key));
    return this.#sorted;
  }
}

/** First index in sorted `entries` whose key is >= `key` (`strict`: > `key`). */
export function overlayBound(entries: readonly OverlayEntry[], key: Uint8Array, strict: boolean): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(entries[mid].key, key);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The records from `base` on, not yet compacted into the pages, and the overlay they make.
 * Records are added in `seq` order; a compaction (by any connection) moves `base` past them.
 */
export class LogRecords {
  readonly overlay = new Overlay();
  #base: number;
  /** Sizes of the records from `base` on, in record order. */
  #records: { rec: number; bytes: number }[] = [];
  #bytes = 0;

  constructor(base: number) {
    this.#base = base;
  }

  /** Records below this are in the pages. */
  get base(): number {
    return this.#base;
  }

  /** Encoded bytes of the records held. */
  get bytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#records.length;
  }

  /** Takes record `rec` of `bytes` encoded bytes holding `ops` (kept, not copied). */
  add(ops: readonly BatchOp[], rec: number, bytes: number): void {
    this.overlay.apply(ops, rec);
    this.#records.push({ rec, bytes });
    this.#bytes += bytes;
  }

  /** Takes records as read from the `log` store, in record order; `StorageCorrupted` on a malformed one. */
  replay(recs: readonly number[], records: readonly Uint8Array[]): void {
    for (let i = 0; i < recs.length; i++) this.add(decodeLogRecord(records[i]), recs[i], records[i].length);
  }

  /** Forgets records below `base` (compacted into the pages by some connection). */
  forgetBelow(base: number): void {
    if (base <= this.#base) return;
    this.overlay.dropThrough(base - 1);
    let k = 0;
    while (k < this.#records.length && this.#records[k].rec < base) this.#bytes -= this.#records[k++].bytes;
    this.#records = this.#records.slice(k);
    this.#base = base;
  }
}
