import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.ts';
import { InvalidProof } from '../../core/errors.ts';
import { MemoryStore } from '../../core/store.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { initialSegments, StateSyncEngine, type StateSyncAction, type StateSyncConfig } from './engine.ts';
import { loadProgress } from './stored-progress.ts';
import type { StateRequest } from './requests.ts';
import type { ResponseOutcome } from './verify.ts';

const A = new Uint8Array(32).fill(0xa);
const B = new Uint8Array(32).fill(0xb);
const C = new Uint8Array(32).fill(0xc);
const ALL = { start: new Uint8Array(0), end: undefined };

const requests = (actions: StateSyncAction[]): StateRequest[] => actions.flatMap((a) => (a.type === 'request' ? [a.request] : []));
const ofType = <T extends StateSyncAction['type']>(actions: StateSyncAction[], type: T) => actions.filter((a): a is Extract<StateSyncAction, { type: T }> => a.type === type);

const ok = (rootAfter: Uint8Array, resume?: Uint8Array): ResponseOutcome => ({ valid: true, changes: [], resume, rootAfter, received: 1, answeredWith: 'range' });
const bad: ResponseOutcome = { valid: false, error: new InvalidProof('tampered') };

function engine(config: Partial<StateSyncConfig> & { target: Uint8Array }) {
  return new StateSyncEngine({ peers: ['p', 'q'], localRoot: EMPTY_ROOT, concurrency: 2, ...config });
}

