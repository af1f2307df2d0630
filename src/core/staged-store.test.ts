import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MerkleTrie } from './trie.ts';
import { StagedCommit, StagedReads } from './staged-store.ts';
import { MemoryStore, type BatchOp } from './store.ts';
import { toHex } from './bytes.ts';
import { naiveRoot } from './testing/naive.ts';
import { META_KEY as META } from './node-record.ts';

/** A MemoryStore whose writes, while `hold`, wait until `release()` (or fail with `fail()`). */
class GatedStore extends MemoryStore {
  hold = false;
  gates: { release: () => void; fail: (err: Error) => void }[] = [];
  /** Batches that reached the store while held, and their ops. */
  writes = 0;
  batches: BatchOp[][] = [];

  override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
    if (!this.hold) return super.write(ops);
    this.writes++;
    this.batches.push(ops);
    return new Promise<void>((resolve, reject) => {
      this.gates.push({ release: () => resolve(super.write(ops)), fail: reject });
    });
  }
}

/** Releases each held write as it reaches the store, until every promise in `durable` settled. */
async function releaseAll(store: GatedStore, durable: Promise<void>[]): Promise<void> {
  let settled = false;
  const all = Promise.allSettled(durable).then(() => (settled = true));
  while (!settled) {
    store.gates.shift()?.release();
    await new Promise((r) => setTimeout(r, 0));
  }
  await all;
  await Promise.all(durable);
}

