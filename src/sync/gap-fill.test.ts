import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { compareBytes, concatBytes, toHex } from '../core/bytes.ts';
import { DeltaDag } from '../core/dag.ts';
import { signDelta, type Delta, type VerifiedDelta } from '../core/delta.ts';
import { EMPTY_ROOT, type KeyChange } from '../core/types.ts';
import { fillGaps, GapFill, type DeltaSource } from './gap-fill.ts';

const sk = sha256(new TextEncoder().encode('proofsync test writer'));
const pk = ed25519.getPublicKey(sk);
const otherSk = sha256(new TextEncoder().encode('someone else'));
const enc = (s: string) => new TextEncoder().encode(s);
const hex = (xs: ({ id: Uint8Array } | Uint8Array)[]) => xs.map((x) => toHex(x instanceof Uint8Array ? x : x.id));
const sortedHex = (xs: ({ id: Uint8Array } | Uint8Array)[]) => hex(xs).sort();

/** A deterministic "root": SHA-256 over the sorted state (the trie comes later). */
function fakeRoot(state: Map<string, string>): Uint8Array {
  const keys = [...state.keys()].sort();
  return keys.length === 0 ? EMPTY_ROOT : sha256(enc(keys.map((k) => `${k}=${state.get(k)};`).join('')));
}

/** A single writer's chain with real state roots; `fork` starts a branch anywhere. */
function makeChain(n: number, tag = 'c', from?: VerifiedDelta, key = sk): VerifiedDelta[] {
  const out: VerifiedDelta[] = [];
  let parent = from;
  let state = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    state = new Map(state);
    const actions: KeyChange[] = [{ key: enc(`${tag}${i % 5}`), value: enc(`${i}`) }];
    state.set(`${tag}${i % 5}`, `${i}`);
    const d = signDelta(
      {
        parents: parent ? [parent.id] : [EMPTY_ROOT],
        actions,
        hlc: { wallMs: 1000 + i, counter: 0 },
        stateRoot: fakeRoot(state),
        logIndex: i,
      },
      key,
    );
    out.push(d);
    parent = d;
  }
  return out;
}

/** An honest peer holding `deltas`, answering in reverse order, recording every request. */
function honestPeer(deltas: Delta[]) {
  const byId = new Map(deltas.map((d) => [toHex(d.id), d]));
  const requests: Uint8Array[][] = [];
  const source: DeltaSource = {
    async fetch(ids) {
      requests.push(ids);
      return ids.flatMap((id) => (byId.has(toHex(id)) ? [byId.get(toHex(id))!] : [])).reverse();
    },
  };
  return { source, requests };
}

const nobody = () => false;

