import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MerkleDatabase } from './database.ts';
import { MemoryStore } from './store.ts';
import { verifyChangeProof, verifyRangeProof, verifyKeyProof, keyProof } from './proof.ts';
import { compareBytes, toHex } from './bytes.ts';
import { keyToPath } from './path.ts';
import { ProofError } from './errors.ts';
import type { KeyValue, RangeProof, ProofNode, ChangeProof } from './types.ts';

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((k) => k.map((b) => b & 0x31));
const kvsArb = fc.uniqueArray(fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 40 }) }), {
  selector: (kv) => toHex(kv.key),
  minLength: 1,
  maxLength: 120,
});
const boundArb = fc.option(keyArb, { nil: undefined });

async function dbOf(kvs: KeyValue[]) {
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.commit(kvs.map((kv) => ({ key: kv.key, value: kv.value })));
  return db;
}

function truth(kvs: KeyValue[], start?: Uint8Array, end?: Uint8Array): KeyValue[] {
  return kvs
    .filter((kv) => (!start || compareBytes(kv.key, start) >= 0) && (!end || compareBytes(kv.key, end) <= 0))
    .sort((a, b) => compareBytes(a.key, b.key));
}

const hexKvs = (kvs: KeyValue[]) => kvs.map((kv) => `${toHex(kv.key)}=${toHex(kv.value)}`);

function bounds(a?: Uint8Array, b?: Uint8Array): [Uint8Array | undefined, Uint8Array | undefined] {
  return a && b && compareBytes(a, b) > 0 ? [b, a] : [a, b];
}

describe('range proofs', () => {
  it('every generated proof verifies and yields exactly the true key-values', async () => {
    await fc.assert(
      fc.asyncProperty(kvsArb, boundArb, boundArb, fc.integer({ min: 1, max: 40 }), async (kvs, a, b, limit) => {
        const [start, end] = bounds(a, b);
        const db = await dbOf(kvs);
        const proof = await db.rangeProof(db.root, { start, end, keyLimit: limit });
        verifyRangeProof(proof, { root: db.root, start, end, keyLimit: limit });
        expect(hexKvs(proof.keyValues)).toEqual(hexKvs(truth(kvs, start, end).slice(0, limit)));
      }),
      { numRuns: 200, seed: 1 },
    );
  });

  it('a tampered proof is rejected or proves only true facts', async () => {
    const outcome = { accepted: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(kvsArb, boundArb, boundArb, fc.integer({ min: 1, max: 40 }), fc.nat(), fc.nat(), async (kvs, a, b, limit, which, pick) => {
        const [start, end] = bounds(a, b);
        const db = await dbOf(kvs);
        const proof = await db.rangeProof(db.root, { start, end, keyLimit: limit });
        const tampered = tamperRange(proof, which, pick);
        if (!tampered) return;
        let accepted = true;
        try {
          verifyRangeProof(tampered, { root: db.root, start, end, keyLimit: limit });
        } catch (err) {
          expect(err).toBeInstanceOf(ProofError);
          accepted = false;
        }
        outcome[accepted ? 'accepted' : 'rejected']++;
        if (accepted) {
          const got = tampered.keyValues;
          const upTo = got.length ? got[got.length - 1].key : end;
          expect(hexKvs(got)).toEqual(hexKvs(truth(kvs, start, upTo)));
        }
      }),
      { numRuns: 400, seed: 2 },
    );
    // most mutations must be caught; the accepted ones are the legitimate shorter-range cases
    expect(outcome.rejected).toBeGreaterThan(outcome.accepted * 3);
  });
});

