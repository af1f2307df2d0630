/**
 * The live follower against a memory state store, a memory pending store, scripted peers
 * (honest, lacking, and malicious: forged ids, cycles, unrequested deltas) and a scripted
 * writer whose deltas carry real trie roots. Timers and the clock are injected, so every case
 * is deterministic. The DAG's own ordering and `GapFill`'s per-round rules are covered by
 * core/dag.test.ts and gap-fill.test.ts; these cases test how the follower ties them to the
 * store, the pending store, gap filling and catch-up.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { equalBytes, toHex } from '../../core/bytes.ts';
import { encodeDelta, signDelta, type Delta, type VerifiedDelta } from '../../core/delta.ts';
import { MemoryStore } from '../../core/store.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { EMPTY_ROOT, type KeyChange } from '../../core/types.ts';
import type { DeltaSource } from '../../sync/gap-fill.ts';
import { loadProgress, progressOps } from '../../sync/state/stored-progress.ts';
import { EMPTY_KEY, type InclusiveRange } from '../../sync/state/ranges.ts';
import { LiveFollower } from './follower.ts';
import type { CatchUpReason, DeltaUpdate, LiveEvent, LiveTuning } from './types.ts';
import { MemoryPendingDeltas } from './pending-store.ts';
import { loadPosition, type LivePosition } from './position.ts';
import { deltaVerifier } from './verify.ts';

const sk = sha256(new TextEncoder().encode('live follower test writer'));
const pk = ed25519.getPublicKey(sk);
const otherSk = sha256(new TextEncoder().encode('not the writer'));
const enc = (s: string) => new TextEncoder().encode(s);
const INITIAL: KeyChange[] = Array.from({ length: 50 }, (_, i) => ({ key: enc(`k${String(i).padStart(3, '0')}`), value: enc(`v${i}`) }));

async function rootOf(changes: KeyChange[][]): Promise<Uint8Array> {
  const trie = await MerkleTrie.open(new MemoryStore());
  for (const c of changes) await trie.commit(c);
  return trie.root;
}

/** A writer with real roots: `commit` extends the chain; `branch` signs a delta on any parents. */
async function scriptedWriter() {
  const history: KeyChange[][] = [INITIAL];
  const root0 = await rootOf(history);
  const deltas: VerifiedDelta[] = [];
  let head: Uint8Array | undefined;
  let wall = 10_000;
  const sign = (parents: Uint8Array[], actions: KeyChange[], stateRoot: Uint8Array, logIndex: number, key: Uint8Array = sk) =>
    signDelta({ parents, actions, hlc: { wallMs: wall++, counter: 0 }, stateRoot, logIndex }, key);
  return {
    root0,
    deltas,
    history,
    sign,
    /** The next delta of the chain (10 puts); `stateRoot` overrides the real root. */
    async commit(o: { stateRoot?: Uint8Array; key?: Uint8Array } = {}): Promise<VerifiedDelta> {
      const i = deltas.length;
      const actions = Array.from({ length: 10 }, (_, j) => ({ key: enc(`k${String((i * 7 + j * 5) % 80).padStart(3, '0')}`), value: enc(`d${i}.${j}`) }));
      actions.sort((a, b) => (toHex(a.key) < toHex(b.key) ? -1 : 1));
      history.push(actions);
      const d = sign(head ? [head] : [EMPTY_ROOT], actions, o.stateRoot ?? (await rootOf(history)), i, o.key);
      if (o.stateRoot) history.pop();
      deltas.push(d);
      head = d.id;
      return d;
    },
    get head() {
      return head;
    },
  };
}
type Writer = Awaited<ReturnType<typeof scriptedWriter>>;

/** Deterministic timers: `run()` fires what is due at the injected clock. */
function fakeTime() {
  let now = 1_000_000;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    setTimer(fn: () => void, ms: number) {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return () => void (t.live = false);
    },
    /** Advances the clock by `ms` and fires every timer now due. */
    advance(ms: number) {
      now += ms;
      for (;;) {
        const due = timers.filter((t) => t.live && t.at <= now);
        if (due.length === 0) return;
        for (const t of due) {
          t.live = false;
          t.fn();
        }
      }
    },
  };
}

/** A peer serving the writer's deltas; `lie` rewrites each answer. */
function honest(w: Writer, log: Uint8Array[][] = [], lie?: (ids: Uint8Array[], answer: Delta[]) => Delta[]): DeltaSource {
  return {
    async fetch(ids) {
      log.push(ids);
      const answer = ids.map((id) => w.deltas.find((d) => equalBytes(d.id, id))).filter((d): d is VerifiedDelta => d !== undefined);
      return lie ? lie(ids, answer) : answer;
    },
  };
}

