import { describe, expect, it } from 'vitest';
import { MerkleTrie } from '../core/trie.ts';
import { MemoryStore } from '../core/store.ts';
import { rangeProof } from '../core/proof.ts';
import { ProofError } from '../core/errors.ts';
import type { ProofNode, RangeProof } from '../core/types.ts';
import { randomPuts, seededRandom } from '../sync/state/testing.ts';
import { singleKeyRequest, verifySingleKey } from './single-key.ts';

async function fixture() {
  const trie = await MerkleTrie.open(new MemoryStore());
  const puts = randomPuts(seededRandom(7), 300);
  await trie.commit(puts);
  const present = puts[17];
  const absent = new Uint8Array([...present.key, 0x42]); // extends a present key: a hard absence case
  const answer = (key: Uint8Array): Promise<RangeProof> => {
    const q = singleKeyRequest(trie.root, key);
    return rangeProof(trie.view(), q.startKey, q.endKey, q.keyLimit);
  };
  return { trie, present, absent, answer, other: puts[18] };
}

const cloneNode = (n: ProofNode): ProofNode => ({ key: n.key.slice(), valueOrHash: n.valueOrHash?.slice(), children: new Map([...n.children].map(([i, id]) => [i, id.slice()])) });
const clone = (p: RangeProof): RangeProof => ({
  startProof: p.startProof.map(cloneNode),
  endProof: p.endProof.map(cloneNode),
  keyValues: p.keyValues.map((kv) => ({ key: kv.key.slice(), value: kv.value.slice() })),
});

describe('verifySingleKey', () => {
  it('an honest answer proves a present key and its value', async () => {
    const { trie, present, answer } = await fixture();
    expect(verifySingleKey(trie.root, present.key, await answer(present.key))).toEqual(present.value);
  });

  it('an honest answer proves an absent key', async () => {
    const { trie, absent, answer } = await fixture();
    expect(verifySingleKey(trie.root, absent, await answer(absent))).toBeUndefined();
  });

  // A lying peer: each case must be rejected with a ProofError (never accepted as another fact).
  const tampers: [string, (p: RangeProof, f: Awaited<ReturnType<typeof fixture>>) => RangeProof][] = [
    ['value changed', (p) => ((p.keyValues[0].value[0] ^= 1), p)],
    ['value dropped (claims absence)', (p) => ((p.keyValues = []), p)],
    ['another key answered', (p, f) => ((p.keyValues = [{ key: f.other.key, value: f.other.value! }]), p)],
    ['a second key-value added', (p, f) => (p.keyValues.push({ key: f.other.key, value: f.other.value! }), p)],
    ['a child id in the end proof flipped', (p) => {
      const n = p.endProof.find((x) => x.children.size > 0)!;
      const [i, id] = [...n.children][0];
      id[0] ^= 1;
      n.children.set(i, id);
      return p;
    }],
    ['end proof truncated', (p) => ((p.endProof = p.endProof.slice(0, -1)), p)],
    ['end proof emptied', (p) => ((p.endProof = []), p)],
    ['root node value forged', (p) => ((p.endProof[0].valueOrHash = new Uint8Array(32).fill(9)), p)],
  ];
  for (const [name, tamper] of tampers) {
    it(`rejects a tampered proof of a present key: ${name}`, async () => {
      const f = await fixture();
      const bad = tamper(clone(await f.answer(f.present.key)), f);
      expect(() => verifySingleKey(f.trie.root, f.present.key, bad)).toThrow(ProofError);
    });
  }

  it('rejects a forged value for an absent key', async () => {
    const f = await fixture();
    const p = clone(await f.answer(f.absent));
    p.keyValues = [{ key: f.absent, value: new Uint8Array([1, 2, 3]) }];
    expect(() => verifySingleKey(f.trie.root, f.absent, p)).toThrow(ProofError);
  });

  it('rejects an honest proof against another root', async () => {
    const f = await fixture();
    const p = await f.answer(f.present.key);
    expect(() => verifySingleKey(new Uint8Array(32).fill(1), f.present.key, p)).toThrow(ProofError);
  });

  it('checks its arguments', () => {
    expect(() => singleKeyRequest(new Uint8Array(31), new Uint8Array(1))).toThrow('expected 32-byte root, got 31');
  });
});
