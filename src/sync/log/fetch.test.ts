import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { encodeDelta, signDelta } from '../../core/delta.ts';
import { MemoryStore } from '../../core/store.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { MemoryLogSource } from './memory-source.ts';
import type { LogFetchRequest, LogFetchResponse, LogSource } from './source.ts';
import { decodeOperation, fetchOperationBatches, LogIndexMismatch, StoredLogMismatch, type FetchOperationsOptions, type LogFetchProgress, type LogTarget } from './fetch.ts';

const op = (i: number, tag = 'a'): Uint8Array => sha256(new TextEncoder().encode(`fetch op ${tag} ${i}`));
const ops = (n: number, tag = 'a'): Uint8Array[] => Array.from({ length: n }, (_, i) => op(i, tag));
const hex = (xs: Uint8Array[]): string[] => xs.map(toHex);

/** An async iterable of targets fed by hand. */
function targets() {
  const items: LogTarget[] = [];
  let wake: (() => void) | undefined;
  return {
    push(t: LogTarget) {
      items.push(t);
      wake?.();
    },
    async *[Symbol.asyncIterator](): AsyncIterator<LogTarget> {
      for (;;) {
        while (items.length) yield items.shift()!;
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
}

const targetOf = (log: MemoryLogSource, size: number, seq = size): LogTarget => ({ root: log.root(size), size, seq });

/** Collects every operation's bytes, and the progress reports. */
async function collect(o: FetchOperationsOptions, stopAfter = Infinity): Promise<{ got: Uint8Array[]; progress: LogFetchProgress[]; indices: number[] }> {
  const got: Uint8Array[] = [];
  const indices: number[] = [];
  const progress: LogFetchProgress[] = [];
  let batches = 0;
  for await (const batch of fetchOperationBatches({ ...o, onProgress: (p) => progress.push(p) })) {
    for (const r of batch) {
      got.push(r.bytes);
      indices.push(r.index);
    }
    if (++batches >= stopAfter) break;
  }
  return { got, progress, indices };
}

/** A source that calls `onFetch` before serving each request. */
function hooked(inner: LogSource, onFetch: (req: LogFetchRequest, n: number) => void): LogSource {
  let n = 0;
  return {
    fetch(req): Promise<LogFetchResponse> {
      onFetch(req, n++);
      return inner.fetch(req);
    },
  };
}

describe('fetchOperationBatches', () => {
  it('open `to`: follows a newer target that arrives during the fetch, then ends', async () => {
    const log = new MemoryLogSource(ops(80));
    const t = targets();
    t.push(targetOf(log, 50));
    const source = hooked(log, (_, n) => n === 0 && t.push(targetOf(log, 80)));
    const { got, indices, progress } = await collect({ source, targets: t, batchSize: 8 });
    expect(hex(got)).toEqual(hex(ops(80)));
    expect(indices).toEqual([...Array(80).keys()]);
    expect(progress.at(-1)).toMatchObject({ next: 80, targetSize: 80, fetched: 80, fromStore: 0 });
  });

  it('fixed `to`: exactly [from, to), nothing asked past `to`', async () => {
    const log = new MemoryLogSource(ops(100));
    const t = targets();
    t.push(targetOf(log, 100));
    const { got } = await collect({ source: log, targets: t, from: 10, to: 37, batchSize: 8 });
    expect(hex(got)).toEqual(hex(ops(100).slice(10, 37)));
    expect(log.requests.every((r) => r.start + r.maxOps <= 37)).toBe(true);
    expect(log.requests.filter((r) => r.withPinned).map((r) => r.start)).toEqual([10]);
  });

  it('`to` beyond the announced size waits for an announcement that reaches it', async () => {
    const log = new MemoryLogSource(ops(60));
    const t = targets();
    t.push(targetOf(log, 30));
    // the first target is reached and held; the next one arrives once every request is out
    const source = hooked(log, (req) => req.start + req.maxOps >= 30 && t.push(targetOf(log, 60)));
    const { got } = await collect({ source, targets: t, to: 45, batchSize: 8 });
    expect(hex(got)).toEqual(hex(ops(45)));
  });

  it('open `to` already at the newest size: ends at once with nothing', async () => {
    const log = new MemoryLogSource(ops(10));
    const t = targets();
    t.push(targetOf(log, 10));
    const { got } = await collect({ source: log, targets: t, from: 10 });
    expect(got).toEqual([]);
    expect(log.requests).toEqual([]);
  });

  for (const from of [0, 13]) {
    it(`persist from ${from}: a stopped fetch resumes from the store, the network continues at its end`, async () => {
      const store = new MemoryStore();
      const log = new MemoryLogSource(ops(70));
      const t1 = targets();
      t1.push(targetOf(log, 70));
      const first = await collect({ source: log, targets: t1, from, store, persist: true, batchSize: 8, maxOutstanding: 1 }, 2);
      expect(hex(first.got)).toEqual(hex(ops(70).slice(from, from + 16)));

      log.append(op(70));
      log.requests.length = 0;
      const t2 = targets();
      t2.push(targetOf(log, 71));
      const second = await collect({ source: log, targets: t2, from, store, persist: true, batchSize: 8 });
      expect(hex(second.got)).toEqual(hex(ops(71).slice(from)));
      const last = second.progress.at(-1)!;
      expect(last.fromStore).toBeGreaterThanOrEqual(16);
      expect(last.fromStore + last.fetched).toBe(71 - from);
      expect(last.storedUpTo).toBe(71);
      expect(Math.min(...log.requests.map((r) => r.start))).toBe(from + last.fromStore); // nothing stored was fetched again
      // everything is stored now: a third fetch reads it all locally
      log.requests.length = 0;
      const t3 = targets();
      t3.push(targetOf(log, 71));
      const third = await collect({ source: log, targets: t3, from: from + 3, store, batchSize: 8 });
      expect(hex(third.got)).toEqual(hex(ops(71).slice(from + 3)));
      expect(log.requests).toEqual([]);
    });
  }

  it('a stored run from another history is StoredLogMismatch, and the store is cleared', async () => {
    const store = new MemoryStore();
    const other = new MemoryLogSource(ops(40, 'other'));
    const t1 = targets();
    t1.push(targetOf(other, 40));
    await collect({ source: other, targets: t1, store, persist: true, batchSize: 8, maxOutstanding: 1 }, 2);
    const log = new MemoryLogSource(ops(40));
    const t2 = targets();
    t2.push(targetOf(log, 40));
    await expect(collect({ source: log, targets: t2, store, persist: true, batchSize: 8 })).rejects.toBeInstanceOf(StoredLogMismatch);
    expect(store.size).toBe(0);
  });
});

describe('decodeOperation', () => {
  const secretKey = sha256(new TextEncoder().encode('writer seed'));
  const delta = (logIndex: number) =>
    encodeDelta(signDelta({ parents: [EMPTY_ROOT], actions: [{ key: Uint8Array.of(1), value: Uint8Array.of(2) }], hlc: { wallMs: 5, counter: 0 }, stateRoot: new Uint8Array(32).fill(7), logIndex }, secretKey));

  it('decodes the delta at its own index', () => {
    const d = decodeOperation({ index: 4, bytes: delta(4) });
    expect(d.index).toBe(4);
    expect(d.actions).toEqual([{ key: Uint8Array.of(1), value: Uint8Array.of(2) }]);
    expect(d.stateRoot).toEqual(new Uint8Array(32).fill(7));
    expect(d.id).toHaveLength(32);
  });

  it('refuses a delta that names another log index', () => {
    expect(() => decodeOperation({ index: 5, bytes: delta(4) })).toThrow(LogIndexMismatch);
  });
});