async function setup(o: { tuning?: LiveTuning; ranges?: InclusiveRange[]; sources?: (w: Writer) => { id: string; source: DeltaSource }[]; store?: MemoryStore; pending?: MemoryPendingDeltas; writer?: Writer } = {}) {
  const w = o.writer ?? (await scriptedWriter());
  const time = fakeTime();
  let store = o.store;
  if (!store) {
    // the state a sync left: the initial data at root0, progress at root0, one segment
    store = new MemoryStore();
    const trie = await MerkleTrie.open(store);
    const initial = o.ranges ? INITIAL.filter((c) => o.ranges!.some((r) => (!r.start || toHex(c.key) >= toHex(r.start)) && (!r.end || toHex(c.key) <= toHex(r.end)))) : INITIAL;
    await trie.commit(initial, progressOps([], [{ start: EMPTY_KEY, end: undefined, root: w.root0 }], w.root0));
  }
  const pending = o.pending ?? new MemoryPendingDeltas();
  const events: LiveEvent[] = [];
  const catchUps: CatchUpReason[] = [];
  const penalised: string[] = [];
  const blamed: string[] = [];
  const failures: unknown[] = [];
  const stored: Uint8Array[] = [];
  const follower = new LiveFollower({
    store,
    pending,
    verifier: deltaVerifier(pk),
    writerPublicKey: pk,
    ranges: o.ranges,
    tuning: { gossipGraceMs: 100, ...o.tuning },
    sources: () => o.sources?.(w) ?? [{ id: 'honest', source: honest(w) }],
    catchUp: (r) => catchUps.push(r),
    penalise: (peer) => penalised.push(peer),
    blame: (peer, reason) => blamed.push(`${peer}: ${reason}`),
    seqOf: () => undefined,
    emit: (e) => events.push(e),
    fail: (e) => failures.push(e),
    stored: (root) => stored.push(root),
    now: time.now,
    setTimer: time.setTimer,
  });
  const updates = () => events.filter((e): e is Extract<LiveEvent, { type: 'update' }> => e.type === 'update').map((e) => e.detail);
  const offer = async (d: Delta, from = 'honest') => {
    await follower.offerDelta(encodeDelta(d), from);
  };
  const position0: LivePosition = { root: w.root0, heads: [], logSize: 0, seq: 1 };
  const root = async () => (await MerkleTrie.open(store)).root;
  return { w, time, store, pending, follower, events, catchUps, penalised, blamed, failures, stored, updates, offer, position0, root };
}

const ids = (us: DeltaUpdate[]) => us.map((u) => toHex(u.deltaId));
const idsOf = (ds: Delta[]) => ds.map((d) => toHex(d.id));

describe('live follower: applying', () => {
  it('applies a chain in order; each update names its keys and root; position and progress move in the same batch', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const chain = [await t.w.commit(), await t.w.commit(), await t.w.commit()];
    for (const d of chain) await t.offer(d);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(t.updates()[2].root).toEqual(chain[2].stateRoot);
    expect(t.updates()[0].keys.map((k) => new TextDecoder().decode(k))).toEqual(chain[0].actions.map((a) => new TextDecoder().decode(a.key)));
    expect(await t.root()).toEqual(chain[2].stateRoot);
    const pos = await loadPosition(t.store);
    expect(pos).toMatchObject({ root: chain[2].stateRoot, heads: [chain[2].id], logSize: 3 });
    const progress = await loadProgress(t.store);
    expect(progress.target).toEqual(chain[2].stateRoot);
    expect(progress.segments.every((s) => equalBytes(s.root, chain[2].stateRoot))).toBe(true);
    expect(t.catchUps).toEqual([]);
    expect(t.follower.pendingCount).toBe(0);
  });

  it('puts over existing keys replace their leaves without reading the old values', async () => {
    // a store that notes every value it is asked for (value keys are 'v' ++ key)
    const asked: string[] = [];
    const store = new (class extends MemoryStore {
      override get(key: Uint8Array): Promise<Uint8Array | undefined> {
        if (key[0] === 0x76) asked.push(new TextDecoder().decode(key.subarray(1)));
        return super.get(key);
      }
    })();
    const w = await scriptedWriter();
    await (await MerkleTrie.open(store)).commit(INITIAL, progressOps([], [{ start: EMPTY_KEY, end: undefined, root: w.root0 }], w.root0));
    const t = await setup({ writer: w, store });
    await t.follower.goLive(t.position0, 'synced');
    const d = await t.w.commit(); // 10 puts, all over keys INITIAL holds
    const keys = d.actions.map((a) => new TextDecoder().decode(a.key));
    expect(keys.every((k) => INITIAL.some((c) => new TextDecoder().decode(c.key) === k))).toBe(true);
    asked.length = 0;
    await t.offer(d);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf([d]));
    expect(await t.root()).toEqual(d.stateRoot);
    expect(asked.filter((k) => keys.includes(k))).toEqual([]);
  });

  it('out-of-order delivery within the grace period: no gap fill, applied in causal order', async () => {
    const log: Uint8Array[][] = [];
    const t = await setup({ sources: (w) => [{ id: 'honest', source: honest(w, log) }] });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [await t.w.commit(), await t.w.commit(), await t.w.commit(), await t.w.commit()];
    for (const i of [3, 1, 2]) await t.offer(chain[i]);
    expect(t.updates()).toEqual([]);
    expect(t.follower.pendingCount).toBe(3);
    await t.offer(chain[0]);
    await t.follower.idle();
    t.time.advance(1000);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(log).toEqual([]);
  });

  it('duplicates cost nothing: counted, applied once', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const d = await t.w.commit();
    await t.offer(d);
    await t.follower.idle();
    await t.offer(d);
    await t.offer(d);
    await t.follower.idle();
    await Promise.resolve();
    expect(ids(t.updates())).toEqual(idsOf([d]));
    const pending = t.events.filter((e) => e.type === 'pending').at(-1)!.detail as { duplicates: number; received: number };
    expect(pending).toMatchObject({ duplicates: 2, received: 3 });
  });

  it('while the state sync runs, deltas are held; at the target the covered ones are dropped and the rest applied', async () => {
    const t = await setup();
    const chain = [];
    for (let i = 0; i < 5; i++) chain.push(await t.w.commit());
    for (const d of chain) await t.offer(d);
    expect(t.follower.pendingCount).toBe(5);
    expect(t.updates()).toEqual([]);
    // the sync reached the announcement after delta 1: state at chain[1], log size 2
    const trie = await MerkleTrie.open(t.store);
    await trie.commit(chain[0].actions);
    await trie.commit(chain[1].actions, progressOps((await loadProgress(t.store)).segments, [{ start: EMPTY_KEY, end: undefined, root: chain[1].stateRoot }], chain[1].stateRoot, t.w.root0));
    expect(trie.root).toEqual(chain[1].stateRoot);
    await t.follower.goLive({ root: chain[1].stateRoot, heads: [chain[1].id], logSize: 2, seq: 3 }, 'synced');
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain.slice(2)));
    expect(await t.root()).toEqual(chain[4].stateRoot);
  });

  it('a partial sync applies only in-range actions, reports only in-range keys, and takes the signed root', async () => {
    const range = { start: enc('k000'), end: enc('k039') };
    const t = await setup({ ranges: [range] });
    await t.follower.goLive(t.position0, 'synced');
    const d = await t.w.commit();
    await t.offer(d);
    await t.follower.idle();
    const [u] = t.updates();
    const inRange = d.actions.filter((a) => toHex(a.key) <= toHex(range.end));
    expect(u.keys).toEqual(inRange.map((a) => a.key));
    expect(u.root).toEqual(d.stateRoot);
    expect(await MerkleTrie.open(t.store).then((x) => x.get(enc('k079')))).toBeUndefined();
    for (const a of inRange) expect(await MerkleTrie.open(t.store).then((x) => x.get(a.key))).toEqual(a.value);
  });

  it('a fork and its merge: both branches applied, the merge checked against its root', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const base = await t.w.commit();
    const put = (k: string, v: string): KeyChange[] => [{ key: enc(k), value: enc(v) }];
    const a = t.w.sign([base.id], put('fa', '1'), await rootOf([...t.w.history, put('fa', '1')]), 1);
    const b = t.w.sign([base.id], put('fb', '2'), await rootOf([...t.w.history, put('fb', '2')]), 2);
    const m = t.w.sign([a.id, b.id].sort((x, y) => (toHex(x) < toHex(y) ? -1 : 1)), put('fm', '3'), await rootOf([...t.w.history, put('fa', '1'), put('fb', '2'), put('fm', '3')]), 3);
    for (const d of [base, m, b, a]) await t.offer(d);
    await t.follower.idle();
    expect(ids(t.updates()).sort()).toEqual(idsOf([base, a, b, m]).sort());
    expect(ids(t.updates()).at(-1)).toBe(toHex(m.id));
    expect(await t.root()).toEqual(m.stateRoot);
    expect(t.catchUps).toEqual([]);
    expect((await loadPosition(t.store))?.heads).toEqual([m.id]);
  });
});