describe('fillGaps against an honest peer', () => {
  it('fills a chain deeper than the per-round limit, one id per round, down to genesis', async () => {
    const chain = makeChain(25);
    const peer = honestPeer(chain);
    const r = await fillGaps([chain[23].id], { source: peer.source, writerPublicKey: pk, knows: nobody, maxPerRound: 4 });
    expect(r.kind).toBe('filled');
    expect(r.rounds).toBe(24);
    expect(sortedHex(r.deltas)).toEqual(sortedHex(chain.slice(0, 24)));
    expect(peer.requests.every((q) => q.length === 1)).toBe(true);
    expect(peer.requests.flat().some((id) => compareBytes(id, EMPTY_ROOT) === 0)).toBe(false);
  });

  it('splits a wide frontier into rounds of at most maxPerRound, breadth-first', async () => {
    // Ten branches off a common root; we hold each branch tip and miss its parent.
    const [root] = makeChain(1, 'r');
    const branches = Array.from({ length: 10 }, (_, i) => makeChain(2, `b${i}`, root));
    const all = [root, ...branches.flat()];
    const peer = honestPeer(all);
    const missing = branches.map((b) => b[0].id);
    const r = await fillGaps(missing, { source: peer.source, writerPublicKey: pk, knows: nobody, maxPerRound: 4 });
    expect(r.kind).toBe('filled');
    // FIFO: the shared parent, found in round 1, queues behind the six branch ids still waiting.
    expect(peer.requests.map((q) => q.length)).toEqual([4, 4, 3]);
    expect(peer.requests.flat().filter((id) => toHex(id) === toHex(root.id)).length).toBe(1);
    expect(sortedHex(r.deltas)).toEqual(sortedHex([root, ...branches.map((b) => b[0])]));
  });

  it('never requests an id twice, nor anything we hold, nor genesis', async () => {
    const [g] = makeChain(1, 'g');
    const a = makeChain(3, 'a', g);
    const b = makeChain(3, 'b', g);
    const merge = signDelta(
      { parents: [a[2].id, b[2].id], actions: [], hlc: { wallMs: 5000, counter: 0 }, stateRoot: new Uint8Array(32), logIndex: 9 },
      sk,
    );
    const peer = honestPeer([g, ...a, ...b, merge]);
    const held = new Set([toHex(a[0].id)]); // we already hold a[0]
    const r = await fillGaps([merge.id, merge.id, a[2].id, EMPTY_ROOT], {
      source: peer.source,
      writerPublicKey: pk,
      knows: (id) => held.has(toHex(id)),
    });
    expect(r.kind).toBe('filled');
    const asked = peer.requests.flat().map(toHex);
    expect(new Set(asked).size).toBe(asked.length);
    expect(asked).not.toContain(toHex(a[0].id));
    expect(asked).not.toContain(toHex(EMPTY_ROOT));
    expect(asked.sort()).toEqual(sortedHex([merge, a[1], a[2], ...b, g]));
  });

  it('feeds a DeltaDag: missing parents filled, everything applies with checked roots', async () => {
    const chain = makeChain(12);
    const dag = new DeltaDag();
    dag.add(chain[11], 0);
    dag.add(chain[7], 0);
    const peer = honestPeer(chain);
    const r = await fillGaps(dag.missingParents(), { source: peer.source, writerPublicKey: pk, knows: (id) => dag.knows(id) });
    expect(r.kind).toBe('filled');
    expect(peer.requests.flat().map(toHex)).not.toContain(toHex(chain[7].id));
    for (const d of r.deltas) dag.add(d, 1);
    expect(dag.missingParents()).toEqual([]);
    const state = new Map<string, string>();
    const report = await dag.applyReady(async (d) => {
      for (const a of d.actions) state.set(new TextDecoder().decode(a.key), new TextDecoder().decode(a.value!));
      return fakeRoot(state);
    });
    expect(report.kind).toBe('applied');
    expect(hex(report.checked)).toEqual(hex(chain));
  });
});

