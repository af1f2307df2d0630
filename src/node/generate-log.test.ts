/**
 * `--generate-log` (generate-log.ts) is honest: every generated operation is a delta the SDK
 * verifies under the writer key, chained to the previous one, at its own log index, whose
 * `stateRoot` an independent replay of the actions (a fresh `MerkleDatabase`) reproduces; the
 * signed announcement names the MMR root of exactly the stored operations; and the node that
 * opens the store keeps committing on top of it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromString } from '@libp2p/peer-id';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeAnnouncement, verifyAnnouncement } from '../core/announcement.ts';
import { toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { decodeDelta, verifyDelta } from '../core/delta.ts';
import { mmrRoots } from '../core/mmr.ts';
import { MemoryStore } from '../core/store.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { startFullNode } from './full-node.ts';
import { generateKeyValues } from './generate.ts';
import { generateOperationLog } from './generate-log.ts';
import { openNodeStore, readU64be } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { storedAnnouncement } from './writer.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'proofsync-genlog-'));
  dirs.push(d);
  return d;
};

const secretKey = new Uint8Array(32).fill(5);
const publicKey = ed25519.getPublicKey(secretKey);

/** Every stored operation, decoded and verified as a light client would, in log order. */
async function storedLog(dir: string) {
  const store = await openNodeStore(dir);
  const log = await OperationLog.open(store.log, store.deltas);
  const ops: Uint8Array[] = [];
  for await (const [k, v] of store.log.iterate({})) {
    expect(readU64be(k)).toBe(ops.length);
    ops.push(v);
  }
  return { store, log, ops };
}

describe('generateOperationLog', () => {
  for (const c of [
    { name: 'fresh keys on top of a bulk load', count: 300, initial: 50, keySpace: undefined },
    { name: 'puts and deletes among 16 keys', count: 400, initial: 0, keySpace: 16 },
  ]) {
    it(`${c.name}: real signed deltas whose state roots a replay reproduces`, async () => {
      const dir = await tempDir();
      const initial = c.initial ? generateKeyValues(c.initial, 3) : undefined;
      const store = await openNodeStore(dir);
      let t = 1_000;
      const r = await generateOperationLog({ store, count: c.count, seed: 9, keySpace: c.keySpace, initial, secretKey, publicKey, db: 'gen', wallClock: () => t++ });
      await store.close();
      expect(r.logSize).toBe(c.count);

      const { store: reopened, log, ops } = await storedLog(dir);
      try {
        expect(ops).toHaveLength(c.count);
        expect(log.size).toBe(c.count);
        const roots = mmrRoots(ops);
        expect(toHex(log.root())).toBe(toHex(roots[c.count]));
        const ann = verifyAnnouncement(decodeAnnouncement((await storedAnnouncement(reopened))!), publicKey);
        expect(ann).toMatchObject({ logSize: c.count });
        expect(toHex(ann.logRoot)).toBe(toHex(roots[c.count]));
        expect(toHex(ann.stateRoot)).toBe(toHex(reopened.db.root));

        // the replay: the initial key-values, then each delta's actions, on a fresh database
        const replay = await MerkleDatabase.open(new MemoryStore());
        if (initial) await replay.bulkLoad(initial);
        let parent = EMPTY_ROOT;
        let deletes = 0;
        for (const [i, bytes] of ops.entries()) {
          const d = verifyDelta(decodeDelta(bytes), publicKey);
          expect(d.logIndex).toBe(i);
          expect(d.parents.map(toHex)).toEqual([toHex(parent)]);
          expect(d.actions.length).toBeGreaterThan(0);
          deletes += d.actions.filter((a) => a.value === undefined).length;
          expect(toHex(await replay.commit(d.actions))).toBe(toHex(d.stateRoot));
          expect(readU64be((await reopened.deltas.get(d.id))!)).toBe(i);
          parent = d.id;
        }
        expect(deletes).toBeGreaterThan(0);
        expect(ann.heads.map(toHex)).toEqual([toHex(parent)]);
        expect(toHex(replay.root)).toBe(toHex(r.root));
        expect(toHex(reopened.db.root)).toBe(toHex(r.root));
      } finally {
        await reopened.close();
      }
    });
  }

  it('refuses a store that is not empty', async () => {
    const dir = await tempDir();
    const store = await openNodeStore(dir);
    await store.db.commit([{ key: Uint8Array.of(1), value: Uint8Array.of(1) }]);
    await expect(generateOperationLog({ store, count: 1, seed: 1, secretKey, publicKey, db: 'x' })).rejects.toMatchObject({ name: 'InvalidRequest' });
    await store.close();
  });
});

describe('a node with a generated log', () => {
  it('opens at the generated head and keeps committing on top of it; a half-copied store is refused', async () => {
    const dataDir = await tempDir();
    const node = await startFullNode({ dataDir, generateLog: { commits: 250, keys: 64 }, httpPort: null, listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    let head: Uint8Array;
    try {
      const s = node.status();
      expect(s.logSize).toBe(250);
      expect(s.seq).toBe(2); // announced empty, then once after the generated commits (the node keeps that one)
      head = decodeDelta((await node.log.operation(249))!).id;
      expect(s.heads).toEqual([toHex(head)]);
      const c = await node.commit([{ key: Uint8Array.of(1), value: Uint8Array.of(2) }]);
      expect(c.delta.parents.map(toHex)).toEqual([toHex(head)]);
      expect(c.delta.logIndex).toBe(250);
      expect(toHex(c.announcement.logRoot)).toBe(toHex(node.log.root()));
      verifyDelta(decodeDelta(c.deltaBytes), publicKeyOf(node.peerId));
    } finally {
      await node.stop();
    }
    // a restart neither generates again nor loses anything
    const again = await startFullNode({ dataDir, generateLog: { commits: 250, keys: 64 }, httpPort: null, listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    try {
      expect(again.status().logSize).toBe(251);
    } finally {
      await again.stop();
    }
    // an interrupted generation leaves its marker: the node refuses to open the store
    const store = await openNodeStore(join(dataDir, 'db'));
    await store.writer.write([{ type: 'put', key: new TextEncoder().encode('generating'), value: Uint8Array.of(1) }]);
    await store.close();
    await expect(startFullNode({ dataDir, httpPort: null, listen: ['/ip4/127.0.0.1/tcp/0/ws'] })).rejects.toMatchObject({ name: 'IncompleteGeneratedStore' });
  });
});

function publicKeyOf(peerId: string): Uint8Array {
  return peerIdFromString(peerId).publicKey!.raw;
}