describe('live follower: hostile input', () => {
  it('a forged signature, a forged id and garbage are dropped and counted; nothing is held', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const good = await t.w.commit();
    const forgedSig = t.w.sign([EMPTY_ROOT], good.actions, good.stateRoot, 0, otherSk);
    const tampered = encodeDelta(good);
    tampered[tampered.length - 80] ^= 1; // inside the body: the id re-derived no longer matches the signature
    await t.follower.offerDelta(encodeDelta(forgedSig));
    await t.follower.offerDelta(tampered);
    await t.follower.offerDelta(new Uint8Array([1, 2, 3]));
    await Promise.resolve();
    expect(t.follower.pendingCount).toBe(0);
    expect(t.events.filter((e) => e.type === 'pending').at(-1)!.detail).toMatchObject({ rejected: 3, received: 3 });
    expect(t.updates()).toEqual([]);
  });

  it('a wrong stateRoot: the verified prefix is committed, the offender and its descendants discarded, catch-up asked', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const d0 = await t.w.commit();
    const d1 = await t.w.commit({ stateRoot: sha256(enc('not the root')) });
    const d2 = await t.w.commit();
    for (const d of [d2, d1]) await t.offer(d); // held: d0 missing
    await t.offer(d0);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf([d0]));
    expect(await t.root()).toEqual(d0.stateRoot);
    expect((await loadPosition(t.store))?.root).toEqual(d0.stateRoot);
    expect(t.catchUps).toEqual(['root-mismatch']);
    expect(t.follower.mode).toBe('catching-up');
    expect(t.follower.pendingCount).toBe(0);
    expect(t.events.filter((e) => e.type === 'pending').at(-1)!.detail).toMatchObject({ discarded: 2 });
  });
});

