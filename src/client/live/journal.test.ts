/**
 * The journal on its own: groups recorded on a real trie view over a memory store, reads of the
 * journaled state (later groups over earlier ones, deletes, keys it never touched), a rebuilt
 * view after a mismatch, and the hand-over to a checkpoint. The apply loop's use of it (when a
 * group is journaled, checkpoints, reloads) is covered by follower.test.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { signDelta, type VerifiedDelta } from '../../core/delta.ts';
import { MemoryStore } from '../../core/store.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { EMPTY_ROOT, type KeyChange } from '../../core/types.ts';
import { Journal } from './journal.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : b);
const sk = sha256(enc('journal test writer'));

function delta(i: number, actions: KeyChange[]): VerifiedDelta {
  return signDelta({ parents: [EMPTY_ROOT], actions, hlc: { wallMs: 1000 + i, counter: 0 }, stateRoot: EMPTY_ROOT, logIndex: i }, sk);
}

async function setup() {
  const trie = await MerkleTrie.open(new MemoryStore());
  await trie.commit([{ key: enc('a'), value: enc('stored a') }, { key: enc('b'), value: enc('stored b') }]);
  return trie;
}

/** A journal holding one group that sets `a` to `a1`, on a view of `trie`. */
async function oneGroup(trie: MerkleTrie) {
  const j = new Journal();
  const view = trie.view();
  const g = [[{ key: enc('a'), value: enc('a1') }]];
  await view.apply(g[0]);
  const d = delta(0, g[0]);
  j.add(view, [d], g);
  return { j, view, d };
}

describe('journal', () => {
  it('is closed until a group is added: no view, no root, reads fall through to the store', async () => {
    const j = new Journal();
    expect(j.view).toBeUndefined();
    expect(j.root).toBeUndefined();
    expect(j.size).toBe(0);
    expect(j.read(enc('a'))).toBeUndefined();
    expect(j.take()).toBeUndefined();
  });

  it('reads the journaled values: later groups over earlier ones, deletes as null, untouched keys undefined', async () => {
    const trie = await setup();
    const j = new Journal();
    const view = trie.view();
    const g1 = [[{ key: enc('a'), value: enc('a1') }], [{ key: enc('c'), value: enc('c1') }]];
    for (const c of g1) await view.apply(c);
    j.add(view, [delta(0, g1[0]), delta(1, g1[1])], g1);
    expect(dec(j.read(enc('a')))).toBe('a1');
    // a second group on the same view, read after the first was indexed
    const g2 = [[{ key: enc('a'), value: enc('a2') }, { key: enc('c'), value: undefined }]];
    for (const c of g2) await view.apply(c);
    j.add(view, [delta(2, g2[0])], g2);
    expect(dec(j.read(enc('a')))).toBe('a2');
    expect(j.read(enc('c'))).toBeNull();
    expect(j.read(enc('b'))).toBeUndefined();
    expect(j.size).toBe(3);
    expect(j.changes).toEqual([...g1, ...g2]);
    expect(j.root).toEqual(view.root);
    // the stored state is untouched until a checkpoint writes the view
    expect(dec(await trie.view().get(enc('a')))).toBe('stored a');
  });

  it('a view rebuilt after a mismatch replaces the open one; a closed journal stays closed', async () => {
    const trie = await setup();
    const j = new Journal();
    j.replaceView(trie.view());
    expect(j.view).toBeUndefined();
    const v1 = trie.view();
    const g = [[{ key: enc('x'), value: enc('x1') }]];
    await v1.apply(g[0]);
    j.add(v1, [delta(0, g[0])], g);
    const rebuilt = trie.view();
    for (const c of j.changes) await rebuilt.apply(c);
    j.replaceView(rebuilt);
    expect(j.view).toBe(rebuilt);
    expect(rebuilt.root).toEqual(v1.root);
  });

  it('take hands over the view and the deltas and closes the journal', async () => {
    const trie = await setup();
    const { j, view, d } = await oneGroup(trie);
    j.read(enc('a')); // indexed
    const taken = j.take();
    expect(taken?.view).toBe(view);
    expect(taken?.deltas).toEqual([d]);
    expect(j.view).toBeUndefined();
    expect(j.size).toBe(0);
    expect(j.read(enc('a'))).toBeUndefined();
    // the checkpoint writes it: the store has the journaled value
    await trie.stageView(view, []).durable;
    expect(dec(await trie.view().get(enc('a')))).toBe('a1');
  });

  it('clear forgets everything (a failed write)', async () => {
    const { j } = await oneGroup(await setup());
    j.clear();
    expect(j.view).toBeUndefined();
    expect(j.root).toBeUndefined();
    expect(j.read(enc('a'))).toBeUndefined();
  });

  it('rejects a group whose change lists do not match its deltas', async () => {
    const trie = await setup();
    const j = new Journal();
    expect(() => j.add(trie.view(), [delta(0, [])], [])).toThrow('expected one change list per delta, got 0 for 1');
  });
});