describe('staged commits', () => {
  const kv = (i: number, v: number) => ({ key: Uint8Array.of(i >> 8, i & 255, (i * 37) & 255), value: Uint8Array.of(v, i & 255) });

  it('views made while a write is in flight read the staged state, with a cache too small to hold it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.record({ i: fc.integer({ min: 0, max: 400 }), v: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }) }), { maxLength: 40 }), { minLength: 2, maxLength: 5 }), async (batches) => {
        const store = new GatedStore();
        // a tiny cache: staged node records are evicted at once and must come from the staged ops
        const trie = await MerkleTrie.open(store, { cacheBytes: 1024 });
        const initial = Array.from({ length: 300 }, (_, i) => kv(i, 1));
        const model = new Map(initial.map((c) => [toHex(c.key), c.value]));
        await trie.commit(initial);
        store.hold = true;
        const durable: Promise<void>[] = [];
        for (const batch of batches) {
          // the previous batch's write is still in flight: this view starts on its staged state
          const view = trie.view();
          const changes = batch.map(({ i, v }) => (v === undefined ? { key: kv(i, 0).key, value: undefined } : kv(i, v)));
          await view.apply(changes);
          for (const c of changes) {
            if (c.value === undefined) model.delete(toHex(c.key));
            else model.set(toHex(c.key), c.value);
          }
          expect(toHex(view.root)).toBe(toHex(naiveRoot(model)));
          durable.push(trie.stageView(view).durable);
          // a point read sees the staged value
          const probe = changes[0];
          if (probe) expect((await trie.get(probe.key)) && toHex((await trie.get(probe.key))!)).toBe(model.has(toHex(probe.key)) ? toHex(model.get(toHex(probe.key))!) : undefined);
        }
        // the first write is in flight; the batches staged behind it wait, merged into one
        expect(store.gates.length).toBe(1);
        await releaseAll(store, durable);
        expect(store.writes).toBe(Math.min(batches.length, 2));
        // the store alone, reopened, holds the same state
        const again = await MerkleTrie.open(store);
        expect(toHex(again.root)).toBe(toHex(naiveRoot(model)));
        const listed: string[] = [];
        for await (const e of again.entries()) listed.push(toHex(e.key));
        expect(listed).toEqual([...model.keys()].sort());
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  it('a scan waits for staged writes; a failed write puts the trie back at its state before', async () => {
    const store = new GatedStore();
    const trie = await MerkleTrie.open(store, { cacheBytes: 1 << 20 });
    const model = new Map(Array.from({ length: 200 }, (_, i) => [toHex(kv(i, 1).key), kv(i, 1).value]));
    await trie.commit(Array.from({ length: 200 }, (_, i) => kv(i, 1)));
    store.hold = true;
    // a scan started while a write is staged sees the state after it, not the store before it
    let view = trie.view();
    await view.apply([kv(500, 9)]);
    model.set(toHex(kv(500, 9).key), kv(500, 9).value);
    const first = trie.stageView(view);
    const scanned: string[] = [];
    const scan = (async () => {
      for await (const e of trie.entries()) scanned.push(toHex(e.key));
    })();
    await new Promise((r) => setTimeout(r, 10));
    expect(scanned).toEqual([]);
    store.gates.shift()!.release();
    await first.durable;
    await scan;
    expect(scanned).toEqual([...model.keys()].sort());
    const before = toHex(trie.root);
    expect(before).toBe(toHex(naiveRoot(model)));

    view = trie.view();
    await view.apply([kv(5, 9), kv(501, 9)]);
    const staged = trie.stageView(view);
    expect(toHex(trie.root)).toBe(toHex(staged.root));
    expect(toHex(staged.root)).not.toBe(before);
    expect(await trie.get(kv(501, 9).key)).toEqual(kv(501, 9).value);
    store.gates.shift()!.fail(new Error('quota'));
    await expect(staged.durable).rejects.toThrow('quota');
    expect(toHex(trie.root)).toBe(before);
    expect(await trie.get(kv(501, 9).key)).toBeUndefined();
    store.hold = false;
    const again = trie.view();
    await again.apply([kv(7, 3)]);
    model.set(toHex(kv(7, 3).key), kv(7, 3).value);
    expect(toHex(again.root)).toBe(toHex(naiveRoot(model)));
    expect(toHex(await trie.commitView(again))).toBe(toHex(naiveRoot(model)));
  });
});

describe('staged commits behind a write in flight (one merged store batch)', () => {
  const kv = (i: number, v: number) => ({ key: Uint8Array.of(i >> 8, i & 255, (i * 37) & 255), value: Uint8Array.of(v, i & 255) });

  /** A trie over a held store with 50 keys committed, and `stage(changes)` that stages a view of them. */
  async function held() {
    const store = new GatedStore();
    const trie = await MerkleTrie.open(store);
    await trie.commit(Array.from({ length: 50 }, (_, i) => kv(i, 1)));
    store.hold = true;
    const roots: string[] = [toHex(trie.root)];
    const stage = async (changes: { key: Uint8Array; value: Uint8Array | undefined }[], extra: BatchOp[] = [], handOver = true) => {
      const view = trie.view();
      await view.apply(changes);
      const s = trie.stageView(view, extra, handOver ? { handOver } : undefined);
      roots.push(toHex(s.root));
      return [s.durable] as const; // wrapped: an async function would adopt (wait for) the promise
    };
    return { store, trie, roots, stage };
  }

  it('land in order as one batch: the last op on a key wins, and the store holds every state in turn', async () => {
    const { store, trie, roots, stage } = await held();
    const durable = [(await stage([kv(1, 10)]))[0], (await stage([kv(1, 11), kv(60, 1)]))[0], (await stage([kv(1, 12)]))[0], (await stage([{ key: kv(60, 0).key, value: undefined }]))[0]];
    expect(store.writes).toBe(1); // the first; the other three wait for it
    store.gates.shift()!.release();
    await durable[0];
    expect(toHex((await MerkleTrie.open(store)).root)).toBe(roots[1]);
    await new Promise((r) => setTimeout(r, 0));
    expect(store.writes).toBe(2);
    store.gates.shift()!.release();
    await Promise.all(durable);
    const again = await MerkleTrie.open(store);
    expect(toHex(again.root)).toBe(roots[4]);
    expect(toHex(again.root)).toBe(toHex(trie.root));
    expect(await again.get(kv(1, 12).key)).toEqual(kv(1, 12).value);
    expect(await again.get(kv(60, 1).key)).toBeUndefined();
  });

  it('a failed write fails the commits waiting behind it, unwritten, and the trie goes back to the state before it', async () => {
    const { store, trie, roots, stage } = await held();
    const durable = [(await stage([kv(2, 20)]))[0], (await stage([kv(3, 30)]))[0], (await stage([kv(4, 40)]))[0]];
    store.gates.shift()!.fail(new Error('quota'));
    for (const d of durable) await expect(d).rejects.toThrow('quota');
    expect(store.writes).toBe(1); // the waiting batch never reached the store
    expect(toHex(trie.root)).toBe(roots[0]);
    expect(await trie.get(kv(3, 30).key)).toEqual(kv(3, 1).value);
    // the trie takes commits again, at once
    store.hold = false;
    await trie.commit([kv(5, 50)]);
    const again = await MerkleTrie.open(store);
    expect(toHex(again.root)).toBe(toHex(trie.root));
    expect(await again.get(kv(2, 20).key)).toEqual(kv(2, 1).value);
  });

  it('the merged batch failing after the first write landed puts the trie back at the state the first write made', async () => {
    const { store, trie, roots, stage } = await held();
    const durable = [(await stage([kv(2, 20)]))[0], (await stage([kv(3, 30)]))[0], (await stage([kv(4, 40)]))[0]];
    store.gates.shift()!.release();
    await durable[0];
    await new Promise((r) => setTimeout(r, 0));
    store.gates.shift()!.fail(new Error('quota'));
    await expect(durable[1]).rejects.toThrow('quota');
    await expect(durable[2]).rejects.toThrow('quota');
    expect(toHex(trie.root)).toBe(roots[1]);
    expect(toHex((await MerkleTrie.open(store)).root)).toBe(roots[1]);
  });

  it('at most 8 commits merge into one batch', async () => {
    const { store, stage } = await held();
    const durable: Promise<void>[] = [];
    for (let i = 0; i < 1 + 8 + 3; i++) durable.push((await stage([kv(100 + i, 1)]))[0]);
    await releaseAll(store, durable);
    expect(store.writes).toBe(3);
    // each commit writes its trie meta record once: 1, then 8 merged, then 3
    const metas = store.batches.map((b) => b.filter((op) => toHex(op.key) === toHex(META)).length);
    expect(metas).toEqual([1, 8, 3]);
  });

  it('ops not handed over are copied before they wait: the caller may reuse its arrays', async () => {
    const { store, stage } = await held();
    const [first] = await stage([kv(7, 70)]);
    const extra: BatchOp = { type: 'put', key: Uint8Array.of(0xee, 1), value: Uint8Array.of(1, 2, 3) };
    const [second] = await stage([], [extra], false);
    (extra as { value: Uint8Array }).value.fill(9);
    await releaseAll(store, [first, second]);
    expect(await store.get(Uint8Array.of(0xee, 1))).toEqual(Uint8Array.of(1, 2, 3));
  });
});

describe('StagedReads', () => {
  const b = (...x: number[]) => Uint8Array.from(x);
  const hex = (v: Uint8Array | undefined) => v && toHex(v);

  it('a point read takes the newest staged op for its key (a delete reads as absent), else the store', async () => {
    const store = new MemoryStore();
    await store.write([{ type: 'put', key: b(1), value: b(10) }, { type: 'put', key: b(2), value: b(20) }, { type: 'put', key: b(3), value: b(30) }]);
    const staged = [new StagedCommit([{ type: 'put', key: b(1), value: b(11) }, { type: 'del', key: b(2) }]), new StagedCommit([{ type: 'put', key: b(1), value: b(12) }, { type: 'put', key: b(4), value: b(40) }])];
    const reads = new StagedReads(store, staged);
    const cases: [string, number, string | undefined][] = [
      ['put twice: the newer commit wins', 1, '0c'],
      ['deleted in a staged commit', 2, undefined],
      ['not staged: from the store', 3, '1e'],
      ['only staged', 4, '28'],
      ['nowhere', 5, undefined],
    ];
    for (const [name, k, want] of cases) expect(hex(await reads.get(b(k))), name).toBe(want);
    expect((await reads.getMany([b(1), b(2), b(3), b(4), b(5)])).map(hex)).toEqual(cases.map((c) => c[2]));
  });

  it('scans wait until every staged write has settled (a failed one too), then read the store', async () => {
    const store = new MemoryStore();
    await store.write([{ type: 'put', key: b(1), value: b(10) }]);
    const first = new StagedCommit([{ type: 'put', key: b(2), value: b(20) }]);
    const second = new StagedCommit([{ type: 'put', key: b(3), value: b(30) }]);
    let finishFirst!: () => void;
    let failSecond!: (err: Error) => void;
    first.done = new Promise<void>((r) => (finishFirst = r)).then(() => store.write([{ type: 'put', key: b(2), value: b(20) }]));
    second.done = new Promise<void>((_, reject) => (failSecond = reject));
    const reads = new StagedReads(store, [first, second]);
    let scanned: number[] | undefined;
    const scan = reads.range({ gte: b(0), limit: 10 }).then((r) => (scanned = r.map(([k]) => k[0])));
    let iterated: number[] | undefined;
    const iterate = (async () => {
      const keys: number[] = [];
      for await (const [k] of reads.iterate({ gte: b(0) })) keys.push(k[0]);
      iterated = keys;
    })();
    await Promise.resolve();
    finishFirst();
    await first.done;
    expect(scanned).toBeUndefined();
    expect(iterated).toBeUndefined();
    failSecond(new Error('quota'));
    await Promise.all([scan, iterate]);
    expect(scanned).toEqual([1, 2]);
    expect(iterated).toEqual([1, 2]);
  });

  it('a scan waits only for the staged writes with a key in its bounds', async () => {
    const store = new MemoryStore();
    await store.write([{ type: 'put', key: b(1), value: b(10) }, { type: 'put', key: b(5), value: b(50) }]);
    const pending = new StagedCommit([{ type: 'put', key: b(3), value: b(30) }, { type: 'del', key: b(8) }]);
    let finish!: () => void;
    pending.done = new Promise<void>((r) => (finish = r)).then(() => store.write([{ type: 'put', key: b(3), value: b(30) }, { type: 'del', key: b(8) }]));
    const reads = new StagedReads(store, [pending]);
    const keys = async (o: Parameters<StagedReads['iterate']>[0]) => {
      const out: number[] = [];
      for await (const [k] of reads.iterate(o)) out.push(k[0]);
      return out;
    };
    // no staged key within the bounds: answered while the write is in flight
    const cases: [string, Parameters<StagedReads['iterate']>[0], number[]][] = [
      ['below the staged keys', { lt: b(3) }, [1]],
      ['between them (exclusive bounds)', { gt: b(3), lt: b(8) }, [5]],
      ['above them', { gt: b(8) }, []],
    ];
    for (const [name, o, want] of cases) expect(await keys(o), name).toEqual(want);
    expect((await reads.range({ gte: b(4), lte: b(7), limit: 5 })).map(([k]) => k[0])).toEqual([5]);
    // a staged key within the bounds: the scan waits for the write
    let scanned: number[] | undefined;
    const scan = keys({ gte: b(2), lte: b(3) }).then((r) => (scanned = r));
    await new Promise((r) => setTimeout(r, 0));
    expect(scanned).toBeUndefined();
    finish();
    await scan;
    expect(scanned).toEqual([3]);
  });

  it('with nothing staged every call goes to the store, and writes always do', async () => {
    const store = new MemoryStore();
    const reads = new StagedReads(store, []);
    await reads.write([{ type: 'put', key: b(7), value: b(70) }]);
    expect(hex(await store.get(b(7)))).toBe('46');
    expect(hex(await reads.get(b(7)))).toBe('46');
    expect((await reads.getMany([b(7), b(8)])).map(hex)).toEqual(['46', undefined]);
  });
});