describe('live follower: gap filling', () => {
  it('a dropped run is fetched over /delta from the peer that sent the next delta, then applied in order', async () => {
    const log: Uint8Array[][] = [];
    const t = await setup({ sources: (w) => [{ id: 'honest', source: honest(w, log) }] });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 6; i++) chain.push(await t.w.commit());
    await t.offer(chain[0]);
    await t.offer(chain[5]);
    await t.follower.idle();
    t.time.advance(100);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(log.map((r) => r.length)).toEqual([1, 1, 1, 1]);
    const fills = t.events.filter((e) => e.type === 'gapFill').map((e) => e.detail);
    expect(fills.map((f) => f.phase)).toEqual(['started', 'finished']);
    expect(fills[1]).toMatchObject({ fetched: 4, rounds: 4, peer: 'honest' });
  });

  it('a gap at the announced head (the last deltas lost) is fetched after the grace period', async () => {
    const t = await setup();
    await t.follower.goLive(t.position0, 'synced');
    const chain = [await t.w.commit(), await t.w.commit(), await t.w.commit()];
    await t.offer(chain[0]);
    await t.follower.idle();
    t.follower.offerAnnouncement({ stateRoot: chain[2].stateRoot, heads: [chain[2].id], logSize: 3, seq: 4 });
    t.time.advance(99);
    expect(t.events.some((e) => e.type === 'gapFill')).toBe(false);
    t.time.advance(1);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
  });

  it('a chain deeper than the per-round limit takes several bounded rounds', async () => {
    const log: Uint8Array[][] = [];
    const t = await setup({ tuning: { maxPerRound: 2 }, sources: (w) => [{ id: 'honest', source: honest(w, log) }] });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 9; i++) chain.push(await t.w.commit());
    // every other delta arrives: four missing parents at once, then their ancestors
    for (const i of [8, 6, 4, 2]) await t.offer(chain[i]);
    t.time.advance(100);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(log.map((r) => r.length)).toEqual([2, 2, 1]);
  });

  it('a malicious peer (forged ids, cycles, unrequested and badly signed deltas) is penalised; an honest one fills', async () => {
    const t = await setup({
      sources: (w) => [
        {
          id: 'liar',
          source: honest(w, [], (_ids, answer) => [
            ...answer.map((d) => ({ ...d, actions: [{ key: enc('evil'), value: enc('1') }] })), // content no longer matches its id
            w.deltas[0], // unrequested (and already applied)
            { ...answer[0], signature: new Uint8Array(64) },
          ]),
        },
        { id: 'honest', source: honest(w) },
      ],
    });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 4; i++) chain.push(await t.w.commit());
    await t.offer(chain[0]);
    await t.offer(chain[3], 'liar');
    t.time.advance(100);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(t.penalised).toContain('liar');
    const fills = t.events.filter((e) => e.type === 'gapFill').map((e) => e.detail);
    expect(fills.map((f) => `${f.peer}:${f.phase}`)).toEqual(['liar:started', 'liar:failed', 'honest:started', 'honest:finished']);
    expect(t.catchUps).toEqual([]);
  });

  it('ids reached twice (an announced head and its child\'s parent) are asked once: visited set', async () => {
    const w = await scriptedWriter();
    const log: Uint8Array[][] = [];
    const t = await setup({ writer: w, sources: () => [{ id: 'cyclic', source: honest(w, log) }] });
    await t.follower.goLive(t.position0, 'synced');
    const c = [await w.commit(), await w.commit(), await w.commit()];
    await t.offer(c[2]);
    t.follower.offerAnnouncement({ stateRoot: c[2].stateRoot, heads: [c[1].id, c[2].id], logSize: 3, seq: 4 });
    t.time.advance(100);
    await t.follower.idle();
    const asked = log.flat().map(toHex);
    expect(new Set(asked).size).toBe(asked.length);
    expect(ids(t.updates())).toEqual(idsOf(c));
  });

  it('a gap beyond the limit asks for catch-up; afterwards covered deltas are dropped and newer ones applied', async () => {
    const t = await setup({ tuning: { maxGapFill: 3 } });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 8; i++) chain.push(await t.w.commit());
    await t.offer(chain[6]);
    t.time.advance(100);
    await t.follower.idle();
    expect(t.catchUps).toEqual(['gap-too-large']);
    expect(t.follower.mode).toBe('catching-up');
    // the host catches up by change proof to the announcement after chain[6]
    const trie = await MerkleTrie.open(t.store);
    const target = await rootOf(t.w.history.slice(0, 8));
    expect(target).toEqual(chain[6].stateRoot);
    const changes = new Map<string, KeyChange>();
    for (const d of chain.slice(0, 7)) for (const a of d.actions) changes.set(toHex(a.key), a);
    await trie.commit([...changes.values()], progressOps((await loadProgress(t.store)).segments, [{ start: EMPTY_KEY, end: undefined, root: target }], target, t.w.root0));
    await t.follower.goLive({ root: target, heads: [chain[6].id], logSize: 7, seq: 8 }, 'synced');
    await t.offer(chain[7]);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf([chain[7]]));
    expect(await t.root()).toEqual(chain[7].stateRoot);
  });

  it('peers that lack the deltas: every peer is tried, then catch-up', async () => {
    const lacking = (): DeltaSource => ({ fetch: async () => [] });
    const t = await setup({ sources: () => [{ id: 'a', source: lacking() }, { id: 'b', source: lacking() }] });
    await t.follower.goLive(t.position0, 'synced');
    await t.w.commit();
    await t.offer(await t.w.commit());
    t.time.advance(100);
    await t.follower.idle();
    expect(t.catchUps).toEqual(['peer-lacks-deltas']);
    expect(t.events.filter((e) => e.type === 'gapFill').map((e) => `${e.detail.peer}:${e.detail.phase}`)).toEqual(['a:started', 'a:failed', 'b:started', 'b:failed']);
  });
});