describe('StateSyncEngine', () => {
  it('starts with range requests over a split key space and finishes at the target', () => {
    const e = engine({ target: A });
    const reqs = requests(e.start(0));
    expect(reqs.map((r) => r.kind)).toEqual(['range', 'range']);
    expect(new Set(reqs.map((r) => r.peer))).toEqual(new Set(['p', 'q']));
    // each request covers exactly its item; inclusive end = boundary without its 00
    expect(reqs[0].kind === 'range' && toHex(reqs[0].request.endKey!) + '00').toBe(toHex(reqs[0].end!));
    let actions: StateSyncAction[] = [];
    let pending = reqs;
    while (pending.length) {
      const r = pending.shift()!;
      actions = e.step({ type: 'response', requestId: r.id, outcome: ok(A), elapsedMs: 1, bytes: 10 }, 1);
      pending.push(...requests(actions));
    }
    expect(ofType(actions, 'done')).toHaveLength(1);
    expect(e.progress()).toMatchObject({ phase: 'done', fractionDone: 1, peersUsed: 2, rangesDone: 1 });
  });

  it('writes progress ops that load back as the engine’s segments', async () => {
    const e = engine({ target: A });
    const [r] = requests(e.start(0));
    const store = new MemoryStore();
    const w = ofType(e.step({ type: 'response', requestId: r.id, outcome: ok(B, fromHex('1000')), elapsedMs: 1, bytes: 1 }, 0), 'write')[0];
    await store.write(w.progress);
    const loaded = await loadProgress(store);
    expect(toHex(loaded.target!)).toBe(toHex(A));
    expect(loaded.segments.map((s) => [toHex(s.start), s.end && toHex(s.end), s.root && s.root[0]])).toEqual([
      ['', '1000', 0xa],
      ['1000', undefined, undefined],
    ]);
  });

  it('A→B→A: items already at the returning target complete without any request (no livelock)', () => {
    const e = engine({ target: B, stored: { target: A, segments: [{ ...ALL, root: A }] }, localRoot: A, maxRetainedRoots: 1 });
    const reqs = requests(e.start(0));
    expect(reqs.every((r) => r.kind === 'change' && toHex(r.request.startRootHash) === toHex(A))).toBe(true);
    const actions = e.step({ type: 'newTarget', root: A }, 0);
    expect(ofType(actions, 'cancel').map((c) => c.requestId).sort()).toEqual(reqs.map((r) => r.id).sort());
    expect(requests(actions)).toEqual([]);
    expect(ofType(actions, 'done')).toHaveLength(1);
  });

  it('A→B→A with answers for B still in flight: they apply as B and are caught up to A', () => {
    const e = engine({ target: B, stored: { target: A, segments: [{ ...ALL, root: A }] }, localRoot: A });
    const reqs = requests(e.start(0));
    expect(requests(e.step({ type: 'newTarget', root: A }, 0))).toEqual([]);
    const again = requests(e.step({ type: 'response', requestId: reqs[0].id, outcome: ok(C), elapsedMs: 1, bytes: 1 }, 0));
    expect(again).toHaveLength(1);
    expect(again[0].kind === 'change' && [toHex(again[0].request.startRootHash), toHex(again[0].request.endRootHash)]).toEqual([toHex(B), toHex(A)]);
    expect(toHex(again[0].start)).toBe(toHex(reqs[0].start));
  });

  describe('a catch-up (items at an older root) asks for the whole item before it knows how dense the changes are', () => {
    const caughtUp = (resume: string | undefined, received: number): ResponseOutcome => ({ valid: true, changes: [], resume: resume === undefined ? undefined : fromHex(resume), rootAfter: C, received, answeredWith: 'change' });
    // [name, the first answer (resume, changes received), change requests that follow]
    const cases: [string, ResponseOutcome, number][] = [
      ['every change in one answer: done, nothing more to ask', caughtUp(undefined, 1000), 0],
      ['cut short at the key limit at 1/16 of the key space: the rest is split for every slot', caughtUp('1000', 2048), 4],
      ['cut short with the rest sparse (10 changes over half the key space): the rest is one request', caughtUp('80', 10), 1],
    ];
    for (const [name, outcome, following] of cases) {
      it(name, () => {
        const e = engine({ target: B, stored: { target: A, segments: [{ ...ALL, root: A }] }, localRoot: A, concurrency: 4 });
        const first = requests(e.start(0));
        expect(first.map((r) => [r.kind, toHex(r.start), r.end])).toEqual([['change', '', undefined]]);
        const next = requests(e.step({ type: 'response', requestId: first[0].id, outcome, elapsedMs: 1, bytes: 1 }, 1));
        expect(next.map((r) => r.kind)).toEqual(Array(following).fill('change'));
        if (following > 0) expect(toHex(next[0].start)).toBe(toHex(outcome.valid ? outcome.resume! : new Uint8Array()));
      });
    }

    it('a never-fetched range is still split at once (range proofs, no density needed)', () => {
      const e = engine({ target: B, concurrency: 4 });
      expect(requests(e.start(0)).map((r) => r.kind)).toEqual(['range', 'range', 'range', 'range']);
    });
  });

  it('an answer for an old target is applied at the root it was asked for, never as the new target', () => {
    const e = engine({ target: A, concurrency: 1 });
    const [r] = requests(e.start(0));
    e.step({ type: 'newTarget', root: B }, 0);
    const actions = e.step({ type: 'response', requestId: r.id, outcome: ok(C), elapsedMs: 1, bytes: 1 }, 0);
    expect(ofType(actions, 'write')).toHaveLength(1);
    const item = e.items.find((i) => toHex(i.start) === toHex(r.start))!;
    expect(toHex(item.root!)).toBe(toHex(A));
    const next = requests(actions);
    expect(next.map((x) => x.kind)).toEqual(['change']);
    expect(next[0].kind === 'change' && toHex(next[0].request.startRootHash)).toBe(toHex(A));
  });

  it('cancels in-flight requests whose target is no longer retained', () => {
    const e = engine({ target: A, maxRetainedRoots: 2 });
    const first = requests(e.start(0));
    expect(ofType(e.step({ type: 'newTarget', root: B }, 0), 'cancel')).toEqual([]);
    const cancelled = ofType(e.step({ type: 'newTarget', root: C }, 0), 'cancel').map((c) => c.requestId);
    expect(cancelled.sort()).toEqual(first.map((r) => r.id).sort());
  });

  it('penalises invalid answers, bans repeat offenders, and stalls when no peer is left', () => {
    const e = engine({ target: A, peers: ['liar'], banAfter: 2, concurrency: 1 });
    let [r] = requests(e.start(0));
    let actions = e.step({ type: 'response', requestId: r.id, outcome: bad, elapsedMs: 1, bytes: 5 }, 0);
    expect(ofType(actions, 'penalise')).toMatchObject([{ peer: 'liar', banned: false }]);
    expect(ofType(actions, 'wake')).toMatchObject([{ at: 10 }]); // the peer's backoff
    actions = e.step({ type: 'tick' }, 10);
    [r] = requests(actions);
    actions = e.step({ type: 'response', requestId: r.id, outcome: bad, elapsedMs: 1, bytes: 5 }, 10);
    expect(ofType(actions, 'penalise')).toMatchObject([{ peer: 'liar', banned: true }]);
    expect(ofType(actions, 'failed')[0].error).toMatchObject({ name: 'SyncStalled' });
    expect(e.progress()).toMatchObject({ proofsRejected: 2, peersBanned: 1, bytesReceived: 10 });
  });

  it('retries a failed request on another peer', () => {
    const e = engine({ target: A, concurrency: 1 });
    const [r] = requests(e.start(0));
    const [again] = requests(e.step({ type: 'failure', requestId: r.id, error: new Error('reset') }, 0));
    expect(toHex(again.start)).toBe(toHex(r.start));
    expect(again.peer).not.toBe(r.peer);
  });

  it('fails with SyncStalled after maxAttempts failures of one item', () => {
    const e = engine({ target: A, peers: ['p'], concurrency: 1, maxAttempts: 3 });
    let [r] = requests(e.start(0));
    let now = 0;
    for (let i = 0; i < 3; i++) {
      const actions = e.step({ type: 'failure', requestId: r.id, error: new Error('down') }, now);
      if (i === 2) {
        expect(ofType(actions, 'failed')[0].error).toMatchObject({ name: 'SyncStalled' });
        break;
      }
      now = ofType(actions, 'wake')[0].at;
      [r] = requests(e.step({ type: 'tick' }, now));
    }
    expect(e.status).toBe('failed');
  });

  it('raises FinishedWithUnexpectedRoot when a full sync ends elsewhere (the check is live)', () => {
    const e = engine({ target: A, concurrency: 1 });
    let reqs = requests(e.start(0));
    let last: StateSyncAction[] = [];
    while (reqs.length) {
      last = e.step({ type: 'response', requestId: reqs[0].id, outcome: ok(C), elapsedMs: 1, bytes: 1 }, 0);
      reqs = requests(last);
    }
    expect(ofType(last, 'failed')[0].error).toMatchObject({ name: 'FinishedWithUnexpectedRoot' });
  });

  it('a partial sync does not compare roots; items stay inside the scope', () => {
    const scope = [{ start: fromHex('20'), end: fromHex('3000') }];
    const e = engine({ target: A, scope, concurrency: 1 });
    let reqs = requests(e.start(0));
    let last: StateSyncAction[] = [];
    while (reqs.length) {
      for (const r of reqs) expect(r.start >= scope[0].start && r.end !== undefined).toBe(true);
      last = e.step({ type: 'response', requestId: reqs[0].id, outcome: ok(C), elapsedMs: 1, bytes: 1 }, 0);
      reqs = requests(last);
    }
    expect(ofType(last, 'done')).toHaveLength(1);
  });

  it('waits at the target while updates may come, then follows them', () => {
    const e = engine({ target: A, stored: { target: A, segments: [{ ...ALL, root: A }] }, localRoot: A, acceptsUpdates: true });
    expect(ofType(e.start(0), 'progress')[0].progress.phase).toBe('at-target');
    expect(requests(e.step({ type: 'newTarget', root: B }, 0)).length).toBeGreaterThan(0);
  });

  it('syncs to the empty root with local clear requests (no peer is asked)', () => {
    const e = engine({ target: EMPTY_ROOT, stored: { target: A, segments: [{ ...ALL, root: A }] }, localRoot: A });
    const reqs = requests(e.start(0));
    let actions: StateSyncAction[] = [];
    let n = 0;
    while (reqs.length) {
      const r = reqs.shift()!;
      expect([r.kind, r.peer]).toEqual(['clear', undefined]);
      actions = e.step({ type: 'response', requestId: r.id, outcome: ok(EMPTY_ROOT), elapsedMs: 0, bytes: 0 }, 0);
      reqs.push(...requests(actions));
      n++;
    }
    expect(n).toBeGreaterThan(0);
    expect(ofType(actions, 'done')).toHaveLength(1);
  });

  it('initialSegments: stored progress cut to the scope, gaps at the local root', () => {
    const segs = initialSegments(
      [{ start: fromHex('10'), end: fromHex('5000') }],
      [
        { start: new Uint8Array(0), end: fromHex('2000'), root: A },
        { start: fromHex('3000'), end: undefined, root: B },
      ],
      C,
    );
    expect(segs.map((s) => [toHex(s.start), s.end && toHex(s.end), s.root![0]])).toEqual([
      ['10', '2000', 0xa],
      ['2000', '3000', 0xc],
      ['3000', '5000', 0xb],
    ]);
  });

  it('rejects bad configuration with exact messages', () => {
    expect(() => engine({ target: new Uint8Array(31) })).toThrow('expected 32-byte target root, got 31');
    expect(() => engine({ target: A, concurrency: 0 })).toThrow('expected concurrency to be a positive integer, got 0');
  });

  it('abort cancels everything in flight', () => {
    const e = engine({ target: A });
    const reqs = requests(e.start(0));
    const actions = e.step({ type: 'abort', reason: new Error('bye') }, 0);
    expect(ofType(actions, 'cancel')).toHaveLength(reqs.length);
    expect(ofType(actions, 'failed')[0].error).toMatchObject({ message: 'bye' });
  });
});

