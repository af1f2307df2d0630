import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { mmrRoots } from '../../core/mmr.ts';
import { LogSyncEngine, type LogSyncAction, type LogSyncConfig, type LogSyncEvent } from './engine.ts';
import { MemoryLogSource } from './memory-source.ts';
import type { LogRequest } from './requests.ts';
import type { LogFetchResponse } from './source.ts';
import { seededRandom } from '../state/testing.ts';

const op = (i: number, salt = 0): Uint8Array => sha256(new TextEncoder().encode(`op ${i} ${salt}`));
const ops = (n: number, salt = 0): Uint8Array[] => Array.from({ length: n }, (_, i) => op(i, salt));

/** A seeded PRNG, so delivery orders are reproducible. */
const rng = seededRandom;

function fetches(actions: LogSyncAction[]): LogRequest[] {
  return actions.flatMap((a) => (a.type === 'fetch' ? [a.request] : []));
}
function ofType<T extends LogSyncAction['type']>(actions: LogSyncAction[], type: T): Extract<LogSyncAction, { type: T }>[] {
  return actions.filter((a): a is Extract<LogSyncAction, { type: T }> => a.type === type);
}

function respond(
  source: MemoryLogSource,
  r: LogRequest,
  edit?: (res: LogFetchResponse) => LogFetchResponse,
): Extract<LogSyncEvent, { type: 'response' }> {
  let res = source.serve(r);
  if (edit) res = edit(res);
  return { type: 'response', id: r.id, ops: res.ops, proof: res.proof, pinned: res.pinned };
}

/**
 * Runs an engine against an honest source, answering one pending request per step, chosen by
 * a seeded PRNG. Checks the engine's promises on the way: applies are contiguous, requests
 * respect the batch size and the outstanding limit.
 */
function drive(engine: LogSyncEngine, source: MemoryLogSource, config: LogSyncConfig, seed: number) {
  const next = rng(seed);
  const pending = new Map<number, LogRequest>();
  const applied: Uint8Array[] = [];
  let expectStart = config.target.lower;
  let all: LogSyncAction[] = [];
  const take = (actions: LogSyncAction[]): void => {
    all = all.concat(actions);
    for (const a of actions) {
      if (a.type === 'fetch') {
        expect(a.request.maxOps).toBeLessThanOrEqual(config.fetchBatchSize);
        pending.set(a.request.id, a.request);
      }
      if (a.type === 'cancel') pending.delete(a.id);
      if (a.type === 'apply') {
        expect(a.start).toBe(expectStart);
        expectStart += a.ops.length;
        applied.push(...a.ops);
        // the frontier after each apply is the MMR's peaks there
        expect(a.peaks.map(toHex)).toEqual(source.peaks(expectStart).map(toHex));
      }
    }
    expect(engine.outstanding.length).toBeLessThanOrEqual(config.maxOutstanding);
  };
  take(engine.start());
  for (let steps = 0; engine.status === 'syncing' && pending.size > 0; steps++) {
    if (steps > 10_000) throw new Error('no progress');
    const ids = [...pending.keys()];
    const id = ids[Math.floor(next() * ids.length)];
    const r = pending.get(id)!;
    pending.delete(id);
    take(engine.step(respond(source, r)));
  }
  return { applied, actions: all };
}