describe('live follower: never stuck, survives a reload', () => {
  it('a delta held longer than the timeout forces a catch-up; after it, the expired delta is dropped', async () => {
    const t = await setup({ tuning: { pendingTimeoutMs: 4000 }, sources: () => [] });
    const chain = [await t.w.commit(), await t.w.commit()];
    await t.follower.goLive(t.position0, 'synced');
    // no source: the fill fails at once and asks for catch-up; the host finds nothing newer
    await t.offer(chain[1]);
    t.time.advance(100);
    await t.follower.idle();
    expect(t.catchUps).toEqual(['no-source']);
    await t.follower.goLive(t.position0, 'synced');
    expect(t.follower.pendingCount).toBe(1);
    t.time.advance(4000);
    expect(t.catchUps).toEqual(['no-source', 'pending-expired']);
    await t.follower.goLive(t.position0, 'synced');
    expect(t.follower.pendingCount).toBe(0);
    expect(t.events.filter((e) => e.type === 'pending').length).toBeGreaterThan(0);
  });

  it('ready deltas queued behind a long apply (a burst after a pause or a sync) never expire', async () => {
    const t = await setup({ tuning: { pendingTimeoutMs: 4000 } });
    const chain = [await t.w.commit(), await t.w.commit(), await t.w.commit()];
    for (const d of chain) await t.offer(d); // held: syncing
    t.time.advance(10_000);
    expect(t.follower.checkExpired()).toBe(false);
    await t.follower.goLive(t.position0, 'synced');
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(t.catchUps).toEqual([]);
  });

  it('pending deltas survive a reload: restored from the pending store and applied after the gap is filled', async () => {
    const first = await setup({ sources: () => [] });
    await first.follower.goLive(first.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 5; i++) chain.push(await first.w.commit());
    await first.offer(chain[0]);
    for (const d of chain.slice(2)) await first.offer(d);
    await first.follower.idle();
    await first.follower.flush();
    expect(first.pending.records.size).toBe(3);
    await first.follower.close();
    // the page reloads: same stores, a new follower
    const second = await setup({ store: first.store, pending: first.pending, writer: first.w });
    expect(await second.follower.restore()).toBe(3);
    const pos = await loadPosition(second.store);
    expect(pos).toMatchObject({ root: chain[0].stateRoot, logSize: 1 });
    await second.follower.goLive(pos!, 'restored');
    await second.follower.idle();
    expect(ids(second.updates())).toEqual(idsOf(chain.slice(1)));
    await second.follower.flush();
    expect(second.pending.records.size).toBe(0);
    expect(second.events.filter((e) => e.type === 'pending').at(-1)!.detail).toMatchObject({ restored: 3, count: 0 });
  });

  it('the pending store stays within the bounds: evicted deltas are deleted from it', async () => {
    const t = await setup({ tuning: { maxPending: 3 }, sources: () => [] });
    await t.follower.goLive(t.position0, 'synced');
    const chain = [];
    for (let i = 0; i < 7; i++) chain.push(await t.w.commit());
    for (const d of chain.slice(1)) await t.offer(d);
    await t.follower.flush();
    expect(t.follower.pendingCount).toBe(3);
    expect(t.pending.records.size).toBe(3);
    expect([...t.pending.records.keys()].sort()).toEqual(idsOf(chain.slice(1, 4)).sort());
  });
});

/** A MemoryStore whose writes, while `hold` (after `pass` more), wait for `release()` or `fail()`, in order. */
class GatedStore extends MemoryStore {
  hold = false;
  pass = 0;
  gates: { release: () => void; fail: (err: Error) => void }[] = [];

  override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
    if (!this.hold || this.pass-- > 0) return super.write(ops);
    return new Promise<void>((resolve, reject) => {
      this.gates.push({ release: () => resolve(super.write(ops)), fail: reject });
    });
  }
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1)); // polling interval
  expect(cond()).toBe(true);
};

/** Six deltas held, then live with groups of two; the store's writes held after goLive's. */
async function gatedFollower(o: { checkpointEvery?: number }) {
  const w = await scriptedWriter();
  const store = new GatedStore();
  const trie = await MerkleTrie.open(store);
  await trie.commit(INITIAL, progressOps([], [{ start: EMPTY_KEY, end: undefined, root: w.root0 }], w.root0));
  const t = await setup({ writer: w, store, tuning: { maxBatch: 2, checkpointEvery: o.checkpointEvery } });
  // six deltas held while syncing, then live: three groups of two
  const chain: VerifiedDelta[] = [];
  for (let i = 0; i < 6; i++) chain.push(await t.w.commit());
  for (const d of chain) await t.offer(d);
  store.hold = true;
  store.pass = 1; // the position goLive writes
  await t.follower.goLive(t.position0, 'synced');
  return { ...t, store, chain };
}

describe('live follower: pipelined commits', () => {
  const gated = () => gatedFollower({ checkpointEvery: 0 });

  it('the next group is computed while a write runs; updates come only once their write is durable', async () => {
    const t = await gated();
    const chain = t.chain;
    await until(() => t.store.gates.length === 1);
    // the first group's write is held: nothing is announced, and the second group is not staged on it
    await new Promise((r) => setTimeout(r, 20));
    expect(t.updates()).toEqual([]);
    expect(t.store.gates.length).toBe(1);
    t.store.gates.shift()!.release();
    await until(() => t.updates().length === 2 && t.store.gates.length === 1);
    expect(ids(t.updates())).toEqual(idsOf(chain.slice(0, 2)));
    t.store.gates.shift()!.release();
    await until(() => t.store.gates.length === 1);
    t.store.gates.shift()!.release();
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(await t.root()).toEqual(chain[5].stateRoot);
    expect(await loadPosition(t.store)).toMatchObject({ root: chain[5].stateRoot, logSize: 6 });
    expect(t.failures).toEqual([]);
  });

  it('a failed write: its group is never announced, the store keeps the last durable position, the follower stops', async () => {
    const t = await gated();
    const chain = t.chain;
    await until(() => t.store.gates.length === 1);
    t.store.gates.shift()!.release();
    await until(() => t.store.gates.length === 1);
    t.store.gates.shift()!.fail(new Error('QuotaExceeded'));
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain.slice(0, 2)));
    expect(t.failures.map((e) => (e as Error).message)).toEqual(['QuotaExceeded']);
    expect(t.store.gates).toEqual([]);
    t.store.hold = false;
    expect(await t.root()).toEqual(chain[1].stateRoot);
    expect(await loadPosition(t.store)).toMatchObject({ root: chain[1].stateRoot, logSize: 2 });
    expect(t.follower.position).toMatchObject({ root: chain[1].stateRoot, logSize: 2 });
  });
});