describe('change proofs', () => {
  it('every generated change proof verifies against the old local state and yields the new state', async () => {
    await fc.assert(
      fc.asyncProperty(kvsArb, kvsArb, boundArb, boundArb, fc.integer({ min: 1, max: 40 }), async (before, after, a, b, limit) => {
        const [start, end] = bounds(a, b);
        const db = await dbOf(before);
        const r1 = db.root;
        const changes = [
          ...before.filter((kv) => !after.some((x) => toHex(x.key) === toHex(kv.key))).map((kv) => ({ key: kv.key, value: undefined })),
          ...after,
        ];
        await db.commit(changes);
        const r2 = db.root;
        const res = await db.changeProof(r1, r2, { start, end, keyLimit: limit });
        expect(res.type).toBe('change');
        const proof = res.proof as ChangeProof;
        const local = (s?: Uint8Array, e?: Uint8Array) => truth(before, s, e);
        await verifyChangeProof(proof, { root: r2, start, end, keyLimit: limit, local });
        const localDb = await dbOf(before);
        await verifyChangeProof(proof, { root: r2, start, end, keyLimit: limit, localTrie: localDb.trie.view() });
        const applied = localDb.trie.view();
        await verifyChangeProof(proof, { root: r2, start, end, keyLimit: limit, applyTo: applied });
        // applying the changes to the local range gives the new state up to the last change
        const upTo = proof.keyChanges.length ? proof.keyChanges[proof.keyChanges.length - 1].key : end;
        const inView = (await applied.range(start, upTo)).map((kv) => [toHex(kv.key), toHex(kv.value)]);
        expect(inView.sort()).toEqual(truth(after, start, upTo).map((kv) => [toHex(kv.key), toHex(kv.value)]).sort());
        const state = new Map(truth(before, start, upTo).map((kv) => [toHex(kv.key), toHex(kv.value)]));
        for (const c of proof.keyChanges) {
          if (c.value === undefined) state.delete(toHex(c.key));
          else state.set(toHex(c.key), toHex(c.value));
        }
        const expected = truth(after, start, upTo).map((kv) => [toHex(kv.key), toHex(kv.value)]);
        expect([...state.entries()].sort()).toEqual(expected.sort());
      }),
      { numRuns: 150, seed: 3 },
    );
  });
});

describe('tampered change proofs', () => {
  it('are rejected or prove only true facts, identically with a local key list, a local trie and a trie they are applied to', async () => {
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(kvsArb, kvsArb, fc.integer({ min: 1, max: 40 }), fc.nat(), fc.nat(), async (before, after, limit, which, pick) => {
        const db = await dbOf(before);
        const r1 = db.root;
        const gone = before.filter((kv) => !after.some((x) => toHex(x.key) === toHex(kv.key)));
        await db.commit([...gone.map((kv) => ({ key: kv.key, value: undefined })), ...after]);
        const res = await db.changeProof(r1, db.root, { keyLimit: limit });
        const p = res.proof as ChangeProof;
        const kc = p.keyChanges.map((c) => ({ ...c }));
        const ep = p.endProof.map(cloneNode);
        switch (which % 6) {
          case 0: if (!kc.length) return; kc.splice(pick % kc.length, 1); break;
          case 1: if (!kc.length) return; kc[pick % kc.length].value = kc[pick % kc.length].value ? undefined : new Uint8Array([4]); break;
          case 2: kc.splice(pick % (kc.length + 1), 0, { key: new Uint8Array([pick & 0x31]), value: new Uint8Array([2]) }); break;
          case 3: if (!ep.length) return; ep.splice(pick % ep.length, 1); break;
          case 4: { const n = ep.find((x) => x.children.size); if (!n) return; const [k, v] = [...n.children][pick % n.children.size]; n.children.set(k, v.map((x) => x ^ 1)); break; }
          case 5: if (!kc.length) return; kc.pop(); break;
        }
        const tampered = { startProof: p.startProof, endProof: ep, keyChanges: kc };
        const outcome = async (o: Parameters<typeof verifyChangeProof>[1]) => {
          try {
            await verifyChangeProof(tampered, o);
            return 'ok';
          } catch (err) {
            expect(err).toBeInstanceOf(ProofError);
            return (err as Error).name;
          }
        };
        const a = await outcome({ root: db.root, keyLimit: limit, local: (s, e) => truth(before, s, e) });
        const b = await outcome({ root: db.root, keyLimit: limit, localTrie: (await dbOf(before)).trie.view() });
        expect(b).toBe(a);
        const c = await outcome({ root: db.root, keyLimit: limit, applyTo: (await dbOf(before)).trie.view() });
        expect(c).toBe(a);
        if (a !== 'ok') rejected++;
        else {
          const upTo = kc.length ? kc[kc.length - 1].key : undefined;
          const state = new Map(truth(before, undefined, upTo).map((kv) => [toHex(kv.key), toHex(kv.value)]));
          for (const c of kc) c.value === undefined ? state.delete(toHex(c.key)) : state.set(toHex(c.key), toHex(c.value));
          expect([...state.entries()].sort()).toEqual(truth(after, undefined, upTo).map((kv) => [toHex(kv.key), toHex(kv.value)]).sort());
        }
      }),
      { numRuns: 300, seed: 6 },
    );
    expect(rejected).toBeGreaterThan(100);
  });
});