describe('LogSyncEngine', () => {
  it('any delivery order syncs any range to the target root', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 150 }),
        fc.nat(),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(),
        (n, lowerSeed, fetchBatchSize, maxOutstanding, seed) => {
          const log = ops(n);
          const source = new MemoryLogSource(log);
          const lower = lowerSeed % n;
          const config = { target: source.target(lower), fetchBatchSize, maxOutstanding };
          const engine = new LogSyncEngine(config);
          const { applied, actions } = drive(engine, source, config, seed);
          expect(engine.status).toBe('done');
          expect(applied.map(toHex)).toEqual(log.slice(lower).map(toHex));
          const done = ofType(actions, 'done')[0];
          expect(toHex(done.root)).toBe(toHex(mmrRoots(log)[n]));
          expect(ofType(actions, 'targetReached')).toHaveLength(1);
          // Pinned nodes are asked for once, with the first batch at the lower bound.
          const pinnedAsks = fetches(actions).filter((r) => r.withPinned);
          expect(pinnedAsks.map((r) => r.start)).toEqual(lower > 0 ? [lower] : []);
        },
      ),
      { seed: 7, numRuns: 80 },
    );
  });

  it('first batch at a pruned lower bound asks for pinned nodes; later ones do not', () => {
    const source = new MemoryLogSource(ops(40));
    const engine = new LogSyncEngine({ target: source.target(13), fetchBatchSize: 5, maxOutstanding: 3 });
    expect(fetches(engine.start()).map((r) => [r.start, r.maxOps, r.withPinned])).toEqual([
      [13, 5, true],
      [18, 5, false],
      [23, 5, false],
    ]);
  });

  describe('invalid responses are penalised and refetched', () => {
    const source = new MemoryLogSource(ops(30));
    const cases: Record<string, [(res: LogFetchResponse) => LogFetchResponse, string]> = {
      empty_batch: [(res) => ({ ...res, ops: [] }), 'EmptyBatch'],
      too_many_ops: [(res) => ({ ...res, ops: [...res.ops, op(99)] }), 'TooManyOps'],
      ops_not_bytes: [(res) => ({ ...res, ops: ['x' as unknown as Uint8Array] }), 'WrongShape'],
      proof_missing: [(res) => ({ ...res, proof: undefined as never }), 'WrongShape'],
      missing_pinned_nodes: [(res) => ({ ...res, pinned: undefined }), 'MissingPinnedNodes'],
      tampered_op: [(res) => ({ ...res, ops: [op(1000), ...res.ops.slice(1)] }), 'InvalidProof'],
      tampered_proof_digest: [
        (res) => ({ ...res, proof: { digests: res.proof.digests.map((d, i) => (i === res.proof.digests.length - 1 ? op(5) : d)) } }),
        'InvalidProof',
      ],
      extra_proof_digest: [(res) => ({ ...res, proof: { digests: [...res.proof.digests, op(5)] } }), 'InvalidProof'],
      tampered_pinned_node: [(res) => ({ ...res, pinned: res.pinned!.map((d, i) => (i === 0 ? op(7) : d)) }), 'InvalidPinnedNodes'],
      missing_pinned_node: [(res) => ({ ...res, pinned: res.pinned!.slice(1) }), 'InvalidPinnedNodes'],
      shorter_batch_is_fine: [(res) => ({ ...res, ops: res.ops.slice(0, 1), proof: source.serve({ leafCount: 30, start: 11, maxOps: 1, withPinned: true }).proof }), ''],
    };
    for (const [name, [edit, reason]] of Object.entries(cases)) {
      it(name, () => {
        const engine = new LogSyncEngine({ target: source.target(11), fetchBatchSize: 4, maxOutstanding: 2 });
        const boundary = fetches(engine.start())[0];
        expect(boundary.withPinned).toBe(true);
        const actions = engine.step(respond(source, boundary, edit));
        if (reason === '') {
          expect(ofType(actions, 'accept')).toHaveLength(1);
          expect(ofType(actions, 'apply')[0]).toMatchObject({ start: 11 });
          expect(fetches(actions).map((r) => [r.start, r.maxOps])).toEqual([[12, 3]]);
          return;
        }
        const [penalty] = ofType(actions, 'penalise');
        expect(penalty.id).toBe(boundary.id);
        expect(penalty.error.name).toBe('InvalidLogResponse');
        expect(penalty.error.reason).toBe(reason);
        expect(ofType(actions, 'apply')).toHaveLength(0);
        const [refetch] = fetches(actions);
        expect([refetch.start, refetch.maxOps, refetch.withPinned]).toEqual([11, 4, true]);
        expect(engine.status).toBe('syncing');
      });
    }
  });

  it('an invalid response from a source that takes no feedback is terminal', () => {
    const source = new MemoryLogSource(ops(10));
    const engine = new LogSyncEngine({ target: source.target(), fetchBatchSize: 4, maxOutstanding: 2 });
    const [first] = fetches(engine.start());
    const event = respond(source, first, (res) => ({ ...res, ops: [] }));
    const actions = engine.step({ ...event, acceptsFeedback: false });
    expect(ofType(actions, 'penalise')).toHaveLength(1);
    expect(ofType(actions, 'cancel')).toHaveLength(1);
    expect(ofType(actions, 'failed')[0].error.name).toBe('InvalidLogResponse');
    expect(engine.status).toBe('failed');
  });

  it('a range that keeps failing is given up after maxRetries and the sync stalls', () => {
    const source = new MemoryLogSource(ops(10));
    const engine = new LogSyncEngine({ target: source.target(), fetchBatchSize: 10, maxOutstanding: 1, maxRetries: 2 });
    let [r] = fetches(engine.start());
    const cause = new Error('peer went away');
    for (let attempt = 0; attempt < 2; attempt++) {
      const actions = engine.step({ type: 'fetchFailed', id: r.id, error: cause });
      [r] = fetches(actions);
      expect(r.start).toBe(0);
    }
    const actions = engine.step({ type: 'fetchFailed', id: r.id, error: cause });
    const [failed] = ofType(actions, 'failed');
    expect(failed.error.name).toBe('SyncStalled');
    expect((failed.error as Error).cause).toBe(cause);
  });

  it('with updates possible, a stalled range waits for a new target instead of failing', () => {
    const source = new MemoryLogSource(ops(10));
    const engine = new LogSyncEngine({
      target: source.target(0, 8),
      fetchBatchSize: 10,
      maxOutstanding: 1,
      maxRetries: 0,
      acceptsUpdates: true,
    });
    const [r] = fetches(engine.start());
    expect(engine.step({ type: 'fetchFailed', id: r.id, error: new Error('x') })).toEqual([]);
    // A new target is a new chance: the range is asked for again.
    const [again] = fetches(engine.step({ type: 'targetUpdate', target: source.target(0, 10) }));
    expect([again.start, again.leafCount]).toEqual([0, 10]);
    expect(engine.step({ type: 'fetchFailed', id: again.id, error: new Error('y') })).toEqual([]);
    const [failed] = ofType(engine.step({ type: 'updatesClosed' }), 'failed');
    expect(failed.error.name).toBe('SyncStalled');
  });

  it('target update while the boundary request is in flight: reissued for the new root', () => {
    const source = new MemoryLogSource(ops(40));
    const engine = new LogSyncEngine({ target: source.target(8, 30), fetchBatchSize: 4, maxOutstanding: 3 });
    const [boundary, second, third] = fetches(engine.start());
    const update = engine.step({ type: 'targetUpdate', target: source.target(8, 40) });
    // The boundary request is cancelled: its pinned nodes could only be checked against the old root.
    expect(ofType(update, 'cancel').map((a) => a.id)).toEqual([boundary.id]);
    const [reissued] = fetches(update);
    expect([reissued.start, reissued.withPinned, reissued.leafCount]).toEqual([8, true, 40]);
    expect(toHex(reissued.root)).toBe(toHex(source.root(40)));
    // A late answer to the cancelled request changes nothing.
    expect(engine.step(respond(source, boundary))).toEqual([]);
    // The kept requests verify against the root they were issued for.
    for (const r of [second, third]) {
      expect(r.leafCount).toBe(30);
      expect(ofType(engine.step(respond(source, r)), 'accept')).toHaveLength(1);
    }
    const actions = engine.step(respond(source, reissued));
    expect(ofType(actions, 'apply').map((a) => [a.start, a.ops.length])).toEqual([
      [8, 4],
      [12, 4],
      [16, 4],
    ]);
    expect(engine.applied).toBe(20);
  });

  it('a boundary response for a root that is no longer current is dropped, not trusted', () => {
    // The engine cancels such requests itself; this covers a result that races the cancel.
    const source = new MemoryLogSource(ops(20));
    const engine = new LogSyncEngine({ target: source.target(5, 10), fetchBatchSize: 5, maxOutstanding: 1 });
    const [boundary] = fetches(engine.start());
    const [reissued] = fetches(engine.step({ type: 'targetUpdate', target: source.target(5, 20) }));
    const late = engine.step(respond(source, boundary));
    expect(ofType(late, 'apply')).toHaveLength(0);
    expect(ofType(late, 'penalise')).toHaveLength(0);
    expect(ofType(engine.step(respond(source, reissued)), 'apply')).toHaveLength(1);
  });

  it('results whose root was evicted are dropped and refetched', () => {
    const source = new MemoryLogSource(ops(30));
    const engine = new LogSyncEngine({
      target: source.target(0, 10),
      fetchBatchSize: 5,
      maxOutstanding: 2,
      maxRetainedRoots: 0,
    });
    const [, second] = fetches(engine.start());
    const update = engine.step({ type: 'targetUpdate', target: source.target(0, 30) });
    expect(ofType(update, 'cancel')).toHaveLength(0); // both start at or after lower 0
    const dropped = engine.step(respond(source, second));
    expect(ofType(dropped, 'accept')).toHaveLength(0);
    expect(ofType(dropped, 'penalise')).toHaveLength(0);
    const [refetch] = fetches(dropped);
    expect([refetch.start, refetch.leafCount]).toEqual([5, 30]);
  });

  it('retained roots are bounded: the oldest is evicted first', () => {
    const source = new MemoryLogSource(ops(40));
    const engine = new LogSyncEngine({
      target: source.target(0, 10),
      fetchBatchSize: 2,
      maxOutstanding: 1,
      maxRetainedRoots: 1,
    });
    const [r10] = fetches(engine.start());
    engine.step({ type: 'targetUpdate', target: source.target(0, 20) });
    engine.step({ type: 'targetUpdate', target: source.target(0, 30) });
    // r10 was issued for the root at 10, evicted by the root at 20.
    const actions = engine.step(respond(source, r10));
    expect(ofType(actions, 'accept')).toHaveLength(0);
    expect(fetches(actions)[0].leafCount).toBe(30);
  });

  it('a target that does not move forward is rejected and the sync goes on', () => {
    const source = new MemoryLogSource(ops(20));
    const target = source.target(4, 15);
    const engine = new LogSyncEngine({ target, fetchBatchSize: 20, maxOutstanding: 1 });
    const [r] = fetches(engine.start());
    const bad = {
      same_upper: { ...source.target(4, 15), root: source.root(16) },
      lower_shrinks: source.target(3, 20),
      root_unchanged: { ...target, upper: 20 },
    };
    const reasons = Object.values(bad).map((t) => {
      const actions = engine.step({ type: 'targetUpdate', target: t });
      expect(actions).toHaveLength(1);
      return ofType(actions, 'targetRejected')[0].error.reason;
    });
    expect(reasons).toEqual(['UpperNotGrowing', 'LowerShrinks', 'RootUnchanged']);
    const done = engine.step(respond(source, r));
    expect(ofType(done, 'done')[0].target.upper).toBe(15);
  });

  it('a target whose lower bound passes what is applied restarts from new pinned nodes', () => {
    const log = ops(40);
    const source = new MemoryLogSource(log);
    const engine = new LogSyncEngine({ target: source.target(0, 20), fetchBatchSize: 5, maxOutstanding: 2 });
    const [a, b] = fetches(engine.start());
    engine.step(respond(source, a));
    expect(engine.applied).toBe(5);
    const update = engine.step({ type: 'targetUpdate', target: source.target(12, 40) });
    expect(ofType(update, 'reset')).toEqual([{ type: 'reset', lower: 12 }]);
    expect(ofType(update, 'cancel').map((c) => c.id)).toContain(b.id);
    expect(engine.outstanding.every((r) => r.start >= 12 && r.leafCount === 40)).toBe(true);
    expect(engine.outstanding.find((r) => r.start === 12)?.withPinned).toBe(true);
    const source2 = drive2(engine, source);
    expect(source2.map(toHex)).toEqual(log.slice(12).map(toHex));
  });

  it('a target whose lower bound is within what is applied keeps the applied log', () => {
    const log = ops(30);
    const source = new MemoryLogSource(log);
    const engine = new LogSyncEngine({ target: source.target(0, 20), fetchBatchSize: 8, maxOutstanding: 1 });
    const [a] = fetches(engine.start());
    engine.step(respond(source, a));
    const update = engine.step({ type: 'targetUpdate', target: source.target(6, 30) });
    expect(ofType(update, 'reset')).toHaveLength(0);
    // The request at 8 issued for the old root is kept, and the gap after it is not asked yet.
    expect(fetches(update)).toEqual([]);
    expect(engine.outstanding.map((r) => [r.start, r.leafCount, r.withPinned])).toEqual([[8, 20, false]]);
    expect(drive2(engine, source).map(toHex)).toEqual(log.slice(8).map(toHex));
    expect(engine.status).toBe('done');
  });

  it('a log that forks from the applied one ends in RootMismatch', () => {
    const base = ops(10);
    const a = new MemoryLogSource(base);
    // Same first 4 operations, then a different history, longer.
    const b = new MemoryLogSource([...base.slice(0, 4), ...ops(16, 1).slice(4)]);
    const engine = new LogSyncEngine({ target: a.target(0, 10), fetchBatchSize: 8, maxOutstanding: 1 });
    const [r] = fetches(engine.start());
    engine.step(respond(a, r)); // applies 0..7 of log A
    engine.step({ type: 'targetUpdate', target: b.target(0, 16) });
    // Requests issued for A's root are answered by A, the rest by B: each verifies on its own.
    const actions: LogSyncAction[] = [];
    for (let i = 0; i < 10 && engine.status === 'syncing'; i++) {
      const [next] = engine.outstanding;
      actions.push(...engine.step(respond(next.leafCount === 10 ? a : b, next)));
    }
    expect(ofType(actions, 'penalise')).toHaveLength(0);
    const [failed] = ofType(actions, 'failed');
    expect(failed.error.name).toBe('RootMismatch');
    expect(engine.status).toBe('failed');
  });

  it('holding completion reports each target and finishes on request', () => {
    const source = new MemoryLogSource(ops(20));
    const engine = new LogSyncEngine({
      target: source.target(0, 10),
      fetchBatchSize: 10,
      maxOutstanding: 1,
      holdCompletion: true,
      acceptsUpdates: true,
    });
    const [r] = fetches(engine.start());
    const first = engine.step(respond(source, r));
    expect(ofType(first, 'targetReached').map((a) => a.target.upper)).toEqual([10]);
    expect(ofType(first, 'done')).toHaveLength(0);
    expect(engine.status).toBe('atTarget');
    const [r2] = fetches(engine.step({ type: 'targetUpdate', target: source.target(0, 20) }));
    const second = engine.step(respond(source, r2));
    expect(ofType(second, 'targetReached').map((a) => a.target.upper)).toEqual([20]);
    expect(engine.step({ type: 'updatesClosed' })).toEqual([]); // waiting for finish is not a stall
    const done = engine.step({ type: 'finish' });
    expect(ofType(done, 'done')[0].target.upper).toBe(20);
    expect(toHex(ofType(done, 'done')[0].root)).toBe(toHex(source.root(20)));
  });

  it('rejects bad configuration', () => {
    const target = new MemoryLogSource(ops(2)).target();
    expect(() => new LogSyncEngine({ target, fetchBatchSize: 0, maxOutstanding: 1 })).toThrow(
      'expected fetchBatchSize to be a positive integer, got 0',
    );
    expect(() => new LogSyncEngine({ target, fetchBatchSize: 1, maxOutstanding: 0 })).toThrow(RangeError);
    expect(() => new LogSyncEngine({ target: { ...target, lower: 2 }, fetchBatchSize: 1, maxOutstanding: 1 })).toThrow(RangeError);
  });
});

/** Answers the outstanding requests in order until the engine stops; returns what it applied. */
function drive2(engine: LogSyncEngine, source: MemoryLogSource): Uint8Array[] {
  const applied: Uint8Array[] = [];
  for (let i = 0; i < 1000 && engine.status === 'syncing'; i++) {
    const [r] = engine.outstanding.sort((x, y) => x.start - y.start);
    if (!r) break;
    for (const a of engine.step(respond(source, r))) if (a.type === 'apply') applied.push(...a.ops);
  }
  return applied;
}