describe('live follower: the journal (a backlog is checkpointed, not committed per group)', () => {
  const gatedJournal = () => gatedFollower({});

  it('updates come once the pending store holds their deltas; one checkpoint then writes the state and the pending store forgets them', async () => {
    const t = await gatedJournal();
    const chain = t.chain;
    // every update is out while the store's only write (the checkpoint) is held
    await until(() => t.updates().length === 6 && t.store.gates.length === 1);
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(t.updates().map((u) => toHex(u.root))).toEqual(chain.map((d) => toHex(d.stateRoot)));
    expect(t.pending.records.size).toBe(6);
    expect(await loadPosition(t.store)).toMatchObject({ root: t.w.root0, logSize: 0 });
    expect(t.stored).toEqual([]);
    const lastLive = () => t.events.filter((e) => e.type === 'live').at(-1)!.detail as { unstored: number };
    expect(lastLive().unstored).toBe(6);
    // reads see the applied state before the store does
    const last = chain[5].actions[0];
    expect(await t.follower.read(last.key)).toEqual(last.value);
    expect(await t.store.get(new Uint8Array([0x76, ...last.key]))).not.toEqual(last.value);
    let stored = false;
    const whenStored = t.follower.stored().then(() => (stored = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(stored).toBe(false);
    t.store.gates.shift()!.release();
    await whenStored;
    await t.follower.idle();
    await t.follower.flush();
    expect(t.store.gates).toEqual([]);
    expect(await t.root()).toEqual(chain[5].stateRoot);
    expect(await loadPosition(t.store)).toMatchObject({ root: chain[5].stateRoot, heads: [chain[5].id], logSize: 6 });
    expect((await loadProgress(t.store)).target).toEqual(chain[5].stateRoot);
    expect(t.stored.map(toHex)).toEqual([toHex(chain[5].stateRoot)]);
    expect(lastLive().unstored).toBe(0);
    expect(t.pending.records.size).toBe(0);
    expect(t.failures).toEqual([]);
  });

  it('a checkpoint that fails loses nothing: after a reload the pending store\'s deltas are applied again', async () => {
    const first = await gatedJournal();
    await until(() => first.updates().length === 6 && first.store.gates.length === 1);
    first.store.gates.shift()!.fail(new Error('QuotaExceeded'));
    await first.follower.idle();
    expect(first.failures.map((e) => (e as Error).message)).toContain('QuotaExceeded');
    expect(first.follower.position).toMatchObject({ root: first.w.root0, logSize: 0 });
    first.store.hold = false;
    expect(await first.root()).toEqual(first.w.root0);
    await first.follower.close();
    const second = await setup({ store: first.store, pending: first.pending, writer: first.w });
    expect(await second.follower.restore()).toBe(6);
    const pos = await loadPosition(second.store);
    await second.follower.goLive(pos!, 'restored');
    await second.follower.idle();
    expect(ids(second.updates())).toEqual(idsOf(first.chain));
    expect(await second.root()).toEqual(first.chain[5].stateRoot);
    expect(await loadPosition(second.store)).toMatchObject({ root: first.chain[5].stateRoot, logSize: 6 });
  });

  it('reads while a journal is open give its verified deltas\' values, nothing of the deltas still to apply', async () => {
    // the pending store's writes wait: the first journaled group waits for them, the journal open
    const held: (() => void)[] = [];
    const pending = new (class extends MemoryPendingDeltas {
      override write(puts: Parameters<MemoryPendingDeltas['write']>[0], deletes: Uint8Array[]): Promise<void> {
        return new Promise((resolve) => held.push(() => resolve(super.write(puts, deletes))));
      }
    })();
    const t = await setup({ pending, tuning: { maxBatch: 2 } });
    const chain: VerifiedDelta[] = [];
    for (let i = 0; i < 6; i++) chain.push(await t.w.commit());
    for (const d of chain) await t.offer(d);
    await t.follower.goLive(t.position0, 'synced');
    await until(() => t.follower.position?.logSize === 2);
    expect(t.updates()).toEqual([]);
    const keyOf = (d: VerifiedDelta) => d.actions[0].key;
    // the last value each key had once chain[0..2) applied, against the store's before it
    const after = (upTo: number, key: Uint8Array) => {
      let v: Uint8Array | undefined = INITIAL.find((c) => equalBytes(c.key, key))?.value;
      for (const d of chain.slice(0, upTo)) for (const a of d.actions) if (equalBytes(a.key, key)) v = a.value;
      return v;
    };
    for (const d of chain) expect(await t.follower.read(keyOf(d))).toEqual(after(2, keyOf(d)));
    while (held.length) held.shift()!();
    for (let i = 0; i < 20 && t.updates().length < 6; i++) {
      while (held.length) held.shift()!();
      await new Promise((r) => setTimeout(r, 5)); // polling interval: the pending store's writes come one by one
    }
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain));
    for (const d of chain) expect(await t.follower.read(keyOf(d))).toEqual(after(6, keyOf(d)));
  });

  it('a pending store that cannot write: no update is emitted, the store keeps its position, the follower stops', async () => {
    const pending = new (class extends MemoryPendingDeltas {
      override async write(): Promise<void> {
        throw new Error('pending store broken');
      }
    })();
    const t = await setup({ pending, tuning: { maxBatch: 2 } });
    const chain: VerifiedDelta[] = [];
    for (let i = 0; i < 4; i++) chain.push(await t.w.commit());
    for (const d of chain) await t.offer(d);
    await t.follower.goLive(t.position0, 'synced');
    await t.follower.idle();
    expect(t.updates()).toEqual([]);
    expect(t.failures.length).toBeGreaterThan(0);
    expect(await loadPosition(t.store)).toMatchObject({ root: t.w.root0, logSize: 0 });
    expect(await t.root()).toEqual(t.w.root0);
  });

  it('a wrong stateRoot behind journaled groups: the verified prefix, those groups included, is checkpointed; the rest discarded', async () => {
    const t = await setup({ tuning: { maxBatch: 2 } });
    const chain: VerifiedDelta[] = [];
    for (let i = 0; i < 3; i++) chain.push(await t.w.commit());
    chain.push(await t.w.commit({ stateRoot: sha256(enc('not the root')) }));
    chain.push(await t.w.commit());
    for (const d of chain) await t.offer(d);
    await t.follower.goLive(t.position0, 'synced');
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf(chain.slice(0, 3)));
    expect(await t.root()).toEqual(chain[2].stateRoot);
    expect(await loadPosition(t.store)).toMatchObject({ root: chain[2].stateRoot, logSize: 3 });
    expect(t.catchUps).toEqual(['root-mismatch']);
    expect(t.events.filter((e) => e.type === 'pending').at(-1)!.detail).toMatchObject({ discarded: 2 });
    // one write: the checkpoint of the journal, the first group included
    expect(t.stored.map(toHex)).toEqual([toHex(chain[2].stateRoot)]);
  });

  it('checkpointEvery bounds the journal: a checkpoint every 2 deltas', async () => {
    const writes: number[] = [];
    const store = new (class extends MemoryStore {
      override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
        writes.push(ops.length);
        return super.write(ops);
      }
    })();
    const w = await scriptedWriter();
    await (await MerkleTrie.open(store)).commit(INITIAL, progressOps([], [{ start: EMPTY_KEY, end: undefined, root: w.root0 }], w.root0));
    const t = await setup({ writer: w, store, tuning: { maxBatch: 1, checkpointEvery: 2 } });
    const chain: VerifiedDelta[] = [];
    for (let i = 0; i < 6; i++) chain.push(await t.w.commit());
    for (const d of chain) await t.offer(d);
    await t.follower.goLive(t.position0, 'synced');
    const before = writes.length;
    await t.follower.idle();
    expect(writes.length - before).toBe(3);
    expect(t.stored.map(toHex)).toEqual([chain[1], chain[3], chain[5]].map((d) => toHex(d.stateRoot)));
    expect(ids(t.updates())).toEqual(idsOf(chain));
    expect(await loadPosition(t.store)).toMatchObject({ root: chain[5].stateRoot, logSize: 6 });
  });
});

