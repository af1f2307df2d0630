import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, concatBytes, toHex } from './bytes.ts';
import { DeltaDag } from './dag.ts';
import { deltaWireLength, signDelta, type VerifiedDelta } from './delta.ts';
import { EMPTY_ROOT, type KeyChange } from './types.ts';

// A stand-in for the trie: the root is SHA-256 over the sorted (key, value) pairs. The real
// trie comes later; the DAG only needs apply(delta) → root to be a function of the state.
type State = Map<string, Uint8Array>;
function fakeRoot(state: State): Uint8Array {
  const keys = [...state.keys()].sort();
  if (keys.length === 0) return EMPTY_ROOT;
  return sha256(concatBytes(...keys.flatMap((k) => [new TextEncoder().encode(`${k}=`), state.get(k)!, Uint8Array.of(0)])));
}
function applyTo(state: State, actions: KeyChange[]): void {
  for (const a of actions) {
    const k = new TextDecoder().decode(a.key);
    if (a.value === undefined) state.delete(k);
    else state.set(k, a.value);
  }
}
class FakeTrie {
  state: State = new Map();
  log: string[] = [];
  apply = async (d: VerifiedDelta): Promise<Uint8Array> => {
    applyTo(this.state, d.actions);
    this.log.push(toHex(d.id));
    return fakeRoot(this.state);
  };
}

const sk = sha256(new TextEncoder().encode('proofsync test writer'));
const put = (k: string, v: string): KeyChange => ({ key: new TextEncoder().encode(k), value: new TextEncoder().encode(v) });
const del = (k: string): KeyChange => ({ key: new TextEncoder().encode(k), value: undefined });

/**
 * The writer: commits deltas on top of chosen parents. The state of a delta's causal past is
 * rebuilt by replaying that past in (hlc, id) order, the order concurrent branches are applied.
 */
class Writer {
  private readonly all = new Map<string, VerifiedDelta>();
  private wall = 1000;
  private logIndex = 0;

  commit(parents: VerifiedDelta[], actions: KeyChange[], opts: { stateRoot?: Uint8Array; wallMs?: number } = {}): VerifiedDelta {
    const state: State = new Map();
    for (const d of this.pastOf(parents)) applyTo(state, d.actions);
    applyTo(state, actions);
    const d = signDelta(
      {
        parents: parents.length === 0 ? [EMPTY_ROOT] : parents.map((p) => p.id),
        actions,
        hlc: { wallMs: opts.wallMs ?? this.wall++, counter: 0 },
        stateRoot: opts.stateRoot ?? fakeRoot(state),
        logIndex: this.logIndex++,
      },
      sk,
    );
    this.all.set(toHex(d.id), d);
    return d;
  }

  private pastOf(parents: VerifiedDelta[]): VerifiedDelta[] {
    const seen = new Map<string, VerifiedDelta>();
    const stack = [...parents];
    while (stack.length) {
      const d = stack.pop()!;
      if (seen.has(toHex(d.id))) continue;
      seen.set(toHex(d.id), d);
      for (const p of d.parents) if (this.all.has(toHex(p))) stack.push(this.all.get(toHex(p))!);
    }
    return [...seen.values()].sort((a, b) => a.hlc.wallMs - b.hlc.wallMs || compareBytes(a.id, b.id));
  }

  chain(n: number, from: VerifiedDelta[] = []): VerifiedDelta[] {
    const out: VerifiedDelta[] = [];
    let parents = from;
    for (let i = 0; i < n; i++) {
      const d = this.commit(parents, [put(`k${this.logIndex % 7}`, `v${this.logIndex}`), ...(i % 3 === 2 ? [del(`k${(this.logIndex + 3) % 7}`)] : [])].sort((a, b) => compareBytes(a.key, b.key)));
      out.push(d);
      parents = [d];
    }
    return out;
  }
}

const hex = (ds: { id: Uint8Array }[] | Uint8Array[]) =>
  ds.map((d) => toHex(d instanceof Uint8Array ? d : d.id));