describe('single-key proofs', () => {
  it('inclusion and exclusion proofs verify; a wrong value is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(kvsArb, keyArb, async (kvs, key) => {
        const db = await dbOf(kvs);
        const { value, proof } = await keyProof(db.trie.view(), key);
        const expected = kvs.find((kv) => toHex(kv.key) === toHex(key))?.value;
        expect(value && toHex(value)).toBe(expected && toHex(expected));
        verifyKeyProof(db.root, key, value, proof);
        const wrong = value ? (value.length ? undefined : new Uint8Array([1])) : new Uint8Array([7]);
        expect(() => verifyKeyProof(db.root, key, wrong, proof)).toThrow(ProofError);
      }),
      { numRuns: 200, seed: 4 },
    );
  });
});

// Mutations of a proof; returns undefined when the mutation does not apply.
function tamperRange(p: RangeProof, which: number, pick: number): RangeProof | undefined {
  const kv = p.keyValues.map((x) => ({ ...x }));
  const sp = p.startProof.map(cloneNode);
  const ep = p.endProof.map(cloneNode);
  const choose = <T>(xs: T[]) => xs[pick % xs.length];
  switch (which % 12) {
    case 0: // drop a key-value
      if (!kv.length) return;
      kv.splice(pick % kv.length, 1);
      break;
    case 1: // add a key-value
      kv.splice(pick % (kv.length + 1), 0, { key: new Uint8Array([pick & 255, 1]), value: new Uint8Array([1]) });
      break;
    case 2: // alter a value
      if (!kv.length) return;
      choose(kv).value = new Uint8Array([...choose(kv).value, 9]);
      break;
    case 3: // reorder
      if (kv.length < 2) return;
      [kv[0], kv[1]] = [kv[1], kv[0]];
      break;
    case 4: // proof node digest altered
    case 5: {
      const nodes = [...sp, ...ep];
      if (!nodes.length) return;
      const n = choose(nodes);
      n.valueOrHash = n.valueOrHash ? undefined : new Uint8Array([3]);
      break;
    }
    case 6: {
      // child id altered
      const nodes = [...sp, ...ep].filter((n) => n.children.size);
      if (!nodes.length) return;
      const n = choose(nodes);
      const idx = [...n.children.keys()][pick % n.children.size];
      const id = n.children.get(idx)!.slice();
      id[0] ^= 1;
      n.children.set(idx, id);
      break;
    }
    case 7: {
      // node key altered
      const nodes = [...sp, ...ep];
      if (!nodes.length) return;
      const n = choose(nodes);
      n.key = Uint8Array.from([...n.key, pick % 16]);
      break;
    }
    case 8: // node removed
      if (ep.length) ep.splice(pick % ep.length, 1);
      else return;
      break;
    case 9: // node duplicated
      if (ep.length) ep.splice(pick % ep.length, 0, cloneNode(ep[pick % ep.length]));
      else return;
      break;
    case 10: // proofs swapped
      return { startProof: ep, endProof: sp, keyValues: kv };
    case 11: // drop trailing key-values (a valid proof of a shorter range only with its own end proof)
      if (!kv.length) return;
      kv.pop();
      break;
  }
  return { startProof: sp, endProof: ep, keyValues: kv };
}

function cloneNode(n: ProofNode): ProofNode {
  return { key: n.key.slice(), valueOrHash: n.valueOrHash?.slice(), children: new Map([...n.children].map(([k, v]) => [k, v.slice()])) };
}