describe('live follower: chains that never connect', () => {
  /** A writer-signed chain of `depth` deltas on a parent nobody has, served by `attacker` (ids counted). */
  function deepChain(w: Writer, depth: number, firstLogIndex: number) {
    const chain: VerifiedDelta[] = [];
    let parent: Uint8Array = sha256(enc(`an ancestor nobody has ${firstLogIndex}`));
    for (let i = 0; i < depth; i++) {
      const d = w.sign([parent], [{ key: enc(`z${i}`), value: enc('x') }], new Uint8Array(32).fill(9), firstLogIndex + i);
      chain.push(d);
      parent = d.id;
    }
    const requested: Uint8Array[] = [];
    const source: DeltaSource = {
      async fetch(ids) {
        requested.push(...ids);
        return ids.map((id) => chain.find((d) => equalBytes(d.id, id))).filter((d): d is VerifiedDelta => d !== undefined);
      },
    };
    const extend = () => {
      const top = chain[chain.length - 1];
      const d = w.sign([top.id], [{ key: enc('z'), value: enc(`${chain.length}`) }], new Uint8Array(32).fill(9), top.logIndex + 1);
      chain.push(d);
      return d;
    };
    return { chain, source, requested, extend };
  }

  it('is walked once: deltas added on top later are dropped on arrival, no ids requested, no catch-up', async () => {
    const w = await scriptedWriter();
    const deep = deepChain(w, 300, 100_000);
    const t = await setup({ writer: w, tuning: { maxGapFill: 50, maxPerRound: 10 }, sources: (x) => [{ id: 'attacker', source: deep.source }, { id: 'honest', source: honest(x) }] });
    await t.follower.goLive(t.position0, 'synced');
    await t.offer(deep.chain[299], 'attacker');
    t.time.advance(100);
    await t.follower.idle();
    expect(t.catchUps).toEqual(['gap-too-large']);
    expect(deep.requested.length).toBeLessThanOrEqual(50);
    expect(t.blamed.length).toBe(1);
    expect(t.blamed[0]).toMatch(/^attacker: delta on a chain of more than 50 missing ancestors/);
    expect(t.follower.pendingCount).toBe(0);
    // the host found nothing newer: live again where it was
    await t.follower.goLive(t.position0, 'synced');
    const before = deep.requested.length;
    for (let i = 0; i < 20; i++) {
      await t.offer(deep.extend(), 'attacker');
      t.time.advance(1000);
      await t.follower.idle();
    }
    expect(deep.requested.length).toBe(before);
    expect(t.catchUps).toEqual(['gap-too-large']);
    expect(t.follower.pendingCount).toBe(0);
    const pending = t.events.filter((e) => e.type === 'pending').at(-1)!.detail as { abandoned: number };
    expect(pending.abandoned).toBeGreaterThanOrEqual(20);
    // the writer's own deltas still apply
    const d = await t.w.commit();
    await t.offer(d);
    await t.follower.idle();
    expect(ids(t.updates())).toEqual(idsOf([d]));
  });

  it('a new chain that joins a remembered one stops there, without a catch-up', async () => {
    const w = await scriptedWriter();
    const deep = deepChain(w, 200, 100_000);
    const t = await setup({ writer: w, tuning: { maxGapFill: 50, maxPerRound: 10 }, sources: () => [{ id: 'attacker', source: deep.source }] });
    await t.follower.goLive(t.position0, 'synced');
    await t.offer(deep.chain[199], 'attacker');
    t.time.advance(100);
    await t.follower.idle();
    await t.follower.goLive(t.position0, 'synced');
    // a branch off the part of the chain that was walked, a few deltas below its top
    const fork = w.sign([deep.chain[190].id], [{ key: enc('f'), value: enc('1') }], new Uint8Array(32).fill(9), 100_191);
    const forkTop = w.sign([fork.id], [{ key: enc('f'), value: enc('2') }], new Uint8Array(32).fill(9), 100_192);
    deep.chain.push(fork);
    const before = deep.requested.length;
    await t.offer(forkTop, 'attacker');
    t.time.advance(1000);
    await t.follower.idle();
    expect(deep.requested.length - before).toBe(1);
    expect(t.catchUps).toEqual(['gap-too-large']);
    expect(t.events.filter((e) => e.type === 'gapFill').at(-1)!.detail).toMatchObject({ phase: 'failed', reason: 'abandoned-chain' });
    expect(t.follower.pendingCount).toBe(0);
  });

  it('a peer whose fills led nowhere a whole fill of ids gets only short fills within the minute', async () => {
    const w = await scriptedWriter();
    const first = deepChain(w, 100, 100_000);
    const second = deepChain(w, 100, 200_000);
    const attackerLog: Uint8Array[] = [];
    const both: DeltaSource = {
      async fetch(ids) {
        attackerLog.push(...ids);
        return [...(await first.source.fetch(ids, {})), ...(await second.source.fetch(ids, {}))];
      },
    };
    const honestLog: Uint8Array[][] = [];
    const t = await setup({ writer: w, tuning: { maxGapFill: 50, maxPerRound: 10 }, sources: (x) => [{ id: 'attacker', source: both }, { id: 'honest', source: honest(x, honestLog) }] });
    await t.follower.goLive(t.position0, 'synced');
    await t.offer(first.chain[99], 'attacker');
    t.time.advance(100);
    await t.follower.idle();
    expect(attackerLog.length).toBeLessThanOrEqual(50);
    await t.follower.goLive(t.position0, 'synced');
    const spent = attackerLog.length;
    await t.offer(second.chain[99], 'attacker');
    t.time.advance(1000);
    await t.follower.idle();
    // a short fill only: too large for it, so the chain is given up on after 16 ids at most
    expect(attackerLog.length - spent).toBeGreaterThan(0);
    expect(attackerLog.length - spent).toBeLessThanOrEqual(16);
    expect(honestLog.flat()).toEqual([]);
    expect(t.follower.pendingCount).toBe(0);
    // a minute later the attacker may be asked again
    await t.follower.goLive(t.position0, 'synced');
    t.time.advance(60_000);
    const third = deepChain(w, 20, 300_000);
    (both as { fetch: DeltaSource['fetch'] }).fetch = async (ids) => (attackerLog.push(...ids), third.source.fetch(ids, {}));
    const before = attackerLog.length;
    await t.offer(third.chain[19], 'attacker');
    t.time.advance(1000);
    await t.follower.idle();
    // the whole third chain, down to the bottom parent nobody has: a full fill again
    expect(attackerLog.length - before).toBe(20);
  });

  it('an announcement of this database naming a remembered head clears the memory', async () => {
    const w = await scriptedWriter();
    const deep = deepChain(w, 100, 100_000);
    const t = await setup({ writer: w, tuning: { maxGapFill: 20, maxPerRound: 10 }, sources: () => [{ id: 'attacker', source: deep.source }] });
    await t.follower.goLive(t.position0, 'synced');
    await t.offer(deep.chain[99], 'attacker');
    t.time.advance(100);
    await t.follower.idle();
    await t.follower.goLive(t.position0, 'synced');
    const next = deep.extend();
    expect(t.follower.abandoned(next)).toBe(true);
    t.follower.offerAnnouncement({ stateRoot: new Uint8Array(32).fill(9), heads: [next.id], logSize: 100_101, seq: 5 });
    expect(t.follower.abandoned(deep.extend())).toBe(false);
  });
});