describe('fillGaps against a scripted malicious or failing peer', () => {
  const chain = makeChain(6);
  const tip = chain[5];
  const opts = { writerPublicKey: pk, knows: nobody };

  type Script = (ids: Uint8Array[], round: number) => Delta[];
  const scripted = (script: Script): DeltaSource => {
    let round = 0;
    return { fetch: async (ids) => script(ids, round++) };
  };
  const lookup = (id: Uint8Array) => chain.find((d) => toHex(d.id) === toHex(id))!;
  const other = makeChain(6, 'x');

  const cases: {
    name: string;
    script: Script;
    reason: string;
    offences: string[];
  }[] = [
    {
      name: 'forged id: another delta labelled with the requested id',
      script: (ids) => ids.map((id) => ({ ...other[3], id })),
      reason: 'peer-lacks-deltas',
      offences: ['unrequested'],
    },
    {
      name: 'forged cycle: deltas claiming ids that point back at each other',
      script: (ids) => ids.map((id) => ({ ...other[2], id, parents: [tip.id] })),
      reason: 'peer-lacks-deltas',
      offences: ['unrequested'],
    },
    {
      name: 'forged signature: right content, signed by another key',
      script: (ids) => ids.map((id) => signDelta(lookup(id), otherSk)),
      reason: 'peer-lacks-deltas',
      offences: ['bad-signature'],
    },
    {
      name: 'withholds one delta in the middle of the chain',
      script: (ids) => ids.filter((id) => toHex(id) !== toHex(chain[2].id)).map(lookup),
      reason: 'peer-lacks-deltas',
      offences: [],
    },
    {
      name: 'answers with nothing',
      script: () => [],
      reason: 'peer-lacks-deltas',
      offences: [],
    },
    {
      name: 'pads the answer beyond the request: only as many items as requested are examined',
      script: (ids) => [other[0], lookup(ids[0]), lookup(ids[0]), other[1]],
      reason: 'peer-lacks-deltas',
      offences: ['oversized-response', 'unrequested'],
    },
    {
      name: 'returns a malformed object',
      script: () => [{ parents: 'nope' } as unknown as Delta],
      reason: 'peer-lacks-deltas',
      offences: ['malformed'],
    },
  ];
  it.each(cases)('$name → $reason', async ({ script, reason, offences }) => {
    const r = await fillGaps([chain[4].id], { ...opts, source: scripted(script) });
    expect(r.kind).toBe('needs-catch-up');
    if (r.kind !== 'needs-catch-up') return;
    expect(r.reason).toBe(reason);
    expect([...new Set(r.offences.map((o) => o.kind))]).toEqual(offences);
    // Nothing unverified is ever returned: every delta is genuinely from the chain.
    const genuine = new Set(hex(chain));
    for (const d of r.deltas) expect(genuine.has(toHex(d.id))).toBe(true);
    expect(r.missing.length).toBeGreaterThan(0);
  });

  it('only as many items as ids requested are examined; a repeat is an offence and displaces', async () => {
    // One id requested, two items sent: the extra in front is examined, the real one is not.
    const r = await fillGaps([chain[0].id], { ...opts, source: scripted((ids) => [other[4], lookup(ids[0])]) });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'peer-lacks-deltas', deltas: [] });
    expect(r.offences.map((o) => o.kind)).toEqual(['oversized-response', 'unrequested']);
    // Two ids requested, the first sent twice: the repeat is unrequested, the second id lacks.
    const r2 = await fillGaps([chain[1].id, chain[0].id], {
      ...opts,
      source: scripted((ids) => [lookup(ids[0]), { ...lookup(ids[0]) }]),
    });
    expect(r2).toMatchObject({ kind: 'needs-catch-up', reason: 'peer-lacks-deltas' });
    expect(r2.offences).toEqual([{ kind: 'unrequested', id: chain[1].id }]);
    expect(hex(r2.deltas)).toEqual(hex([chain[1]]));
    expect(hex(r2.kind === 'needs-catch-up' ? r2.missing : [])).toEqual(hex([chain[0]]));
  });

  it('a gap larger than maxTotal asks for catch-up without fetching past the limit', async () => {
    const long = makeChain(50);
    const peer = honestPeer(long);
    const r = await fillGaps([long[48].id], { ...opts, source: peer.source, maxTotal: 20 });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'gap-too-large', requested: 20 });
    expect(peer.requests.flat().length).toBe(20);
    // A wide frontier is refused before the round that would overflow.
    const wide = await fillGaps(long.slice(0, 30).map((d) => d.id), { ...opts, source: peer.source, maxTotal: 20 });
    expect(wide).toMatchObject({ kind: 'needs-catch-up', reason: 'gap-too-large', requested: 0, rounds: 0 });
  });

  it('a request timing out is a timeout', async () => {
    const source: DeltaSource = {
      fetch: async () => {
        throw new DOMException('timed out', 'TimeoutError');
      },
    };
    const r = await fillGaps([tip.id], { ...opts, source, requestTimeoutMs: 5_000 });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'timeout', missing: [tip.id] });
  });

  it('the overall deadline is checked between rounds on the injected clock', async () => {
    let now = 0;
    const peer = honestPeer(chain);
    const source: DeltaSource = {
      fetch: (ids, o) => {
        now += 100;
        return peer.source.fetch(ids, o);
      },
    };
    const r = await fillGaps([tip.id], { ...opts, source, deadlineMs: 250, now: () => now });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'timeout', rounds: 3 });
    expect(hex(r.deltas)).toEqual(hex([chain[5], chain[4], chain[3]]));
    expect(hex(r.kind === 'needs-catch-up' ? r.missing : [])).toEqual(hex([chain[2]]));
  });

  it('the caller aborting is aborted, and the signal reaches the source', async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const source: DeltaSource = {
      fetch: async (_ids, o) => {
        seen = o.signal;
        controller.abort(new Error('page closed'));
        throw o.signal!.reason;
      },
    };
    const r = await fillGaps([tip.id], { ...opts, source, signal: controller.signal, requestTimeoutMs: 60_000 });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'aborted' });
    expect(seen?.aborted).toBe(true);
    const pre = await fillGaps([tip.id], { ...opts, source, signal: controller.signal });
    expect(pre).toMatchObject({ kind: 'needs-catch-up', reason: 'aborted', rounds: 0 });
  });

  it('a source that fails otherwise is source-failed, with the cause', async () => {
    const cause = new Error('stream reset');
    const r = await fillGaps([tip.id], { ...opts, source: { fetch: async () => Promise.reject(cause) } });
    expect(r).toMatchObject({ kind: 'needs-catch-up', reason: 'source-failed', cause });
  });
});