describe('grafting proven subtrees', () => {
  it('gives the same trie as putting the key-values one by one', async () => {
    let grafted = 0;
    await fc.assert(
      fc.asyncProperty(kvsArb, kvsArb, boundArb, boundArb, fc.integer({ min: 1, max: 60 }), async (remoteKvs, localKvs, a, b, limit) => {
        const [start, end] = bounds(a, b);
        const remote = await dbOf(remoteKvs);
        const proof = await remote.rangeProof(remote.root, { start, end, keyLimit: limit });
        const proven = verifyRangeProof(proof, { root: remote.root, start, end, keyLimit: limit }, true);
        const upTo = proof.keyValues.length ? proof.keyValues[proof.keyValues.length - 1].key : end;
        // the local side holds only keys outside [start, upTo]
        const outside = localKvs.filter((kv) => (start && compareBytes(kv.key, start) < 0) || (upTo && compareBytes(kv.key, upTo) > 0));
        const viaGraft = await MerkleDatabase.open(new MemoryStore());
        await viaGraft.commit(outside.map((kv) => ({ key: kv.key, value: kv.value })));
        const viaPuts = await MerkleDatabase.open(new MemoryStore());
        await viaPuts.commit(outside.map((kv) => ({ key: kv.key, value: kv.value })));
        const v = viaGraft.trie.view();
        try {
          await v.graft(proven);
        } catch (err) {
          expect((err as Error).name).toBe('GraftConflict');
          return;
        }
        grafted++;
        await viaGraft.trie.commitView(v);
        await viaPuts.commit(proof.keyValues.map((kv) => ({ key: kv.key, value: kv.value })));
        expect(toHex(viaGraft.root)).toBe(toHex(viaPuts.root));
        const a1 = [];
        for await (const kv of viaGraft.entries()) a1.push(`${toHex(kv.key)}=${toHex(kv.value)}`);
        const a2 = [];
        for await (const kv of viaPuts.entries()) a2.push(`${toHex(kv.key)}=${toHex(kv.value)}`);
        expect(a1).toEqual(a2);
        // and the grafted trie keeps working: a further commit matches too
        const extra = [{ key: new Uint8Array([0x11]), value: new Uint8Array([5]) }];
        await viaGraft.commit(extra);
        await viaPuts.commit(extra);
        expect(toHex(viaGraft.root)).toBe(toHex(viaPuts.root));
      }),
      { numRuns: 250, seed: 8 },
    );
    expect(grafted).toBeGreaterThan(150);
  });

  it('a grafted view reads the proven values, and later changes in the same view win', async () => {
    const kvs = Array.from({ length: 300 }, (_, i) => ({ key: Uint8Array.of(i >> 8, i & 255, 7), value: Uint8Array.of(i & 255, 1, 2) }));
    const remote = await dbOf(kvs);
    const proof = await remote.rangeProof(remote.root, { keyLimit: 2048 });
    const proven = verifyRangeProof(proof, { root: remote.root, keyLimit: 2048 }, true);
    const db = await MerkleDatabase.open(new MemoryStore());
    const v = db.trie.view();
    await v.graft(proven);
    // the grafted nodes are walked in the view as the prover's (a proof path through them)
    const path = keyToPath(kvs[150].key);
    const strip = (ns: ProofNode[]) => ns.map((n) => [toHex(n.key), n.valueOrHash && toHex(n.valueOrHash), [...n.children].map(([i, id]) => `${i}:${toHex(id)}`)]);
    expect(strip(await v.proofPath(path))).toEqual(strip(await remote.trie.view().proofPath(path)));
    expect(toHex((await v.get(kvs[5].key))!)).toBe(toHex(kvs[5].value));
    expect((await v.getMany([kvs[0].key, Uint8Array.of(9), kvs[299].key])).map((x) => x && toHex(x))).toEqual([toHex(kvs[0].value), undefined, toHex(kvs[299].value)]);
    // a put and a delete of grafted keys in the same view override the grafted values
    await v.put(kvs[10].key, Uint8Array.of(0xee));
    await v.delete(kvs[11].key);
    expect(toHex((await v.get(kvs[10].key))!)).toBe('ee');
    expect(await v.get(kvs[11].key)).toBeUndefined();
    const listed = [];
    for await (const kv of v.entries(kvs[9].key, kvs[12].key)) listed.push(toHex(kv.key));
    expect(listed).toEqual([kvs[9].key, kvs[10].key, kvs[12].key].map(toHex));
    await db.trie.commitView(v);
    const expected = await dbOf(kvs.filter((_, i) => i !== 11).map((kv, i) => (i === 10 ? { key: kv.key, value: Uint8Array.of(0xee) } : kv)));
    expect(toHex(db.root)).toBe(toHex(expected.root));
    expect(toHex((await db.get(kvs[10].key))!)).toBe('ee');
    expect(await db.get(kvs[11].key)).toBeUndefined();
  });
});