describe('StateSyncEngine among slow and hostile peers', () => {
  it('hedges a request left unanswered by the slow peer to the fast one; the first valid answer wins, the other is cancelled', () => {
    const e = engine({ target: A, peers: ['silent', 'fast'], concurrency: 2 });
    const first = requests(e.start(0));
    const toSilent = first.find((r) => r.peer === 'silent')!;
    const toFast = first.find((r) => r.peer === 'fast')!;
    // the fast peer answers in 100 ms with part of its item; its next request goes out
    const a1 = e.step({ type: 'response', requestId: toFast.id, outcome: ok(A), elapsedMs: 100, bytes: 10 }, 100);
    const wake = ofType(a1, 'wake').map((w) => w.at);
    expect(wake).toContain(200); // the silent request is due for a hedge at 2 x 100 ms
    const a2 = e.step({ type: 'tick' }, 200);
    const hedge = requests(a2).find((r) => r.peer === 'fast' && r.start === toSilent.start)!;
    expect(hedge).toBeDefined();
    expect(hedge.root).toEqual(toSilent.root);
    expect(e.progress().hedges).toBe(1);
    const a3 = e.step({ type: 'response', requestId: hedge.id, outcome: ok(C), elapsedMs: 50, bytes: 10 }, 250);
    expect(ofType(a3, 'cancel').map((c) => c.requestId)).toEqual([toSilent.id]);
    expect(ofType(a3, 'write')).toHaveLength(1);
    const silent = e.peers.find((p) => p.id === 'silent')!;
    expect(silent).toMatchObject({ inFlight: 0, timeouts: 1, msPerRequest: 250 });
    expect(silent.backoffUntil).toBeGreaterThanOrEqual(500);
    // the late answer of the cancelled request is not applied
    expect(e.step({ type: 'response', requestId: toSilent.id, outcome: ok(C), elapsedMs: 900, bytes: 10 }, 900)).toEqual([]);
  });

  it('a hedged request that fails leaves the item with its twin (no retry counted, nothing requeued twice)', () => {
    const e = engine({ target: A, peers: ['silent', 'fast'], concurrency: 2 });
    const first = requests(e.start(0));
    const toSilent = first.find((r) => r.peer === 'silent')!;
    const toFast = first.find((r) => r.peer === 'fast')!;
    e.step({ type: 'response', requestId: toFast.id, outcome: ok(A), elapsedMs: 100, bytes: 10 }, 100);
    const hedge = requests(e.step({ type: 'tick' }, 200)).find((r) => r.start === toSilent.start)!;
    // the silent peer times out first: the hedge still holds the item
    const a = e.step({ type: 'failure', requestId: toSilent.id, error: new Error('timeout'), elapsedMs: 30_000, timedOut: true }, 30_000);
    expect(requests(a).some((r) => r.start === toSilent.start)).toBe(false);
    expect(e.items.find((i) => i.start === toSilent.start)).toMatchObject({ attempts: 0 });
    const won = e.step({ type: 'response', requestId: hedge.id, outcome: ok(A), elapsedMs: 50, bytes: 10 }, 30_001);
    expect(ofType(won, 'write')).toHaveLength(1);
    expect(e.items.find((i) => i.start === toSilent.start)).toMatchObject({ root: A, requestId: undefined });
    expect(e.peers.find((p) => p.id === 'silent')).toMatchObject({ timeouts: 1, msPerRequest: 30_000 });
  });

  it('the last request, to a silent peer, is hedged again after its hedge failed (once the fast peer is out of back-off), not left to its deadline', () => {
    const e = engine({ target: A, peers: ['silent', 'fast'], concurrency: 2 });
    let pending = requests(e.start(0));
    const toSilent = pending.find((r) => r.peer === 'silent')!;
    // the fast peer answers everything else: only the silent request is left
    let now = 0;
    let actions: StateSyncAction[] = [];
    while (pending.some((r) => r.peer === 'fast')) {
      const r = pending.find((q) => q.peer === 'fast')!;
      now += 10;
      actions = e.step({ type: 'response', requestId: r.id, outcome: ok(A), elapsedMs: 10, bytes: 10 }, now);
      pending = [...pending.filter((q) => q !== r), ...requests(actions)];
    }
    expect(e.peers.find((p) => p.id === 'fast')!.inFlight).toBe(0);
    // the hedge goes to the fast peer at its due time, and fails
    let hedge: StateRequest | undefined;
    for (let i = 0; i < 20 && !hedge; i++) {
      const wakes = ofType(actions, 'wake').map((w) => w.at);
      now = wakes.length ? Math.max(now + 1, Math.min(...wakes)) : now + 50;
      actions = e.step({ type: 'tick' }, now);
      hedge = requests(actions).find((r) => r.start === toSilent.start && r.peer === 'fast');
    }
    expect(hedge).toBeDefined();
    actions = e.step({ type: 'failure', requestId: hedge!.id, error: new Error('stream reset'), elapsedMs: 5 }, now + 5);
    now += 5;
    // the engine wakes itself (no answer is due from anyone but the silent peer) and hedges again
    let again: StateRequest | undefined;
    for (let i = 0; i < 20 && !again; i++) {
      const wakes = ofType(actions, 'wake').map((w) => w.at);
      expect(wakes.length, `step ${i} at ${now} set no wake`).toBeGreaterThan(0);
      now = Math.max(now + 1, Math.min(...wakes));
      expect(now).toBeLessThan(10_000);
      actions = e.step({ type: 'tick' }, now);
      again = requests(actions).find((r) => r.start === toSilent.start && r.peer === 'fast');
    }
    expect(again).toBeDefined();
  });

  it('a failure carries its elapsed time into the peer record, even for a peer never measured', () => {
    const e = engine({ target: A, peers: ['silent', 'other'], concurrency: 1 });
    const [r] = requests(e.start(0));
    expect(r.peer).toBe('silent');
    const next = requests(e.step({ type: 'failure', requestId: r.id, error: new Error('timeout'), elapsedMs: 30_000, timedOut: true }, 30_000));
    const silent = e.peers.find((p) => p.id === 'silent')!;
    expect(silent).toMatchObject({ msPerRequest: 30_000, timeouts: 1, failures: 1 });
    expect(silent.backoffUntil).toBeGreaterThanOrEqual(60_000);
    expect(next.map((q) => q.peer)).toEqual(['other']);
  });

  it('a peer that does not serve the protocol leaves the sources at once: no back-off loop, no attempt charged to the range', () => {
    const e = engine({ target: A, peers: ['gossip-only', 'server'], concurrency: 1 });
    const [r] = requests(e.start(0));
    expect(r.peer).toBe('gossip-only');
    const refusal = Object.assign(new Error('Protocol selection failed - could not negotiate /proofsync/1/range'), { name: 'UnsupportedProtocolError' });
    const next = requests(e.step({ type: 'failure', requestId: r.id, error: refusal, elapsedMs: 19, notServed: true }, 19));
    expect(next.map((q) => [q.peer, q.start])).toEqual([['server', r.start]]);
    expect(e.items.find((i) => i.start === r.start)).toMatchObject({ attempts: 0 });
    expect(e.peers.find((p) => p.id === 'gossip-only')).toMatchObject({ banned: false, msPerRequest: undefined });
    // long after any back-off, every request still goes to the server
    for (let now = 100, q = next[0]; q; now += 60_000) {
      const after = requests(e.step({ type: 'response', requestId: q.id, outcome: ok(A, now < 300_000 ? fromHex(toHex(new Uint8Array([now / 60_000 + 1]))) : undefined), elapsedMs: 1, bytes: 1 }, now));
      expect(after.every((x) => x.peer === 'server')).toBe(true);
      q = after[0];
    }
    expect(e.progress()).toMatchObject({ phase: 'done', lastFailure: expect.stringMatching(/^gossip-only: UnsupportedProtocolError: .*\(after 19 ms\)$/) });
  });

  it('when no peer serves the protocol the sync stalls with SyncStalled, not a wait', () => {
    const e = engine({ target: A, peers: ['a', 'b'], concurrency: 2 });
    e.start(0);
    const refusal = Object.assign(new Error('no'), { name: 'UnsupportedProtocolError' });
    const failed: StateSyncAction[] = [];
    for (let r = e.outstanding()[0]; r; r = e.outstanding()[0]) failed.push(...ofType(e.step({ type: 'failure', requestId: r.id, error: refusal, elapsedMs: 3, notServed: true }, 3), 'failed'));
    expect(failed.map((f) => (f as { error: Error }).error.name)).toEqual(['SyncStalled']);
    expect(e.status).toBe('failed');
  });

  it('banning a peer cancels its other requests in flight: no more of its answers are taken', () => {
    const e = engine({ target: A, peers: ['liar', 'honest'], concurrency: 4, banAfter: 1 });
    const first = requests(e.start(0));
    const liar = first.filter((r) => r.peer === 'liar');
    expect(liar.length).toBe(2); // its share of 4 slots over 2 peers
    const a = e.step({ type: 'response', requestId: liar[0].id, outcome: bad, elapsedMs: 5, bytes: 0 }, 5);
    expect(ofType(a, 'penalise')).toMatchObject([{ peer: 'liar', banned: true }]);
    expect(ofType(a, 'cancel').map((c) => c.requestId)).toEqual([liar[1].id]);
    expect(requests(a).every((r) => r.peer === 'honest')).toBe(true);
    expect(e.peers.find((p) => p.id === 'liar')).toMatchObject({ inFlight: 0, banned: true, invalid: 1 });
  });

  it('a peer that went away has its requests cancelled and their work queued again without an attempt; back, it takes work again', () => {
    const e = engine({ target: A, peers: ['boot', 'replica'], concurrency: 4 });
    const first = requests(e.start(0));
    const boot = first.filter((r) => r.peer === 'boot');
    expect(boot.length).toBeGreaterThan(0);
    const actions = e.step({ type: 'peerRemoved', peer: 'boot' }, 5);
    expect(ofType(actions, 'cancel').map((c) => c.requestId).sort()).toEqual(boot.map((r) => r.id).sort());
    // the freed slots go to the replica, for the same ranges, no attempt charged
    const again = requests(actions);
    expect(again.every((r) => r.peer === 'replica')).toBe(true);
    for (const r of boot) expect(e.items.find((i) => toHex(i.start) === toHex(r.start))).toMatchObject({ attempts: 0 });
    expect(e.peers.find((p) => p.id === 'boot')).toMatchObject({ inFlight: 0, retired: true, banned: false, failures: 0 });
    // an answer from before it left is not taken (its request was cancelled)
    expect(e.step({ type: 'response', requestId: boot[0].id, outcome: ok(A), elapsedMs: 6, bytes: 10 }, 6)).toEqual([]);
    e.step({ type: 'peerAdded', peer: 'boot' }, 7);
    expect(e.peers.find((p) => p.id === 'boot')).toMatchObject({ retired: false });
    // once the replica answers, the freed slot may go to either: the one that came back is usable
    const replicaReq = e.outstanding().find((r) => r.peer === 'replica')!;
    const next = requests(e.step({ type: 'response', requestId: replicaReq.id, outcome: ok(A), elapsedMs: 1, bytes: 10 }, 8));
    expect(next.length).toBeGreaterThan(0);
    expect(e.status).toBe('syncing');
  });

  it('a peer that went away while it was the only one stalls the sync only when nothing is in flight', () => {
    const e = engine({ target: A, peers: ['only'], concurrency: 2 });
    e.start(0);
    const failed = ofType(e.step({ type: 'peerRemoved', peer: 'only' }, 1), 'failed');
    expect(failed.map((f) => (f.error as Error).name)).toEqual(['SyncStalled']);
  });
});
