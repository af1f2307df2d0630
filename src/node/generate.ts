/**
 * Deterministic content for tests, demos and benchmarks (`proofsync node --generate` and
 * `--simulate-writes`): N pseudo-random 32-byte keys with 64-byte values from a seed, and a
 * stream of small random batches. The generator is xoshiro128** (Blackman and Vigna), seeded
 * through splitmix32, so the same seed gives the same database on every machine.
 */
import { compareBytes } from '../core/bytes.ts';
import type { KeyChange, KeyValue } from '../core/types.ts';

export const GENERATED_KEY_BYTES = 32;
export const GENERATED_VALUE_BYTES = 64;

/** A seeded stream of 32-bit words and bytes. */
export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const splitmix = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix();
    this.s1 = splitmix();
    this.s2 = splitmix();
    this.s3 = splitmix();
  }

  /** The next 32-bit word. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }

  /** Fills `out` (length a multiple of 4 is fastest). */
  fill(out: Uint8Array): Uint8Array {
    const words = out.length >>> 2;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < words; i++) view.setUint32(i * 4, this.next(), true);
    for (let i = words * 4; i < out.length; i++) out[i] = this.next() & 0xff;
    return out;
  }

  bytes(n: number): Uint8Array {
    return this.fill(new Uint8Array(n));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * `n` seeded key-values, sorted by key and unique (a repeated 32-byte key is astronomically
 * unlikely; one would be dropped). Keys and values are views into two large buffers.
 * `onProgress(done, total)` is called every 100,000 items.
 *
 * @example
 * const kvs = generateKeyValues(1_000_000, 1);
 * await db.bulkLoad(kvs);
 */
export function generateKeyValues(n: number, seed: number, onProgress?: (done: number, total: number) => void): KeyValue[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`expected a non-negative item count, got ${n}`);
  const rnd = new SeededRandom(seed);
  const keys = rnd.bytes(n * GENERATED_KEY_BYTES);
  const values = rnd.bytes(n * GENERATED_VALUE_BYTES);
  const kvs: KeyValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    kvs[i] = {
      key: keys.subarray(i * GENERATED_KEY_BYTES, (i + 1) * GENERATED_KEY_BYTES),
      value: values.subarray(i * GENERATED_VALUE_BYTES, (i + 1) * GENERATED_VALUE_BYTES),
    };
    if (onProgress && (i + 1) % 100_000 === 0) onProgress(i + 1, n);
  }
  kvs.sort((a, b) => compareBytes(a.key, b.key));
  let w = 0;
  for (let i = 0; i < kvs.length; i++) if (w === 0 || compareBytes(kvs[w - 1].key, kvs[i].key) !== 0) kvs[w++] = kvs[i];
  kvs.length = w;
  return kvs;
}

/**
 * Small random batches for `--simulate-writes` and `--generate-log`: 1 to `maxPuts` puts of
 * 64-byte values, and now and then a delete of a key an earlier batch put. Keys are fresh
 * 32-byte keys, or, with `keySpace`, drawn from that many seeded keys (puts then overwrite:
 * the state stays that size however long the history grows).
 */
export class BatchGenerator {
  private readonly rnd: SeededRandom;
  private readonly maxPuts: number;
  private readonly recent: Uint8Array[] = [];
  private readonly keys: Uint8Array | undefined;

  constructor(seed: number, maxPuts = 8, keySpace?: number) {
    this.rnd = new SeededRandom(seed);
    this.maxPuts = maxPuts;
    if (keySpace !== undefined) {
      if (!Number.isSafeInteger(keySpace) || keySpace < 1) throw new RangeError(`expected a positive key space, got ${keySpace}`);
      this.keys = this.rnd.bytes(keySpace * GENERATED_KEY_BYTES);
    }
  }

  private key(): Uint8Array {
    if (!this.keys) return this.rnd.bytes(GENERATED_KEY_BYTES);
    const i = this.rnd.below(this.keys.length / GENERATED_KEY_BYTES);
    return this.keys.subarray(i * GENERATED_KEY_BYTES, (i + 1) * GENERATED_KEY_BYTES);
  }

  next(): KeyChange[] {
    const changes: KeyChange[] = [];
    const puts = 1 + this.rnd.below(this.maxPuts);
    for (let i = 0; i < puts; i++) {
      const key = this.key();
      changes.push({ key, value: this.rnd.bytes(GENERATED_VALUE_BYTES) });
      if (this.recent.length < 64) this.recent.push(key);
      else this.recent[this.rnd.below(64)] = key;
    }
    if (this.recent.length > 8 && this.rnd.below(4) === 0) changes.push({ key: this.recent[this.rnd.below(this.recent.length)], value: undefined });
    return changes;
  }
}