describe('adding deltas', () => {
  it('a chain delivered in order: held, applied in order, every root checked', async () => {
    const w = new Writer();
    const chain = w.chain(5);
    const dag = new DeltaDag();
    const trie = new FakeTrie();
    // The first is ready (genesis parent); the others wait on a held parent, nothing missing.
    expect(chain.map((d) => dag.add(d, 0))).toEqual([
      { status: 'ready', evicted: [] },
      ...chain.slice(1).map(() => ({ status: 'pending', missing: [], evicted: [] })),
    ]);
    expect(hex(dag.ready())).toEqual(hex(chain));
    const report = await dag.applyReady(trie.apply);
    expect(report).toMatchObject({ kind: 'applied' });
    expect(hex(report.applied)).toEqual(hex(chain));
    expect(hex(report.checked)).toEqual(hex(chain));
    expect(report.unchecked).toEqual([]);
    expect(toHex(fakeRoot(trie.state))).toBe(toHex(chain[4].stateRoot));
    expect(hex(dag.heads())).toEqual(hex([chain[4]]));
    expect(dag.pendingCount).toBe(0);
  });

  it('out-of-order delivery, for any order: held until parents arrive, applied in causal order', async () => {
    const w = new Writer();
    const chain = w.chain(8);
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(chain, { minLength: 8, maxLength: 8 }), async (order) => {
        const dag = new DeltaDag();
        const trie = new FakeTrie();
        const delivered = new Set<string>();
        for (const d of order) {
          const r = dag.add(d, 0);
          const i = chain.indexOf(d);
          const parentApplied = i === 0; // nothing is applied until applyReady runs
          expect(r.status).toBe(parentApplied ? 'ready' : 'pending');
          if (r.status === 'pending') {
            // missing = the parent, unless it was delivered already
            expect(hex(r.missing)).toEqual(delivered.has(toHex(chain[i - 1].id)) ? [] : hex([chain[i - 1]]));
          }
          delivered.add(toHex(d.id));
        }
        const report = await dag.applyReady(trie.apply);
        expect(hex(report.applied)).toEqual(hex(chain));
        expect(report.checked.length).toBe(8);
        expect(toHex(fakeRoot(trie.state))).toBe(toHex(chain[7].stateRoot));
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('duplicates cost nothing: held → duplicate, applied → applied', async () => {
    const [d1, d2] = new Writer().chain(2);
    const dag = new DeltaDag();
    expect(dag.add(d2, 0).status).toBe('pending');
    expect(dag.add(d2, 0).status).toBe('duplicate');
    expect(dag.pendingCount).toBe(1);
    dag.add(d1, 0);
    await dag.applyReady(new FakeTrie().apply);
    expect(dag.add(d1, 0).status).toBe('applied');
    expect(dag.add(d2, 0).status).toBe('applied');
    expect(dag.pendingCount).toBe(0);
  });

  it('missingParents names what gap filling must fetch: not held, not applied, not genesis', () => {
    const chain = new Writer().chain(6);
    const dag = new DeltaDag();
    for (const i of [2, 4, 5]) dag.add(chain[i], 0);
    const expected = [chain[1], chain[3]].map((d) => d.id).sort(compareBytes);
    expect(hex(dag.missingParents())).toEqual(hex(expected));
    dag.add(chain[0], 0); // a genesis child: nothing missing for it
    expect(hex(dag.missingParents())).toEqual(hex(expected));
    expect(dag.knows(chain[2].id)).toBe(true);
    expect(dag.knows(chain[1].id)).toBe(false);
    expect(dag.knows(EMPTY_ROOT)).toBe(true);
  });
});

describe('causal order and state roots', () => {
  it('a fork with a merge: branches applied unchecked, the merge checked against both', async () => {
    const w = new Writer();
    const [g] = w.chain(1);
    const a = w.commit([g], [put('a', '1')]);
    const b = w.commit([g], [put('b', '2')]);
    const m = w.commit([a, b], [put('m', '3')]);
    const dag = new DeltaDag();
    for (const d of [m, b, a, g]) dag.add(d, 0);
    expect(hex(dag.ready())).toEqual(hex([g, a, b, m])); // a before b: smaller hlc
    const trie = new FakeTrie();
    const report = await dag.applyReady(trie.apply);
    expect(report.kind).toBe('applied');
    expect(hex(report.checked)).toEqual(hex([g, a, m]));
    expect(hex(report.unchecked)).toEqual(hex([b])); // applied on {a}, but its past is {g}
    expect(toHex(fakeRoot(trie.state))).toBe(toHex(m.stateRoot));
    expect(hex(dag.heads())).toEqual(hex([m]));
  });

  it('ties in hlc are broken by id', () => {
    const w = new Writer();
    const [g] = w.chain(1);
    const x = w.commit([g], [put('x', '1')], { wallMs: 5000 });
    const y = w.commit([g], [put('y', '1')], { wallMs: 5000 });
    const dag = new DeltaDag();
    for (const d of [y, x, g]) dag.add(d, 0);
    const [first, second] = [x, y].sort((p, q) => compareBytes(p.id, q.id));
    expect(hex(dag.ready())).toEqual(hex([g, first, second]));
  });

  it('appliedIsCausalPastOf compares the applied heads with the parents', async () => {
    const w = new Writer();
    const [g] = w.chain(1);
    const a = w.commit([g], [put('a', '1')]);
    const b = w.commit([g], [put('b', '1')]);
    const m = w.commit([a, b], []);
    const dag = new DeltaDag();
    const cases: [string, VerifiedDelta, boolean][] = [
      ['genesis child on an empty state', g, true],
      ['child of g before g is applied', a, false],
    ];
    for (const [name, d, want] of cases) expect(dag.appliedIsCausalPastOf(d), name).toBe(want);
    for (const d of [g, a, b]) dag.add(d, 0);
    await dag.applyReady(new FakeTrie().apply);
    expect(dag.appliedIsCausalPastOf(m)).toBe(true);
    expect(dag.appliedIsCausalPastOf(a)).toBe(false);
  });

  it('a wrong stateRoot stops applying, discards the offender and its descendants, asks for catch-up', async () => {
    const w = new Writer();
    const [c0] = w.chain(1);
    const bad = w.commit([c0], [put('z', '9')], { stateRoot: new Uint8Array(32).fill(0xee) });
    const [c2, c3] = w.chain(2, [bad]);
    const side = w.commit([c0], [put('s', '1')]); // a sibling branch, not a descendant of bad
    const dag = new DeltaDag();
    for (const d of [c0, bad, c2, c3, side]) dag.add(d, 0);
    const trie = new FakeTrie();
    const report = await dag.applyReady(trie.apply);
    expect(report.kind).toBe('needs-catch-up');
    if (report.kind !== 'needs-catch-up' || report.reason !== 'root-mismatch') throw new Error('expected root-mismatch');
    expect(hex(report.applied)).toEqual(hex([c0]));
    expect(toHex(report.delta)).toBe(toHex(bad.id));
    expect(toHex(report.expected)).toBe(toHex(bad.stateRoot));
    expect(toHex(report.actual)).toBe(toHex(fakeRoot(trie.state)));
    expect(hex(report.discarded)).toEqual(hex([bad, c2, c3].map((d) => d.id).sort(compareBytes)));
    expect(dag.has(side.id)).toBe(true);
    expect(dag.needsCatchUp).toBe(true);
    // Until a catch-up is recorded, nothing more is applied on the unverified state.
    const again = await dag.applyReady(trie.apply);
    expect(again).toMatchObject({ kind: 'needs-catch-up', reason: 'diverged', applied: [] });
    expect(dag.has(side.id)).toBe(true);
    // After catch-up to an announcement at c3 (log size 4: c0, bad, c2, c3), the side branch
    // (logIndex 4) is still held and applies on top.
    trie.state = new Map([['k0', new TextEncoder().encode('unused')]]);
    const dropped = dag.resetApplied({ heads: [c3.id], logSize: 4 });
    expect(dropped).toEqual([]);
    expect(dag.needsCatchUp).toBe(false);
    const after = await dag.applyReady(trie.apply);
    expect(after.kind).toBe('applied');
    expect(hex(after.unchecked)).toEqual(hex([side])); // its past is {c0}, applied set is past({c3})
  });

  it('a diverged local state is caught by the first checkable root', async () => {
    const chain = new Writer().chain(3);
    const dag = new DeltaDag();
    for (const d of chain) dag.add(d, 0);
    const trie = new FakeTrie();
    trie.state.set('stray', new Uint8Array([1])); // a local bug: state not at genesis
    const report = await dag.applyReady(trie.apply);
    expect(report).toMatchObject({ kind: 'needs-catch-up', reason: 'root-mismatch', applied: [] });
    expect(dag.pendingCount).toBe(0); // the whole chain descends from the offender
  });

  it('deltas added while applying are applied before it returns; a second concurrent call is refused', async () => {
    const chain = new Writer().chain(3);
    const dag = new DeltaDag();
    dag.add(chain[0], 0);
    const trie = new FakeTrie();
    let second: Promise<unknown> | undefined;
    const report = await dag.applyReady(async (d) => {
      if (d === chain[0]) {
        dag.add(chain[1], 0);
        dag.add(chain[2], 0);
        second = dag.applyReady(trie.apply);
      }
      return trie.apply(d);
    });
    await expect(second).rejects.toMatchObject({ name: 'ApplyInProgress' });
    expect(hex(report.applied)).toEqual(hex(chain));
  });

  it('markApplied records a delta applied by the caller', () => {
    const [d1, d2] = new Writer().chain(2);
    const dag = new DeltaDag();
    dag.add(d1, 0);
    dag.add(d2, 0);
    expect(() => dag.markApplied(d2.id)).toThrow('has parents that are not applied');
    dag.markApplied(d1.id);
    expect(dag.isApplied(d1.id)).toBe(true);
    expect(hex(dag.heads())).toEqual(hex([d1]));
    expect(hex(dag.ready())).toEqual(hex([d2]));
    expect(() => dag.markApplied(new Uint8Array(32).fill(1))).toThrow('is not held');
  });
});

/** A chain of `n` deltas from a root with early clocks (they sort before the writer's), first one included. */
function orphanChain(w: Writer, n: number): VerifiedDelta[] {
  const out = [w.commit([], [put('x', '0')], { wallMs: 1 })];
  for (let i = 1; i < n; i++) out.push(w.commit([out[i - 1]], [put('x', `${i}`)], { wallMs: 1 + i }));
  return out;
}

describe('bounds, expiry, catch-up', () => {
  it('over maxPending, the greatest (hlc, id) is evicted first, possibly the newcomer', () => {
    const chain = new Writer().chain(7);
    const dag = new DeltaDag({ maxPending: 3 });
    const results = chain.slice(1).map((d) => dag.add(d, 0)); // all waiting on chain[0]
    expect(results.map((r) => r.status)).toEqual(['pending', 'pending', 'pending', 'evicted', 'evicted', 'evicted']);
    expect(hex(results[3].evicted)).toEqual(hex([chain[4]]));
    // An older delta arriving pushes out the newest held one.
    const r = dag.add(chain[0], 0);
    expect(r.status).toBe('ready');
    expect(hex(r.evicted)).toEqual(hex([chain[3]]));
    expect(hex(dag.ready())).toEqual(hex(chain.slice(0, 3)));
  });

  it('over maxPending, deltas that do not connect to the applied set go before one that does', () => {
    const w = new Writer();
    const honest = w.chain(1)[0];
    // a chain whose bottom ancestor nobody has; its deltas sort before the honest one, so the
    // causal rule alone would evict the honest delta on arrival
    const orphans = orphanChain(w, 6);
    const dag = new DeltaDag({ maxPending: 3 });
    for (const d of orphans.slice(1)) dag.add(d, 0);
    expect(dag.pendingCount).toBe(3);
    const r = dag.add(honest, 0);
    expect(r.status).toBe('ready');
    expect(r.evicted).toHaveLength(1);
    expect(hex(dag.ready())).toEqual(hex([honest]));
  });

  const table: { name: string; connected: number; orphans: number; max: number; keepsHonest: boolean }[] = [
    { name: 'one connected among many orphans stays', connected: 1, orphans: 10, max: 4, keepsHonest: true },
    { name: 'connected deltas over the bound by themselves: the newest connected goes', connected: 5, orphans: 0, max: 4, keepsHonest: false },
  ];
  for (const c of table) {
    it(`eviction: ${c.name}`, () => {
      const w = new Writer();
      const honest = w.chain(c.connected);
      const orphans = orphanChain(w, c.orphans + 1).slice(1);
      const dag = new DeltaDag({ maxPending: c.max });
      for (const d of orphans) dag.add(d, 0);
      for (const d of honest) dag.add(d, 0);
      expect(dag.pendingCount).toBe(Math.min(c.max, c.connected + c.orphans));
      expect(dag.has(honest[honest.length - 1].id)).toBe(c.keepsHonest);
      expect(dag.has(honest[0].id)).toBe(true);
    });
  }

  it('over maxPendingBytes, eviction follows the same rule', () => {
    const chain = new Writer().chain(4);
    const size = deltaWireLength(chain[1]);
    const dag = new DeltaDag({ maxPendingBytes: 2 * size + 10 });
    dag.add(chain[2], 0);
    dag.add(chain[1], 0);
    const r = dag.add(chain[3], 0);
    expect(r.status).toBe('evicted');
    expect(dag.pendingCount).toBe(2);
    expect(dag.pendingBytes).toBeLessThanOrEqual(2 * size + 10);
    const huge = new DeltaDag({ maxPendingBytes: 10 });
    expect(huge.add(chain[0], 0).status).toBe('evicted');
  });

  it('expired lists deltas held for timeoutMs or more; re-delivery does not reset the age', () => {
    const chain = new Writer().chain(4);
    const dag = new DeltaDag();
    dag.add(chain[1], 0);
    dag.add(chain[3], 50);
    dag.add(chain[2], 80);
    dag.add(chain[1], 90); // duplicate
    const cases: [number, number, VerifiedDelta[]][] = [
      [59, 60, []],
      [60, 60, [chain[1]]],
      [110, 60, [chain[1], chain[3]]],
      [1000, 60, [chain[1], chain[3], chain[2]]],
    ];
    for (const [now, timeout, want] of cases) expect(hex(dag.expired(now, timeout)), `now=${now}`).toEqual(hex(want));
    expect(hex(dag.drop(dag.expired(60, 60).map((d) => d.id)))).toEqual(hex([chain[1]]));
    expect(dag.drop([chain[1].id])).toEqual([]);
    expect(dag.pendingCount).toBe(2);
  });

  it('resetApplied after catch-up drops covered deltas and lets the rest proceed', async () => {
    const w = new Writer();
    const chain = w.chain(7); // logIndex 0..6
    const dag = new DeltaDag();
    for (const i of [2, 3, 5, 6]) dag.add(chain[i], 0);
    // Catch-up to an announcement at chain[3] (log size 4).
    const dropped = dag.resetApplied({ heads: [chain[3].id], logSize: 4 });
    expect(hex(dropped)).toEqual(hex([chain[2], chain[3]].map((d) => d.id).sort(compareBytes)));
    expect(hex(dag.missingParents())).toEqual(hex([chain[4]]));
    // A late copy of a covered delta counts as applied, by its log index.
    expect(dag.add(chain[1], 10).status).toBe('applied');
    expect(dag.add(chain[4], 10).status).toBe('ready');
    const trie = new FakeTrie();
    applyTo(trie.state, []);
    const rebuilt: State = new Map();
    for (const d of chain.slice(0, 4)) applyTo(rebuilt, d.actions);
    trie.state = rebuilt; // what the change proof delivered
    const report = await dag.applyReady(trie.apply);
    expect(hex(report.checked)).toEqual(hex(chain.slice(4)));
    expect(toHex(fakeRoot(trie.state))).toBe(toHex(chain[6].stateRoot));
  });

  it('dropCoveredBy drops held heads and their held ancestors even without log sizes', () => {
    const w = new Writer();
    const chain = w.chain(4);
    const dag = new DeltaDag();
    for (const d of chain.slice(1)) dag.add(d, 0);
    expect(hex(dag.dropCoveredBy({ heads: [chain[2].id], logSize: 0 }))).toEqual(
      hex([chain[1], chain[2]].map((d) => d.id).sort(compareBytes)),
    );
    expect(hex(dag.ready())).toEqual([]);
    expect(dag.has(chain[3].id)).toBe(true);
  });

  it('starts from a given cover', () => {
    const chain = new Writer().chain(3);
    const dag = new DeltaDag({ applied: { heads: [chain[1].id], logSize: 2 } });
    expect(dag.add(chain[2], 0).status).toBe('ready');
    expect(dag.add(chain[0], 0).status).toBe('applied');
    expect(dag.appliedIsCausalPastOf(chain[2])).toBe(true);
  });
});

describe('bounded memory of applied ids', () => {
  it('a long chain keeps about twice the window of applied ids; old, recent and new deltas are still told apart', async () => {
    const w = new Writer();
    const chain = w.chain(1000);
    const dag = new DeltaDag({ appliedWindow: 50 });
    const trie = new FakeTrie();
    let most = 0;
    for (const d of chain) {
      dag.add(d, 0);
      await dag.applyReady(trie.apply);
      most = Math.max(most, dag.appliedIdCount);
    }
    expect(hex(dag.heads())).toEqual(hex([chain[999]]));
    expect(most).toBeLessThanOrEqual(2 * 50 + 2); // the window twice, genesis and the head
    expect(dag.appliedIdCount).toBeLessThan(200);
    // a forgotten delta (re-gossiped, far behind): applied by its log index, never held again
    expect(dag.isApplied(chain[10].id)).toBe(false);
    expect(dag.add(chain[10], 0)).toEqual({ status: 'applied', evicted: [] });
    expect(dag.pendingCount).toBe(0);
    // a recent one is still remembered by id
    expect(dag.isApplied(chain[990].id)).toBe(true);
    expect(dag.add(chain[990], 0)).toEqual({ status: 'applied', evicted: [] });
    // the next delta still applies on the head, its root checked
    const next = w.chain(1, [chain[999]]);
    expect(dag.add(next[0], 0)).toEqual({ status: 'ready', evicted: [] });
    const report = await dag.applyReady(trie.apply);
    expect(hex(report.checked)).toEqual(hex(next));
  });

  it('a delta naming a forgotten parent becomes ready once that parent is added again', async () => {
    const w = new Writer();
    const chain = w.chain(300);
    const dag = new DeltaDag({ appliedWindow: 20 });
    const trie = new FakeTrie();
    for (const d of chain) {
      dag.add(d, 0);
      await dag.applyReady(trie.apply);
    }
    // a branch off an old delta (another writer replica's concurrent commit, say)
    const branch = w.commit([chain[5], chain[299]], [put('x', '1')]);
    expect(dag.add(branch, 0)).toMatchObject({ status: 'pending', missing: [chain[5].id] });
    expect(dag.add(chain[5], 0)).toEqual({ status: 'applied', evicted: [] }); // gap filling fetched it
    expect(hex(dag.ready())).toEqual(hex([branch]));
  });

  it('rejects a window below 1', () => {
    expect(() => new DeltaDag({ appliedWindow: 0 })).toThrow(RangeError);
  });
});
