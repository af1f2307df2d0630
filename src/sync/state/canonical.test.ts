import { describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { MemoryStore } from '../../core/store.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { EMPTY_ROOT, type ChangeProofRequest, type KeyChange, type RangeProofRequest } from '../../core/types.ts';
import { syncState } from './driver.ts';
import { StateSyncEngine, type StateSyncAction } from './engine.ts';
import { DelayedSource, MemoryStateSource } from './memory-source.ts';
import { VirtualClock } from './clock.ts';
import { CANONICAL_BYTES_LIMIT, CANONICAL_KEY_LIMIT, CANONICAL_PARTS, canonicalParts, canonicalRangeRequest, requestKey } from './plan.ts';
import { fromInclusive, prefixRange } from './ranges.ts';
import type { StateRequest } from './requests.ts';
import type { StateResponse, StateSource } from './source.ts';
import { allEntries, mutate, randomBytes, randomPuts, seededRandom, TargetChannel } from './testing.ts';

const A = new Uint8Array(32).fill(0xa);

/** Records every range request it passes on, as its `requestKey`. */
class RecordingSource implements StateSource {
  readonly ranges: string[] = [];
  readonly changes: ChangeProofRequest[] = [];
  readonly inner: StateSource;
  readonly id: string;
  constructor(inner: StateSource) {
    this.inner = inner;
    this.id = inner.id;
  }
  rangeProof(request: RangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    this.ranges.push(requestKey(request));
    return this.inner.rangeProof(request, o);
  }
  changeProof(request: ChangeProofRequest, o: { signal?: AbortSignal }): Promise<StateResponse> {
    this.changes.push(request);
    return this.inner.changeProof(request, o);
  }
}

/** A database with one dense part (truncated answers) and keys spread over all the others. */
async function checkpointDb(seed: number): Promise<{ db: MerkleDatabase; rnd: () => number }> {
  const rnd = seededRandom(seed);
  const db = await MerkleDatabase.open(new MemoryStore(), { historySize: 1000 });
  const dense: KeyChange[] = [];
  for (let i = 0; i < 3000; i++) dense.push({ key: Uint8Array.of(0x41, ...randomBytes(rnd, 2, 5)), value: randomBytes(rnd, 0, 40) });
  await db.commit([...dense, ...randomPuts(rnd, 800)]);
  return { db, rnd };
}

const requestsOf = (actions: StateSyncAction[]): StateRequest[] => actions.flatMap((a) => (a.type === 'request' ? [a.request] : []));

describe('the engine at a canonical root', () => {
  it('asks for exactly the plan’s parts with its limits, whatever the concurrency and configured limits', () => {
    const seen: string[][] = [];
    for (const concurrency of [1, 3, 16]) {
      const e = new StateSyncEngine({ target: A, peers: ['p', 'q'], localRoot: EMPTY_ROOT, concurrency, keyLimit: 100, bytesLimit: 5000, canonicalRoot: A });
      const keys: string[] = [];
      let pending = requestsOf(e.start(0));
      while (pending.length) {
        const r = pending.shift()!;
        expect(r.kind).toBe('range');
        if (r.kind !== 'range') return;
        expect(r.canonical).toBe(true);
        expect([r.request.keyLimit, r.request.bytesLimit]).toEqual([CANONICAL_KEY_LIMIT, CANONICAL_BYTES_LIMIT]);
        keys.push(requestKey(r.request));
        pending.push(...requestsOf(e.step({ type: 'response', requestId: r.id, outcome: { valid: true, changes: [], resume: undefined, rootAfter: A, received: 1, answeredWith: 'range' }, elapsedMs: 1, bytes: 1 }, 1)));
      }
      expect(e.status).toBe('done');
      seen.push(keys.sort());
    }
    const plan = canonicalParts().map((p) => requestKey(canonicalRangeRequest(A, p.start, p.end))).sort();
    for (const keys of seen) expect(keys).toEqual(plan);
  });

  it('splits at midpoints as before when the target is not the canonical root', () => {
    const e = new StateSyncEngine({ target: A, peers: ['p'], localRoot: EMPTY_ROOT, concurrency: 4, canonicalRoot: new Uint8Array(32).fill(1) });
    const reqs = requestsOf(e.start(0));
    expect(reqs).toHaveLength(4);
    expect(reqs.every((r) => r.kind === 'range' && r.canonical === undefined)).toBe(true);
  });
});

describe('canonical syncs against a real database', () => {
  it('two fresh clients with different concurrency send the same requests and both reach the root', async () => {
    const { db } = await checkpointDb(5);
    const root = db.root;
    const runs: string[][] = [];
    for (const concurrency of [1, 6]) {
      const clock = new VirtualClock();
      // different latencies per peer, so answers come back in a different order in each run
      const sources = ['a', 'b', 'c'].map((id, i) => new RecordingSource(new DelayedSource(new MemoryStateSource(id, db), 3 + 7 * i * concurrency, clock)));
      const store = new MemoryStore();
      const result = await syncState({ store, sources, target: root, canonicalRoot: root, concurrency, clock });
      expect(toHex(result.root)).toBe(toHex(root));
      // a hedge repeats a request to another peer: the same bytes, so the same cached answer
      runs.push([...new Set(sources.flatMap((s) => s.ranges))].sort());
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[0].length).toBeGreaterThan(CANONICAL_PARTS); // the dense part took more than one answer
  });

  it('a restarted sync resumes within the plan: every request is one a fresh client sends too', async () => {
    const { db } = await checkpointDb(6);
    const root = db.root;
    const fresh = new RecordingSource(new MemoryStateSource('a', db));
    await syncState({ store: new MemoryStore(), sources: [fresh], target: root, canonicalRoot: root, concurrency: 3 });
    const plan = new Set(fresh.ranges);

    const store = new MemoryStore();
    const first = new RecordingSource(new MemoryStateSource('a', db));
    const controller = new AbortController();
    let writes = 0;
    await expect(
      syncState({ store, sources: [first], target: root, canonicalRoot: root, concurrency: 2, signal: controller.signal, onProgress: (p) => void (p.keyValuesReceived > 0 && ++writes === 30 && controller.abort(new Error('stop'))) }),
    ).rejects.toThrow('stop');
    const second = new RecordingSource(new MemoryStateSource('a', db));
    const result = await syncState({ store, sources: [second], target: root, canonicalRoot: root, concurrency: 5 });
    expect(toHex(result.root)).toBe(toHex(root));
    expect(second.ranges.length).toBeGreaterThan(0);
    expect(second.ranges.length).toBeLessThan(plan.size);
    for (const k of second.ranges) expect(plan.has(k)).toBe(true);
    expect(second.changes).toHaveLength(0);
  });

  it('a partial sync at a canonical root asks for the parts cut to its ranges', async () => {
    const { db } = await checkpointDb(7);
    const root = db.root;
    const ranges = [prefixRange(Uint8Array.of(0x41)), prefixRange(Uint8Array.of(0x90))];
    const src = new RecordingSource(new MemoryStateSource('a', db));
    await syncState({ store: new MemoryStore(), sources: [src], target: root, canonicalRoot: root, ranges, concurrency: 4 });
    const first = canonicalParts(ranges.map(fromInclusive)).map((p) => requestKey(canonicalRangeRequest(root, p.start, p.end)));
    for (const k of first) expect(src.ranges).toContain(k);
  });

  it('checkpoint first, then the head by change proofs: ends at the head with local state equal to the writer’s', async () => {
    const { db, rnd } = await checkpointDb(8);
    const checkpoint = db.root;
    await mutate(db, rnd, 100);
    const head = await mutate(db, rnd, 100);
    const updates = new TargetChannel();
    const src = new RecordingSource(new MemoryStateSource('a', db));
    const store = new MemoryStore();
    let pushed = false;
    const result = await syncState({
      store,
      sources: [src],
      target: checkpoint,
      canonicalRoot: checkpoint,
      targetUpdates: updates,
      concurrency: 4,
      onProgress: (p) => {
        // the head is given once the checkpoint is reached, as the client does
        if (p.phase === 'at-target' && !pushed && equalBytes(p.target, checkpoint)) {
          pushed = true;
          updates.push(head);
          updates.close();
        }
      },
    });
    expect(toHex(result.root)).toBe(toHex(head));
    expect(src.changes.length).toBeGreaterThan(0);
    expect(src.changes.every((c) => equalBytes(c.startRootHash, checkpoint) && equalBytes(c.endRootHash, head))).toBe(true);
    const local = await allEntries(await MerkleTrie.open(store));
    const remote = await allEntries(db);
    expect(local.map((kv) => toHex(kv.key) + toHex(kv.value))).toEqual(remote.map((kv) => toHex(kv.key) + toHex(kv.value)));
  });
});
