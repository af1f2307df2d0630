import { describe, expect, it } from 'vitest';
import { compareBytes, equalBytes, toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { MemoryStore, type KVStore } from '../../core/store.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { elidedIndices, NODE_END, NODE_START } from '../../core/node-record.ts';
import { EMPTY_ROOT, type KeyValue } from '../../core/types.ts';
import { InvalidWireType, MessageTooLarge, RootNotFound, TooManyItems, TruncatedInput } from '../../core/errors.ts';
import { VirtualClock } from './clock.ts';
import { syncState, type SyncStateOptions } from './driver.ts';
import type { StateSyncProgress } from './engine.ts';
import { CountingSource, DelayedSource, FlakySource, GatedSource, MemoryStateSource, Mutex, TamperingSource, type Tamper } from './memory-source.ts';
import { loadProgress } from './stored-progress.ts';
import { prefixRange } from './ranges.ts';
import type { StateResponse, StateSource } from './source.ts';
import { PushQueue } from '../push-queue.ts';
import { allEntries, mutate, randomPuts, seededRandom, TargetChannel } from './testing.ts';

// The writer and every source serving from its database take turns (see `Mutex`).
const locks = new WeakMap<MerkleDatabase, Mutex>();
const lockOf = (db: MerkleDatabase): Mutex => {
  let l = locks.get(db);
  if (!l) locks.set(db, (l = new Mutex()));
  return l;
};
const serve = (id: string, db: MerkleDatabase) => new MemoryStateSource(id, db, { lock: lockOf(db) });

async function writer(seed: number, keys: number): Promise<{ db: MerkleDatabase; rnd: () => number }> {
  const rnd = seededRandom(seed);
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.commit(randomPuts(rnd, keys));
  return { db, rnd };
}

async function localEntries(store: MemoryStore): Promise<KeyValue[]> {
  return allEntries(await MerkleTrie.open(store));
}

function sameEntries(a: KeyValue[], b: KeyValue[]): boolean {
  return a.length === b.length && a.every((kv, i) => equalBytes(kv.key, b[i].key) && equalBytes(kv.value, b[i].value));
}

/**
 * Runs a sync while the writer moves the target `moves` times (after every other write the
 * sync makes), and checks it ends at exactly the writer's last root.
 */
async function syncWhileMoving(
  db: MerkleDatabase,
  rnd: () => number,
  sources: StateSource[],
  moves: number,
  extra: Partial<SyncStateOptions> = {},
): Promise<{ store: MemoryStore; last: StateSyncProgress; rejected: number; penalised: string[] }> {
  const store = extra.store instanceof MemoryStore ? extra.store : new MemoryStore();
  const updates = new TargetChannel();
  let writes = 0;
  let moved = 0;
  let moving = false;
  let last: StateSyncProgress | undefined;
  const penalised: string[] = [];
  const move = async () => {
    moving = true;
    const root = await mutate(db, rnd, 12, lockOf(db));
    moved++;
    updates.push(root);
    if (moved === moves) updates.close();
    moving = false;
  };
  if (moves === 0) updates.close();
  const result = await syncState({
    store,
    sources,
    target: db.root,
    targetUpdates: updates,
    concurrency: 3,
    keyLimit: 24,
    clock: new VirtualClock(),
    onPenalise: (peer) => penalised.push(peer),
    onProgress: (p) => {
      last = p;
      if (moving || moved >= moves) return;
      if (p.phase === 'at-target' || (p.inFlight >= 0 && ++writes % 2 === 0)) void move();
    },
    ...extra,
  });
  expect(toHex(result.root)).toBe(toHex(db.root));
  expect(toHex((await MerkleTrie.open(store)).root)).toBe(toHex(db.root));
  expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  expect(moved).toBe(moves);
  return { store, last: last!, rejected: result.progress.proofsRejected, penalised };
}

const fakeKey = (after: Uint8Array, i: number) => {
  const k = new Uint8Array(after.length + 1);
  k.set(after);
  k[after.length] = 0xff - i;
  return k;
};

function rangeTamper(f: (p: Extract<StateResponse, { type: 'range' }>['proof']) => void): Tamper {
  return (r) => {
    if (r.type === 'range') f(r.proof);
    return r;
  };
}

function changeTamper(f: (p: Extract<StateResponse, { type: 'change' }>['proof']) => void): Tamper {
  return (r) => {
    if (r.type === 'change') f(r.proof);
    return r;
  };
}

const everyOther = (t: Tamper): Tamper => (r, call, kind) => (call % 2 === 0 ? t(r, call, kind) : r);

// AvalancheGo's tamper matrix (x/sync sync_test.go), applied by one of two sources.
const RANGE_CASES: { name: string; tamper: Tamper }[] = [
  {
    name: 'too many keys',
    tamper: rangeTamper((p) => {
      const last = p.keyValues.at(-1)?.key ?? new Uint8Array([0x42]);
      for (let i = 0; p.keyValues.length <= 24; i++) p.keyValues.push({ key: fakeKey(last, i), value: new Uint8Array([i]) });
      p.keyValues.sort((a, b) => compareBytes(a.key, b.key));
    }),
  },
  { name: 'first key removed', tamper: rangeTamper((p) => void p.keyValues.shift()) },
  { name: 'middle key removed', tamper: rangeTamper((p) => void p.keyValues.splice(p.keyValues.length >> 1, 1)) },
  {
    name: 'first key removed and end proof replaced',
    tamper: rangeTamper((p) => {
      const last = p.keyValues.at(-1)?.key ?? new Uint8Array([0x42]);
      p.keyValues.shift();
      p.keyValues.push({ key: fakeKey(last, 0), value: new Uint8Array([1]) });
      p.endProof = [{ key: new Uint8Array(0), valueOrHash: undefined, children: new Map() }];
    }),
  },
  {
    name: 'all proof nodes removed',
    tamper: rangeTamper((p) => {
      p.startProof = [];
      p.endProof = [];
    }),
  },
  {
    name: 'end proof replaced by the start proof',
    tamper: rangeTamper((p) => {
      p.endProof = p.startProof.length ? p.startProof : p.endProof.slice(0, 1);
    }),
  },
  {
    name: 'a child id flipped in the end proof',
    tamper: rangeTamper((p) => {
      const n = p.endProof[0];
      const [i, id] = [...(n?.children ?? new Map<number, Uint8Array>())][0] ?? [];
      if (id) n.children.set(i, id.map((b: number) => b ^ 1));
    }),
  },
  {
    name: 'empty proof',
    tamper: rangeTamper((p) => {
      p.keyValues = [];
      p.startProof = [];
      p.endProof = [];
    }),
  },
  {
    name: 'a value changed',
    tamper: rangeTamper((p) => {
      const kv = p.keyValues[0];
      if (kv) kv.value = new Uint8Array([...kv.value, 7]);
    }),
  },
  {
    name: 'answered with a change proof',
    tamper: (r) => (r.type === 'range' ? { type: 'change', proof: { startProof: r.proof.startProof, endProof: r.proof.endProof, keyChanges: r.proof.keyValues } } : r),
  },
];

const CHANGE_CASES: { name: string; tamper: Tamper }[] = [
  {
    name: 'extra key',
    tamper: changeTamper((p) => {
      const last = p.keyChanges.at(-1)?.key ?? new Uint8Array([0x42]);
      p.keyChanges.push({ key: fakeKey(last, 0), value: new Uint8Array([9]) });
    }),
  },
  { name: 'removed key', tamper: changeTamper((p) => void p.keyChanges.splice(p.keyChanges.length >> 1, 1)) },
  { name: 'removed first proof node', tamper: changeTamper((p) => void p.endProof.shift()) },
  {
    name: 'all proof nodes removed',
    tamper: changeTamper((p) => {
      p.startProof = [];
      p.endProof = [];
    }),
  },
  {
    name: 'too many keys',
    tamper: changeTamper((p) => {
      const last = p.keyChanges.at(-1)?.key ?? new Uint8Array([0x42]);
      for (let i = 0; p.keyChanges.length <= 24; i++) p.keyChanges.push({ key: fakeKey(last, i), value: undefined });
      p.keyChanges.sort((a, b) => compareBytes(a.key, b.key));
    }),
  },
  {
    name: 'a delete turned into a put',
    tamper: changeTamper((p) => {
      const c = p.keyChanges.find((x) => x.value === undefined) ?? p.keyChanges[0];
      if (c) c.value = new Uint8Array([5]);
    }),
  },
];

describe('syncState: tamper matrix while the target moves', () => {
  it.each(RANGE_CASES)('range answers: $name (every other call), target moving 6 times', async ({ tamper }) => {
    const { db, rnd } = await writer(11, 300);
    const honest = serve('honest', db);
    const evil = new TamperingSource('evil', serve('evil', db), everyOther(tamper));
    const { rejected, penalised } = await syncWhileMoving(db, rnd, [evil, honest], 6);
    expect(rejected).toBeGreaterThan(0);
    expect(new Set(penalised)).toEqual(new Set(['evil']));
  });

  it.each(CHANGE_CASES)('change answers: $name, catching up while the target moves 6 times', async ({ tamper }) => {
    const { db, rnd } = await writer(12, 300);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('honest', db)], target: db.root, keyLimit: 64, clock: new VirtualClock() });
    await mutate(db, rnd, 40);
    const honest = serve('honest', db);
    const evil = new TamperingSource('evil', serve('evil', db), tamper);
    const counted = new CountingSource(honest);
    const { rejected, penalised } = await syncWhileMoving(db, rnd, [evil, counted], 6, { store });
    expect(rejected).toBeGreaterThan(0);
    expect(new Set(penalised)).toEqual(new Set(['evil']));
    expect(counted.changeRequests).toBeGreaterThan(0);
  });

  it('errors on every other call from every source; target moving 8 times', async () => {
    const { db, rnd } = await writer(13, 300);
    const a = new FlakySource('a', serve('a', db), (c) => c % 2 === 1);
    const b = new FlakySource('b', serve('b', db), (c) => c % 2 === 0);
    const { last } = await syncWhileMoving(db, rnd, [a, b], 8);
    expect(a.failed + b.failed).toBeGreaterThan(0);
    expect(last.failures).toBe(a.failed + b.failed);
    expect(last.proofsRejected).toBe(0);
  });

  it('a flaky source during change-proof catch-up', async () => {
    const { db, rnd } = await writer(14, 300);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    await mutate(db, rnd, 30);
    const flaky = new FlakySource('flaky', serve('flaky', db), (c) => c % 3 !== 2);
    await syncWhileMoving(db, rnd, [flaky], 4, { store });
    expect(flaky.failed).toBeGreaterThan(0);
  });

  it('a lying source among honest ones is banned and the sync completes', async () => {
    const { db, rnd } = await writer(15, 300);
    // The liar serves proofs of another database: internally consistent, wrong root.
    const other = await MerkleDatabase.open(new MemoryStore());
    await other.commit(randomPuts(seededRandom(99), 300));
    const forger = serve('x', other);
    const clock = new VirtualClock();
    const liar: StateSource = {
      id: 'liar',
      rangeProof: (req, o) => forger.rangeProof({ ...req, rootHash: other.root }, o),
      changeProof: (req, o) => forger.rangeProof({ rootHash: other.root, startKey: req.startKey, endKey: req.endKey, keyLimit: req.keyLimit, bytesLimit: req.bytesLimit }, o),
    };
    // honest peers take 20 ms per answer, so time passes and the liar's backoff runs out
    const h1 = new DelayedSource(serve('h1', db), 20, clock);
    const h2 = new DelayedSource(serve('h2', db), 20, clock);
    const banned: string[] = [];
    const { last } = await syncWhileMoving(db, rnd, [liar, h1, h2], 3, {
      clock,
      onPenalise: (peer, _reason, isBanned) => void (isBanned && banned.push(peer)),
    });
    expect(banned).toEqual(['liar']);
    expect(last.peersBanned).toBe(1);
    expect(last.proofsRejected).toBe(3);
    expect(last.peersUsed).toBe(2);
  });

  it('fails with SyncStalled when every source lies', async () => {
    const { db } = await writer(16, 50);
    const evil = new TamperingSource('evil', serve('evil', db), RANGE_CASES[1].tamper);
    const evil2 = new TamperingSource('evil2', serve('evil2', db), RANGE_CASES[2].tamper);
    await expect(syncState({ store: new MemoryStore(), sources: [evil, evil2], target: db.root, keyLimit: 8, clock: new VirtualClock() })).rejects.toMatchObject({
      name: 'SyncStalled',
    });
  });
});

