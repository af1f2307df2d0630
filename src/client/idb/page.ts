/**
 * The page format of the packed IndexedDB store: one record holds a sorted run of key-values,
 * because the per-record cost of IndexedDB dominates (docs/design.md "Storage in the browser":
 * 18k one-key puts/s against ~200 MB/s in page-sized records, measured in headless Chromium).
 *
 * Layout (little-endian), `n` entries:
 *
 *   u8  format (1)   u8[3] reserved (0)   u32 n
 *   u32 offsets[2n + 1]      offsets[2i] = start of key i, offsets[2i+1] = start of value i,
 *                            offsets[2n] = end of data; relative to the data section
 *   data                     key 0, value 0, key 1, value 1, ...
 *
 * Keys are strictly increasing byte-wise. A lookup is a binary search over the offsets that
 * compares in place, with no decoding and no allocation.
 */
import { StorageCorrupted } from './errors.ts';

export const PAGE_FORMAT = 1;
const HEADER = 8;

export type Entry = readonly [key: Uint8Array, value: Uint8Array];

/** Encoded size of a page holding entries whose keys and values total `payload` bytes. */
export function pageSize(count: number, payload: number): number {
  return HEADER + 4 * (2 * count + 1) + payload;
}

/** Encoded size of one entry beyond the fixed header: its bytes plus two offsets. */
export function entrySize(key: Uint8Array, value: Uint8Array): number {
  return 8 + key.length + value.length;
}

/** Encodes sorted entries (the caller guarantees strictly increasing keys) as one page. */
export function encodePage(entries: readonly Entry[]): Uint8Array {
  let payload = 0;
  for (const [k, v] of entries) payload += k.length + v.length;
  const n = entries.length;
  const out = new Uint8Array(pageSize(n, payload));
  const view = new DataView(out.buffer);
  out[0] = PAGE_FORMAT;
  view.setUint32(4, n, true);
  const dataStart = HEADER + 4 * (2 * n + 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const [k, v] = entries[i];
    view.setUint32(HEADER + 8 * i, at, true);
    out.set(k, dataStart + at);
    at += k.length;
    view.setUint32(HEADER + 8 * i + 4, at, true);
    out.set(v, dataStart + at);
    at += v.length;
  }
  view.setUint32(HEADER + 8 * n, at, true);
  return out;
}

/** A decoded (validated) page: a view over its bytes with in-place binary search. */
export class Page {
  readonly bytes: Uint8Array;
  readonly count: number;
  private readonly offsets: Uint32Array;
  private readonly data: number;

  /** Validates the header and offsets; throws `StorageCorrupted` on anything inconsistent. */
  constructor(bytes: Uint8Array) {
    if (bytes.length < HEADER + 4) throw new StorageCorrupted(`page of ${bytes.length} bytes is shorter than its header`);
    if (bytes[0] !== PAGE_FORMAT) throw new StorageCorrupted(`unknown page format ${bytes[0]}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = view.getUint32(4, true);
    const data = HEADER + 4 * (2 * n + 1);
    if (n > (bytes.length - HEADER - 4) / 8 || data > bytes.length) {
      throw new StorageCorrupted(`page claims ${n} entries but has ${bytes.length} bytes`);
    }
    const offsets = new Uint32Array(2 * n + 1);
    let prev = 0;
    for (let i = 0; i <= 2 * n; i++) {
      const o = view.getUint32(HEADER + 4 * i, true);
      if (o < prev) throw new StorageCorrupted(`page offset ${i} goes backwards`);
      offsets[i] = prev = o;
    }
    if (data + prev !== bytes.length) throw new StorageCorrupted(`page data ends at ${data + prev}, record has ${bytes.length} bytes`);
    this.bytes = bytes;
    this.count = n;
    this.offsets = offsets;
    this.data = data;
  }

  static empty(): Page {
    return new Page(encodePage([]));
  }

  get byteLength(): number {
    return this.bytes.length;
  }

  /** A view of key `i` (no copy: do not mutate). */
  keyAt(i: number): Uint8Array {
    return this.bytes.subarray(this.data + this.offsets[2 * i], this.data + this.offsets[2 * i + 1]);
  }

  /** A view of value `i` (no copy: do not mutate). */
  valueAt(i: number): Uint8Array {
    return this.bytes.subarray(this.data + this.offsets[2 * i + 1], this.data + this.offsets[2 * i + 2]);
  }

  /** Byte-wise comparison of key `i` with `key`, in place. */
  compareAt(i: number, key: Uint8Array): number {
    const b = this.bytes;
    const start = this.data + this.offsets[2 * i];
    const len = this.offsets[2 * i + 1] - this.offsets[2 * i];
    const n = len < key.length ? len : key.length;
    for (let j = 0; j < n; j++) {
      const d = b[start + j] - key[j];
      if (d !== 0) return d;
    }
    return len - key.length;
  }

  /** The first index whose key is >= `key` (`count` if none). */
  lowerBound(key: Uint8Array): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareAt(mid, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first index whose key is > `key` (`count` if none). */
  upperBound(key: Uint8Array): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareAt(mid, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of `key`, or -1. */
  indexOf(key: Uint8Array): number {
    const i = this.lowerBound(key);
    return i < this.count && this.compareAt(i, key) === 0 ? i : -1;
  }

  /** Every entry as views into this page, in key order. */
  entries(): Entry[] {
    const out: Entry[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = [this.keyAt(i), this.valueAt(i)];
    return out;
  }
}
