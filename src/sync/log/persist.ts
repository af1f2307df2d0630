/**
 * A stored run of the operation log (docs/mmr.md#syncing-a-log), kept in the client's ordered `KVStore`
 * (the packed IndexedDB store in the browser, any store in Node) beside the state:
 *
 * - `'L'`                 → the run's progress: `version u8 | lower u64be | next u64be |
 *                           count u8 | count × 32-byte frontier digest`;
 * - `'L' || u64be(index)` → operation `index`, exactly as verified.
 *
 * The run is operations `[lower, next)`, every one verified against a root signed by the
 * writer; the frontier is the peaks of the MMR over `[0, next)`. Each batch of operations is
 * written with the progress that describes it in ONE `write`, so a crash or reload leaves
 * either both or neither (docs/design.md "Storage in the browser"), and a later fetch continues at
 * `next`: the frontier lets it check that the continuation belongs to the same log (its root
 * must be rebuilt from the stored frontier plus the new operations).
 *
 * The frontier is an {@link MmrFrontier} (core/mmr.ts): the peaks only, so appending a million
 * operations keeps 20 digests, not two million nodes.
 */
import { equalBytes } from '../../core/bytes.ts';
import { errorClass, ProofsyncError } from '../../core/errors.ts';
import { MmrFrontier, popcount, type Digest } from '../../core/mmr.ts';
import type { BatchOp, KVStore } from '../../core/store.ts';

export { MmrFrontier };

const L = 0x4c; // 'L'
const PROGRESS_KEY = Uint8Array.of(L);
const OPS_END = Uint8Array.of(L + 1);
const VERSION = 1;

/** The stored progress record does not decode (a foreign or damaged store). */
export const CorruptLogStore = errorClass(ProofsyncError, 'CorruptLogStore');

/** A stored run: operations `[lower, next)` and the MMR peaks over `[0, next)`. */
export interface StoredLogRun {
  lower: number;
  next: number;
  frontier: Digest[];
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.floor(n / 2 ** 32));
  v.setUint32(4, n >>> 0);
  return out;
}

function readU64(b: Uint8Array, at: number): number {
  const v = new DataView(b.buffer, b.byteOffset + at, 8);
  return v.getUint32(0) * 2 ** 32 + v.getUint32(4);
}

/** The store key of operation `index`. */
export function operationKey(index: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = L;
  k.set(u64be(index), 1);
  return k;
}

export function encodeRun(run: StoredLogRun): Uint8Array {
  const out = new Uint8Array(18 + 32 * run.frontier.length);
  out[0] = VERSION;
  out.set(u64be(run.lower), 1);
  out.set(u64be(run.next), 9);
  out[17] = run.frontier.length;
  run.frontier.forEach((d, i) => out.set(d, 18 + 32 * i));
  return out;
}

export function decodeRun(b: Uint8Array): StoredLogRun {
  if (b.length < 18 || b[0] !== VERSION) throw new CorruptLogStore(`log progress record of ${b.length} bytes, version ${b[0]}, is not version ${VERSION}`);
  const lower = readU64(b, 1);
  const next = readU64(b, 9);
  const count = b[17];
  if (b.length !== 18 + 32 * count || lower > next || !Number.isSafeInteger(next) || count !== popcount(next)) {
    throw new CorruptLogStore(`log progress record [${lower}, ${next}) with ${count} peaks does not decode`);
  }
  const frontier = Array.from({ length: count }, (_, i) => b.slice(18 + 32 * i, 50 + 32 * i));
  return { lower, next, frontier };
}

/**
 * The stored run of one store.
 *
 * @example
 * const log = new LogStore(store);
 * const run = await log.run();              // undefined: nothing stored
 * await log.append(run, 0, ops, frontier);  // ops and progress in one write
 * for await (const [i, op] of log.read(0, 10)) show(i, op);
 */
export class LogStore {
  readonly #store: KVStore;

  constructor(store: KVStore) {
    this.#store = store;
  }

  async run(): Promise<StoredLogRun | undefined> {
    const b = await this.#store.get(PROGRESS_KEY);
    return b === undefined ? undefined : decodeRun(b);
  }

  /**
   * Appends `ops` at `start` to the run that begins at `lower` (a new run when nothing is
   * stored at `start`), with `frontier` already past them. One atomic write.
   */
  async append(lower: number, start: number, ops: readonly Uint8Array[], frontier: MmrFrontier): Promise<void> {
    const next = start + ops.length;
    if (frontier.leafCount !== next) throw new RangeError(`frontier at ${frontier.leafCount}, batch ends at ${next}`);
    const batch: BatchOp[] = ops.map((value, i) => ({ type: 'put', key: operationKey(start + i), value }));
    batch.push({ type: 'put', key: PROGRESS_KEY, value: encodeRun({ lower, next, frontier: frontier.peaks() }) });
    await this.#store.write(batch);
  }

  /** Stored operations `[from, to)` in order, as `[index, bytes]`. */
  async *read(from: number, to: number): AsyncIterable<[number, Uint8Array]> {
    let i = from;
    for await (const [k, v] of this.#store.iterate({ gte: operationKey(from), lt: operationKey(to) })) {
      const index = readU64(k, 1);
      if (index !== i) throw new CorruptLogStore(`stored log run has a gap: found ${index}, expected ${i}`);
      yield [index, v];
      i++;
    }
    if (i !== to) throw new CorruptLogStore(`stored log run ends at ${i}, its progress says ${to}`);
  }

  /** Deletes the run: progress first, so an interrupted clear leaves no run, only garbage. */
  async clear(chunk = 4096): Promise<void> {
    await this.#store.write([{ type: 'del', key: PROGRESS_KEY }]);
    for (;;) {
      const keys: Uint8Array[] = [];
      for await (const [k] of this.#store.iterate({ gt: PROGRESS_KEY, lt: OPS_END, limit: chunk })) keys.push(k);
      if (keys.length === 0) return;
      await this.#store.write(keys.map((key) => ({ type: 'del', key })));
    }
  }
}

/** Whether `a` and `b` are the same list of digests. */
export function samePeaks(a: readonly Digest[], b: readonly Digest[]): boolean {
  return a.length === b.length && a.every((d, i) => equalBytes(d, b[i]));
}