describe('syncState: the store form of node records', () => {
  it('elides leaf children by default (a light client), keeps them in full with elideLeaves: false (a full node)', async () => {
    const { db } = await writer(41, 2_000);
    const elided = async (store: MemoryStore) => {
      let records = 0;
      let leaves = 0;
      for await (const [, raw] of store.iterate({ gte: NODE_START, lt: NODE_END })) {
        records++;
        leaves += elidedIndices(raw).length;
      }
      return { records, leaves };
    };
    const light = new MemoryStore();
    const full = new MemoryStore();
    expect(toHex((await syncState({ store: light, sources: [serve('a', db)], target: db.root })).root)).toBe(toHex(db.root));
    expect(toHex((await syncState({ store: full, sources: [serve('a', db)], target: db.root, elideLeaves: false })).root)).toBe(toHex(db.root));
    const l = await elided(light);
    const f = await elided(full);
    expect(f.records).toBe(l.records);
    expect(f.leaves).toBe(0);
    // most of 2,000 random keys are leaves, each elided from its parent's record
    expect(l.leaves).toBeGreaterThan(1_500);
    expect(sameEntries(await localEntries(full), await localEntries(light))).toBe(true);
  });
});

describe('syncState: resuming and catching up', () => {
  it('a fresh sync on the same store after an abort refetches no completed range', async () => {
    const { db } = await writer(21, 600);
    const store = new MemoryStore();
    const first = new CountingSource(serve('a', db));
    const controller = new AbortController();
    let writes = 0;
    await expect(
      syncState({
        store,
        sources: [first],
        target: db.root,
        keyLimit: 32,
        concurrency: 2,
        signal: controller.signal,
        clock: new VirtualClock(),
        onProgress: () => {
          if (++writes === 6) controller.abort(new Error('stop'));
        },
      }),
    ).rejects.toThrow('stop');
    // What the store says is done, and what is left, checked against the writer.
    const { segments } = await loadProgress(store);
    const all = await allEntries(db);
    const inLeft = (k: Uint8Array) =>
      segments.some((s) => !(s.root && equalBytes(s.root, db.root)) && compareBytes(k, s.start) >= 0 && (!s.end || compareBytes(k, s.end) < 0));
    const covered = (k: Uint8Array) => segments.some((s) => compareBytes(k, s.start) >= 0 && (!s.end || compareBytes(k, s.end) < 0));
    const left = all.filter((kv) => inLeft(kv.key) || !covered(kv.key)).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(all.length);
    const second = new CountingSource(serve('a', db));
    const r = await syncState({ store, sources: [second], target: db.root, keyLimit: 32, concurrency: 2, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(second.keyValues).toBeLessThanOrEqual(left);
    expect(second.rangeRequests).toBeGreaterThan(0);
    // the first run may also have fetched answers still in flight when it stopped (at most one per slot)
    expect(first.keyValues + second.keyValues).toBeLessThanOrEqual(all.length + 2 * 32);
  });

  it('after a restart at an old root, catches up with change proofs carrying only the changes', async () => {
    const { db, rnd } = await writer(22, 1000);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    const before = new Map((await allEntries(db)).map((kv) => [toHex(kv.key), toHex(kv.value)]));
    await mutate(db, rnd, 10);
    const after = new Map((await allEntries(db)).map((kv) => [toHex(kv.key), toHex(kv.value)]));
    let changed = 0;
    for (const k of new Set([...before.keys(), ...after.keys()])) if (before.get(k) !== after.get(k)) changed++;
    const counted = new CountingSource(serve('a', db));
    const r = await syncState({ store, sources: [counted], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(counted.rangeRequests).toBe(0);
    expect(counted.rangeAnswers).toBe(0);
    expect(counted.keyValues).toBe(changed);
    // fewer changes than one answer holds: one request, not one per slot (docs/sync.md#work-items)
    expect(counted.changeRequests).toBe(1);
  });

  it('a store already at the target finishes with no request', async () => {
    const { db } = await writer(23, 100);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    const counted = new CountingSource(serve('a', db));
    await syncState({ store, sources: [counted], target: db.root, clock: new VirtualClock() });
    expect(counted.rangeRequests + counted.changeRequests).toBe(0);
  });

  it('a change request from a root the server no longer has is answered with a range proof, and accepted', async () => {
    const rnd = seededRandom(24);
    const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 2 });
    await db.commit(randomPuts(rnd, 200));
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    for (let i = 0; i < 4; i++) await mutate(db, rnd, 5);
    const counted = new CountingSource(serve('a', db));
    const r = await syncState({ store, sources: [counted], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(counted.changeRequests).toBeGreaterThan(0);
    expect(counted.rangeAnswers).toBe(counted.changeRequests);
  });
});

describe('syncState: range answers are written while the sync goes on', () => {
  it('the request an answer frees goes out before that answer is in the store', async () => {
    const { db } = await writer(41, 600);
    const store = new MemoryStore();
    const counted = new CountingSource(serve('a', db));
    const askedDuringWrite: number[] = [];
    const slow: KVStore = {
      get: (key) => store.get(key),
      iterate: (o) => store.iterate(o),
      write: async (ops) => {
        // a macrotask: every microtask queued before the write ran (a request started then has reached the source)
        await new Promise((r) => setTimeout(r, 0));
        askedDuringWrite.push(counted.rangeRequests);
        return store.write(ops);
      },
    };
    const r = await syncState({ store: slow, sources: [counted], target: db.root, concurrency: 1, keyLimit: 64, requestTimeoutMs: Infinity, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
    // with one request in flight: the first answer's write sees the second request already sent
    // (and the third, when the second answer was handled meanwhile: its scan does not wait)
    expect(counted.rangeRequests).toBeGreaterThan(2);
    expect(askedDuringWrite[0]).toBeGreaterThanOrEqual(2);
  });

  it('answers are handed over to the store (no copy before their turn), for range and change proofs alike', async () => {
    const { db, rnd } = await writer(43, 600);
    const store = new MemoryStore();
    const handedOver: (boolean | undefined)[] = [];
    const recording: KVStore = {
      get: (key) => store.get(key),
      iterate: (o) => store.iterate(o),
      write: (ops, options) => {
        handedOver.push(options?.handOver);
        return store.write(ops);
      },
    };
    await syncState({ store: recording, sources: [serve('a', db)], target: db.root, keyLimit: 64, clock: new VirtualClock() });
    await mutate(db, rnd, 50);
    const r = await syncState({ store: recording, sources: [serve('a', db)], target: db.root, keyLimit: 64, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(handedOver.length).toBeGreaterThan(10);
    expect(handedOver.every((h) => h === true)).toBe(true);
  });

  it('a failed range write fails the sync, and a new sync resumes from the store to the target', async () => {
    const { db } = await writer(42, 600);
    const store = new MemoryStore();
    let batches = 0;
    const failing: KVStore = {
      get: (key) => store.get(key),
      iterate: (o) => store.iterate(o),
      write: async (ops) => {
        if (++batches === 3) throw new Error('disk full');
        return store.write(ops);
      },
    };
    await expect(syncState({ store: failing, sources: [serve('a', db)], target: db.root, concurrency: 2, keyLimit: 64, clock: new VirtualClock() })).rejects.toThrow('disk full');
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  });
});

describe('syncState: several range answers staged while the store writes', () => {
  /** A memory store whose writes wait until released, one by one; `fail` rejects the next one instead. */
  class HeldStore extends MemoryStore {
    held: { release: () => void; fail: (err: Error) => void }[] = [];
    writes = 0;
    hold = true;
    override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
      if (!this.hold) return super.write(ops);
      this.writes++;
      return new Promise((resolve, reject) => this.held.push({ release: () => resolve(super.write(ops)), fail: reject }));
    }
  }
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
  };

  it('answers go on being verified and asked for while the first write is held, and land in fewer batches', async () => {
    const { db } = await writer(44, 600);
    const store = new HeldStore();
    const counted = new CountingSource(serve('a', db));
    const sync = syncState({ store, sources: [counted], target: db.root, concurrency: 1, keyLimit: 32, requestTimeoutMs: Infinity, clock: new VirtualClock() });
    await turns(50);
    // one write in flight (a second batch waits in the trie, merged); four staged, so the
    // requests went on: with one write staged at a time, the third request was the last
    expect(store.writes).toBe(1);
    expect(counted.rangeRequests).toBeGreaterThanOrEqual(5);
    let done = false;
    void sync.finally(() => (done = true)).catch(() => {});
    while (!done) {
      store.held.shift()?.release();
      await turns(1);
    }
    const r = await sync;
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
    expect(store.writes).toBeLessThan(counted.rangeRequests);
  });

  it('a write that fails with answers staged behind it fails the sync with its error (none written after it); a new sync resumes', async () => {
    const { db } = await writer(45, 600);
    const store = new HeldStore();
    const counted = new CountingSource(serve('a', db));
    const sync = syncState({ store, sources: [counted], target: db.root, concurrency: 2, keyLimit: 32, requestTimeoutMs: Infinity, clock: new VirtualClock() });
    sync.catch(() => {});
    await turns(50);
    store.held.shift()!.release();
    await turns(20);
    expect(store.held.length).toBe(1);
    store.held.shift()!.fail(new Error('disk full'));
    await expect(sync).rejects.toThrow('disk full');
    expect(store.held.length).toBe(0);
    expect(store.writes).toBe(2);
    store.hold = false;
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  });
});

describe('syncState: change proofs that arrive together (group commit)', () => {
  /** A memory store that counts its batches. */
  class CountedStore extends MemoryStore {
    writes = 0;
    override async write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
      this.writes++;
      return super.write(ops);
    }
  }

  async function caughtUp(seed: number) {
    const { db, rnd } = await writer(seed, 2000);
    const store = new CountedStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    await mutate(db, rnd, 300);
    store.writes = 0;
    return { db, store };
  }

  it('are verified on one view and written in one batch per group, ending at the target', async () => {
    const { db, store } = await caughtUp(31);
    const counted = new CountingSource(serve('a', db));
    const gated = new GatedSource(counted);
    // no deadlines: the gate's release and the virtual clock's idle jump both wait for an idle loop
    const r = await syncState({ store, sources: [gated], target: db.root, concurrency: 4, keyLimit: 32, requestTimeoutMs: Infinity, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
    expect(counted.changeAnswers).toBeGreaterThan(8);
    // one batch per handover of answers (each holds several), not one per answer
    expect(store.writes).toBeLessThanOrEqual(gated.releases);
    expect(store.writes).toBeLessThan(counted.changeAnswers / 2);
  });

  it('the at-target progress comes only once the store holds the target state (a listener reads it at once)', async () => {
    const { db, store } = await caughtUp(31);
    const seen: string[] = [];
    let reads = Promise.resolve();
    await syncState({
      store,
      sources: [new GatedSource(serve('a', db))],
      target: db.root,
      concurrency: 4,
      keyLimit: 32,
      requestTimeoutMs: Infinity,
      clock: new VirtualClock(),
      onProgress: (p) => {
        if (p.phase !== 'at-target') return;
        // what a client's `synced` listener does: read the store as it is now
        reads = reads.then(async () => void seen.push(toHex((await MerkleTrie.open(store)).root)));
      },
    });
    await reads;
    expect(seen).toEqual([toHex(db.root)]);
  });

  it('an invalid answer inside a group is rejected, the group keeps the valid ones, and the sync ends at the target', async () => {
    const { db, store } = await caughtUp(32);
    // the second answer of the first handover (so the group already holds the first) lies
    const evil = new TamperingSource('a', serve('a', db), (res, call) => (call === 1 ? CHANGE_CASES[0].tamper(res, call, 'change') : res));
    const counted = new CountingSource(evil);
    const penalised: string[] = [];
    const r = await syncState({
      store,
      sources: [new GatedSource(counted)],
      target: db.root,
      concurrency: 4,
      keyLimit: 32,
      requestTimeoutMs: Infinity,
      clock: new VirtualClock(),
      onPenalise: (peer) => penalised.push(peer),
    });
    expect(penalised).toEqual(['a']);
    expect(r.progress.proofsRejected).toBe(1);
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  });

  it('a store write that fails while the next answers are verified fails the sync; a new sync resumes from the store', async () => {
    const { db, store } = await caughtUp(34);
    // the same store, whose second batch fails (the first group's write is then staged under the next)
    let batches = 0;
    const failing: KVStore = {
      get: (key) => store.get(key),
      iterate: (o) => store.iterate(o),
      write: async (ops) => {
        if (++batches === 2) throw new Error('disk full');
        return store.write(ops);
      },
    };
    await expect(
      syncState({ store: failing, sources: [new GatedSource(serve('a', db))], target: db.root, concurrency: 4, keyLimit: 32, requestTimeoutMs: Infinity, clock: new VirtualClock() }),
    ).rejects.toThrow('disk full');
    expect(batches).toBe(2);
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  });

  it('an abort while a group is open leaves its verified answers written and the store resumable', async () => {
    const { db, store } = await caughtUp(33);
    const controller = new AbortController();
    let answers = 0;
    await expect(
      syncState({
        store,
        sources: [new GatedSource(serve('a', db))],
        target: db.root,
        concurrency: 4,
        keyLimit: 32,
        requestTimeoutMs: Infinity, // the gate's release and the virtual clock's idle jump both wait for an idle loop
        signal: controller.signal,
        clock: new VirtualClock(),
        onProgress: (p) => {
          if (p.keyValuesReceived > 0 && ++answers === 2) controller.abort(new Error('stop'));
        },
      }),
    ).rejects.toThrow('stop');
    expect(store.writes).toBeGreaterThan(0);
    const { segments } = await loadProgress(store);
    expect(segments.some((s) => s.root && equalBytes(s.root, db.root))).toBe(true);
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(sameEntries(await localEntries(store), await allEntries(db))).toBe(true);
  });
});

describe('syncState: regressions for upstream pitfalls', () => {
  it('A→B→A: a target returning to the root the store is at completes (no livelock)', async () => {
    const { db, rnd } = await writer(31, 200);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    const a = db.root;
    const entriesA = await allEntries(db);
    const b = await mutate(db, rnd, 20);
    // back to A: restore every key
    const entriesB = await allEntries(db);
    const restore = [
      ...entriesB.filter((kv) => !entriesA.some((x) => equalBytes(x.key, kv.key))).map((kv) => ({ key: kv.key, value: undefined })),
      ...entriesA.map((kv) => ({ key: kv.key, value: kv.value })),
    ];
    expect(toHex(await db.commit(restore))).toBe(toHex(a));
    const updates = new TargetChannel();
    updates.push(a);
    updates.close();
    const counted = new CountingSource(serve('a', db));
    const r = await syncState({ store, sources: [counted], target: b, targetUpdates: updates, concurrency: 2, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(a));
    expect(counted.rangeRequests + counted.changeRequests).toBeLessThan(20);
  });

  it('one-node exclusion end proof: a change proof whose last change deletes a key beside a one-key trie', async () => {
    const db = await MerkleDatabase.open(new MemoryStore());
    await db.commit([
      { key: new Uint8Array([0x10]), value: new Uint8Array([1]) },
      { key: new Uint8Array([0x20, 0x01]), value: new Uint8Array([2]) },
    ]);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, concurrency: 1, clock: new VirtualClock() });
    await db.commit([{ key: new Uint8Array([0x20, 0x01]), value: undefined }]);
    // the end proof of the delete is the lone leaf 10, which is not a prefix of 2001
    const proof = await db.changeProof(db.roots()[1], db.root, { keyLimit: 10 });
    expect(proof.type).toBe('change');
    expect(proof.proof.endProof.map((n) => n.key.length)).toEqual([2]);
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, concurrency: 1, keyLimit: 1, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
  });

  it('syncs to the empty root, deleting every local key', async () => {
    const { db } = await writer(32, 100);
    const store = new MemoryStore();
    await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    await db.commit((await allEntries(db)).map((kv) => ({ key: kv.key, value: undefined })));
    expect(toHex(db.root)).toBe(toHex(EMPTY_ROOT));
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(EMPTY_ROOT));
    expect(await localEntries(store)).toEqual([]);
  });
});

describe('syncState: partial sync', () => {
  it('syncs only the given range and prefix, all equal to the writer, while the target moves', async () => {
    const rnd = seededRandom(41);
    const db = await MerkleDatabase.open(new MemoryStore());
    await db.commit([...randomPuts(rnd, 250), ...randomPuts(rnd, 60, new Uint8Array([0x80])), { key: new Uint8Array([0x81]), value: new Uint8Array([1]) }]);
    const ranges = [{ start: new Uint8Array([0x20]), end: new Uint8Array([0x3f, 0xff]) }, prefixRange(new Uint8Array([0x80]))];
    const inScope = (k: Uint8Array) =>
      (compareBytes(k, ranges[0].start!) >= 0 && compareBytes(k, ranges[0].end!) <= 0) || (compareBytes(k, ranges[1].start!) >= 0 && compareBytes(k, ranges[1].end!) <= 0);
    const updates = new TargetChannel();
    let moves = 0;
    const store = new MemoryStore();
    const r = await syncState({
      store,
      sources: [serve('a', db), serve('b', db)],
      target: db.root,
      ranges,
      targetUpdates: updates,
      keyLimit: 16,
      clock: new VirtualClock(),
      onProgress: (p) => {
        if (p.phase !== 'at-target' || updates.closed) return;
        void mutate(db, rnd, 30, lockOf(db)).then((root) => {
          updates.push(root);
          if (++moves === 3) updates.close();
        });
      },
    });
    expect(moves).toBe(3);
    expect(toHex(r.target)).toBe(toHex(db.root));
    const expected = (await allEntries(db)).filter((kv) => inScope(kv.key));
    const local = await localEntries(store);
    expect(local.length).toBeGreaterThan(50);
    expect(local.every((kv) => inScope(kv.key))).toBe(true);
    expect(sameEntries(local, expected)).toBe(true);
    expect(r.progress.fractionDone).toBe(1);
  });
});

describe('syncState: malformed and oversized answers', () => {
  const cases = [
    { name: 'a length prefix over the limit', error: () => new MessageTooLarge('frame of 2147483648 bytes exceeds the limit of 2097152') },
    { name: 'a proof with too many nodes', error: () => new TooManyItems('100000 proof nodes, at most 2048') },
    { name: 'a wrong-typed answer', error: () => new InvalidWireType('field 1 has wire type 5') },
    { name: 'an answer cut short', error: () => new TruncatedInput('stream ended after 10 of 100 frame bytes') },
  ];
  for (const c of cases) {
    it(`${c.name} (a decode error thrown by the fetch) is an invalid answer: the peer is penalised, then banned, with the reason`, async () => {
      const { db } = await writer(61, 2000);
      let answered = 0;
      const hostile: StateSource = {
        id: 'hostile',
        rangeProof: async () => {
          answered++;
          throw c.error();
        },
        changeProof: async () => {
          answered++;
          throw c.error();
        },
      };
      const events: { peer: string; reason: string; banned: boolean }[] = [];
      const clock = new VirtualClock();
      const r = await syncState({
        store: new MemoryStore(),
        // the honest peer takes 20 ms an answer, so the hostile one comes out of its back-off meanwhile
        sources: [hostile, new DelayedSource(serve('ok', db), 20, clock)],
        target: db.root,
        keyLimit: 16,
        clock,
        onPenalise: (peer, reason, banned) => events.push({ peer, reason: reason.name, banned }),
      });
      expect(toHex(r.root)).toBe(toHex(db.root));
      const name = c.error().name;
      expect(events).toEqual([
        { peer: 'hostile', reason: name, banned: false },
        { peer: 'hostile', reason: name, banned: false },
        { peer: 'hostile', reason: name, banned: true },
      ]);
      // nothing more was taken from it after the ban (its other requests were cancelled)
      expect(answered).toBeLessThanOrEqual(3 + 1);
      expect(r.peers.find((p) => p.id === 'hostile')).toMatchObject({ banned: true, invalid: 3 });
    });
  }

  it('an error the peer answered on purpose (RootNotFound) is a failure, not a fault', async () => {
    const { db } = await writer(62, 300);
    const behind: StateSource = {
      id: 'behind',
      rangeProof: async () => {
        throw new RootNotFound('the peer answered RootNotFound: unknown root', { remote: true });
      },
      changeProof: async () => {
        throw new RootNotFound('the peer answered RootNotFound: unknown root', { remote: true });
      },
    };
    const penalised: string[] = [];
    const r = await syncState({ store: new MemoryStore(), sources: [behind, serve('ok', db)], target: db.root, keyLimit: 16, clock: new VirtualClock(), onPenalise: (p) => penalised.push(p) });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(penalised).toEqual([]);
    expect(r.peers.find((p) => p.id === 'behind')).toMatchObject({ banned: false, invalid: 0 });
    expect(r.peers.find((p) => p.id === 'behind')!.failures).toBeGreaterThan(0);
  });
});

describe('syncState: deadlines and cancellation', () => {
  it('a source that never answers times out (injected clock), ranks slowest, and the work moves to another', async () => {
    const { db } = await writer(51, 200);
    const hang: StateSource = { id: 'hang', rangeProof: () => new Promise(() => {}), changeProof: () => new Promise(() => {}) };
    const clock = new VirtualClock();
    const r = await syncState({ store: new MemoryStore(), sources: [hang, serve('ok', db)], target: db.root, requestTimeoutMs: 5000, clock, hedge: false });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(r.progress.failures).toBeGreaterThan(0);
    expect(clock.now()).toBeGreaterThanOrEqual(5000);
    const h = r.peers.find((p) => p.id === 'hang')!;
    expect(h).toMatchObject({ successes: 0, banned: false });
    // the timeout is a sample of its time, not an unknown latency that ranks as fastest
    expect(h.timeouts).toBeGreaterThan(0);
    expect(h.msPerRequest).toBeGreaterThanOrEqual(5000);
  });

  it('a request to a silent source listed first is hedged to the faster one: no wait for the deadline', async () => {
    const { db } = await writer(53, 400);
    const hang: StateSource = { id: 'hang', rangeProof: () => new Promise(() => {}), changeProof: () => new Promise(() => {}) };
    const clock = new VirtualClock();
    const r = await syncState({ store: new MemoryStore(), sources: [hang, serve('ok', db)], target: db.root, keyLimit: 32, requestTimeoutMs: 30_000, clock });
    expect(toHex(r.root)).toBe(toHex(db.root));
    expect(r.progress.hedges).toBeGreaterThan(0);
    // the sync never waited for a deadline (virtual time: only the scripted latencies pass)
    expect(clock.now()).toBeLessThan(30_000);
    const h = r.peers.find((p) => p.id === 'hang')!;
    expect(h).toMatchObject({ successes: 0, banned: false });
    expect(h.timeouts).toBeGreaterThan(0);
  });

  it('an aborted sync rejects with the reason and leaves a consistent, resumable store', async () => {
    const { db } = await writer(52, 300);
    const store = new MemoryStore();
    const controller = new AbortController();
    let n = 0;
    await expect(
      syncState({
        store,
        sources: [serve('a', db)],
        target: db.root,
        keyLimit: 16,
        signal: controller.signal,
        clock: new VirtualClock(),
        onProgress: () => void (++n === 3 && controller.abort(new Error('user'))),
      }),
    ).rejects.toThrow('user');
    const { segments } = await loadProgress(store);
    // every segment done at the target holds exactly the writer's keys there
    const local = await localEntries(store);
    const remote = await allEntries(db);
    for (const s of segments.filter((x) => x.root && equalBytes(x.root, db.root))) {
      const inS = (kv: KeyValue) => compareBytes(kv.key, s.start) >= 0 && (!s.end || compareBytes(kv.key, s.end) < 0);
      expect(sameEntries(local.filter(inS), remote.filter(inS))).toBe(true);
    }
    const r = await syncState({ store, sources: [serve('a', db)], target: db.root, clock: new VirtualClock() });
    expect(toHex(r.root)).toBe(toHex(db.root));
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { db } = await writer(53, 10);
    const c = new AbortController();
    c.abort(new Error('early'));
    await expect(syncState({ store: new MemoryStore(), sources: [serve('a', db)], target: db.root, signal: c.signal })).rejects.toThrow('early');
  });
});

describe('sources that connect during the sync', () => {
  it('a source added after the start takes work, and the progress segments cover the key space', async () => {
    const { db } = await writer(41, 3000);
    const store = new MemoryStore();
    // the first source fails every request: only the late one can finish the sync
    const dead = new FlakySource('dead', serve('dead-inner', db), () => true);
    const late = new CountingSource(serve('late', db));
    let segments: StateSyncProgress['segments'] = [];
    async function* arrivals() {
      yield late;
    }
    const result = await syncState({
      store,
      sources: [dead],
      sourceUpdates: arrivals(),
      target: db.root,
      keyLimit: 256,
      maxAttempts: 1000,
      onProgress: (p) => (segments = p.segments),
    });
    expect(equalBytes(result.root, db.root)).toBe(true);
    // every key came from the late source (the first one never answered)
    expect(late.keyValues).toBe((await allEntries(db)).length);
    expect(segments.length).toBeGreaterThan(0);
    expect(segments.every((s) => s.state === 'target')).toBe(true);
    expect(segments[0].start ?? new Uint8Array(0)).toEqual(new Uint8Array(0));
    expect(segments[segments.length - 1].end).toBeUndefined();
  });

  it('a source that went away has its unanswered requests re-queued to the others, and the sync completes', async () => {
    const { db } = await writer(43, 3000);
    // answers nothing, ever (no deadline, no hedging): only its departure frees its ranges
    const hung: StateSource = {
      id: 'gone',
      rangeProof: (_req, { signal }) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
      changeProof: (_req, { signal }) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
    };
    const replica = new CountingSource(serve('replica', db));
    const left = new PushQueue<string>();
    let told = false;
    const result = await syncState({
      store: new MemoryStore(),
      sources: [hung, replica],
      sourcesLeft: left,
      target: db.root,
      keyLimit: 256,
      requestTimeoutMs: Infinity,
      hedge: false,
      onProgress: (p) => {
        // once the replica has answered something, the other node goes away
        if (!told && p.keyValuesReceived > 0) {
          told = true;
          left.push('gone');
        }
      },
    });
    left.close();
    expect(equalBytes(result.root, db.root)).toBe(true);
    expect(replica.keyValues).toBe((await allEntries(db)).length);
    expect(result.peers.find((p) => p.id === 'gone')).toMatchObject({ retired: true, banned: false, inFlight: 0, failures: 0 });
    expect(result.progress.failures).toBe(0);
  });
});