describe('GapFill state machine', () => {
  it('steps without a network: request, receive, next request, filled', () => {
    const chain = makeChain(3);
    const fill = new GapFill([chain[1].id], { writerPublicKey: pk, knows: nobody });
    expect(hex(fill.nextRequest()!)).toEqual(hex([chain[1]]));
    fill.receive([chain[1]]);
    expect(hex(fill.nextRequest()!)).toEqual(hex([chain[0]]));
    fill.receive([chain[0]]);
    expect(fill.nextRequest()).toBeUndefined();
    expect(fill.result).toMatchObject({ kind: 'filled', rounds: 2, requested: 2 });
  });

  it('nothing missing is filled at once; bad options are RangeErrors', () => {
    const fill = new GapFill([EMPTY_ROOT], { writerPublicKey: pk, knows: nobody });
    expect(fill.nextRequest()).toBeUndefined();
    expect(fill.result).toMatchObject({ kind: 'filled', rounds: 0, deltas: [] });
    expect(() => new GapFill([], { writerPublicKey: pk, knows: nobody, maxPerRound: 0 })).toThrow(
      'expected maxPerRound to be a positive integer, got 0',
    );
  });

  it('receives only verified copies: the claimed id on a valid delta is replaced by the derived one', () => {
    const [d] = makeChain(1);
    const fill = new GapFill([d.id], { writerPublicKey: pk, knows: nobody });
    fill.nextRequest();
    fill.receive([{ ...d, id: concatBytes(new Uint8Array(31), Uint8Array.of(1)) }]);
    fill.nextRequest();
    expect(fill.result?.kind).toBe('filled');
    expect(hex(fill.result!.deltas)).toEqual(hex([d]));
  });
});

describe('fillGaps and chains given up on', () => {
  const chain = makeChain(30, 'a');
  const deadAt = (n: number) => (id: Uint8Array) => toHex(id) === toHex(chain[n].id);
  const cases: { name: string; want: number; dead?: number; maxTotal?: number; kind: string; reason?: string; requested: number }[] = [
    { name: 'a walk that reaches a remembered id stops there, without asking for it', want: 28, dead: 20, kind: 'needs-catch-up', reason: 'abandoned-chain', requested: 8 },
    { name: 'a remembered id among the first missing stops before any request', want: 20, dead: 20, kind: 'needs-catch-up', reason: 'abandoned-chain', requested: 0 },
    { name: 'a chain of other ids fills as before', want: 10, dead: 20, kind: 'filled', requested: 11 },
    { name: 'a walk beyond the limit stops as too large', want: 28, maxTotal: 5, kind: 'needs-catch-up', reason: 'gap-too-large', requested: 5 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const peer = honestPeer(chain);
      const r = await fillGaps([chain[c.want].id], { source: peer.source, writerPublicKey: pk, knows: nobody, maxPerRound: 1, maxTotal: c.maxTotal, abandoned: c.dead === undefined ? undefined : deadAt(c.dead) });
      expect(r.kind).toBe(c.kind);
      if (r.kind === 'needs-catch-up') expect(r.reason).toBe(c.reason);
      expect(r.requested).toBe(c.requested);
      expect(peer.requests.flat().some((id) => c.dead !== undefined && deadAt(c.dead)(id))).toBe(false);
    });
  }

  it('a fill that stops names every id it walked, with log-index bounds from the deltas', async () => {
    const peer = honestPeer(chain.slice(20));
    const r = await fillGaps([chain[25].id], { source: peer.source, writerPublicKey: pk, knows: nobody, maxPerRound: 2 });
    expect(r.kind === 'needs-catch-up' && r.reason).toBe('peer-lacks-deltas');
    if (r.kind !== 'needs-catch-up') return;
    const bounds = new Map(r.walked.map((w) => [toHex(w.id), w.below]));
    // fetched: 25..20, each bounded by its own index + 1; wanted: 19, bounded by its child's index
    for (let i = 20; i <= 25; i++) expect(bounds.get(toHex(chain[i].id))).toBe(i + 1);
    expect(bounds.get(toHex(chain[19].id))).toBe(20);
  });
});
