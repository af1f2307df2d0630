/**
 * Durability of the full node (the LevelDB store of node-store.ts): a graceful
 * restart keeps identity, root, announcement and history (change proofs across it); a SIGKILL
 * during a stream of commits leaves a store that opens at a committed root whose log and deltas
 * replay, from the generated base, to exactly that root.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeAnnouncement, verifyAnnouncement } from '../core/announcement.ts';
import { compareBytes, toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { decodeDelta, verifyDelta } from '../core/delta.ts';
import { verifyRangeProof as verifyMmrRange } from '../core/mmr.ts';
import { verifyChangeProof, verifyRangeProof } from '../core/proof.ts';
import { MemoryStore } from '../core/store.ts';
import { EMPTY_ROOT, type KeyValue } from '../core/types.ts';
import { ProofsyncClient } from '../protocol/client.ts';
import { generateKeyValues } from './generate.ts';
import { createClientNode, type ClientNode } from './host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from './testing/process.ts';

const dirs: string[] = [];
const running: NodeProcess[] = [];
const clients: ClientNode[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'proofsync-durability-'));
  dirs.push(d);
  return d;
}

async function start(dataDir: string, args: string[]): Promise<{ node: NodeProcess; api: ProofsyncClient; ws: Multiaddr }> {
  const node = await startNodeProcess({ script: FULL_NODE_SCRIPT, dataDir, args });
  running.push(node);
  const c = await createClientNode();
  clients.push(c);
  const ws = multiaddr(node.file.ws!);
  return { node, api: new ProofsyncClient(c, ws, { timeoutMs: 15_000 }), ws };
}

async function post(dir: string, body: unknown): Promise<{ root: string; seq: number }> {
  const file = JSON.parse(await readFile(join(dir, 'addresses.json'), 'utf8')) as { http: string };
  const token = (await readFile(join(dir, 'token'), 'utf8')).trim();
  const res = await fetch(`${file.http}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json() as Promise<{ root: string; seq: number }>;
}

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.stop()));
  await Promise.allSettled(running.map((n) => n.stop({ keepDataDir: true })));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const inRange = (kvs: KeyValue[]) => (s?: Uint8Array, e?: Uint8Array) =>
  kvs.filter((kv) => (!s || compareBytes(kv.key, s) >= 0) && (!e || compareBytes(kv.key, e) <= 0));

describe('restart', () => {
  it('keeps identity, root, the signed announcement and history (change proofs across the restart)', async () => {
    const dir = await tempDir();
    const first = await start(dir, ['--generate', '300']);
    const writerKey = peerIdFromString(first.node.file.peerId).publicKey!.raw;
    const base = generateKeyValues(300, 1);
    const baseRoot = (await first.api.heads()).stateRoot;
    await post(dir, { puts: [{ key: '01', value: 'aa' }] });
    await post(dir, { puts: [{ key: '02', value: 'bb' }], deletes: [toHex(base[0].key)] });
    const before = await first.api.heads({ writerPublicKey: writerKey });
    await first.node.stop({ keepDataDir: true });
    expect(first.node.child.exitCode).toBe(0);

    const second = await start(dir, []);
    expect(second.node.file.peerId).toBe(first.node.file.peerId);
    const after = await second.api.heads({ writerPublicKey: writerKey });
    expect(encodeAnnouncement(after)).toEqual(encodeAnnouncement(before));

    const change = await second.api.change({ startRootHash: baseRoot, endRootHash: after.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 100, bytesLimit: 1 << 20 });
    expect(change.type).toBe('changeProof');
    if (change.type === 'changeProof') {
      expect(change.proof.keyChanges).toHaveLength(3);
      await verifyChangeProof(change.proof, { root: after.stateRoot, keyLimit: 100, local: inRange(base) });
    }
    const log = await second.api.log({ start: 0, end: after.logSize, logSize: after.logSize });
    verifyMmrRange(after.logRoot, after.logSize, 0, log.operations, log.proof);

    // writing continues the chain
    const r = await post(dir, { puts: [{ key: '03', value: 'cc' }] });
    const next = await second.api.heads({ writerPublicKey: writerKey });
    expect(next.seq).toBe(before.seq + 1);
    expect(r.root).toBe(toHex(next.stateRoot));
    const { deltas } = await second.api.deltas(next.heads);
    expect(deltas[0].parents).toEqual(before.heads);
    expect(deltas[0].logIndex).toBe(before.logSize);
  });
});

describe('crash', () => {
  it('after SIGKILL during a stream of commits the store opens at a committed root and its history replays to it', async () => {
    const dir = await tempDir();
    const GENERATED = 300;
    const first = await start(dir, ['--generate', String(GENERATED), '--simulate-writes', '200']);
    const writerKey = peerIdFromString(first.node.file.peerId).publicKey!.raw;
    const http = (JSON.parse(await readFile(join(dir, 'addresses.json'), 'utf8')) as { http: string }).http;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = (await (await fetch(`${http}/v1/status`)).json()) as { logSize: number };
      if (status.logSize >= 40) break;
      if (Date.now() > deadline) throw new Error(`the simulator did not reach 40 commits: ${status.logSize}`);
    }
    const exited = new Promise((resolve) => first.node.child.once('exit', resolve));
    first.node.child.kill('SIGKILL');
    await exited;

    const second = await start(dir, []);
    const ann = await second.api.heads({ writerPublicKey: writerKey });
    verifyAnnouncement(ann, writerKey);
    expect(ann.logSize).toBeGreaterThanOrEqual(40);

    // the whole log, batch by batch, against the signed log root
    const ops: Uint8Array[] = [];
    while (ops.length < ann.logSize) {
      const b = await second.api.log({ start: ops.length, end: ann.logSize, logSize: ann.logSize });
      verifyMmrRange(ann.logRoot, ann.logSize, ops.length, b.operations, b.proof);
      ops.push(...b.operations);
    }

    // replay every delta from the generated base: each state root must come out exactly
    const local = await MerkleDatabase.open(new MemoryStore());
    await local.bulkLoad(generateKeyValues(GENERATED, 1));
    let parent = EMPTY_ROOT;
    const checkpoint = ann.logSize - 10;
    let snapshot: KeyValue[] = [];
    let checkpointRoot = local.root;
    for (let i = 0; i < ops.length; i++) {
      const d = verifyDelta(decodeDelta(ops[i]), writerKey);
      expect(d.logIndex).toBe(i);
      expect(d.parents).toEqual([parent]);
      const root = await local.commit(d.actions);
      expect(toHex(root)).toBe(toHex(d.stateRoot));
      parent = d.id;
      if (i === checkpoint) {
        snapshot = [];
        for await (const kv of local.entries()) snapshot.push(kv);
        checkpointRoot = root;
      }
    }
    expect(ann.heads).toEqual([parent]);
    expect(toHex(local.root)).toBe(toHex(ann.stateRoot));

    // the served state is that root, and history across the crash still yields change proofs
    const range = await second.api.range({ rootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 2 << 20 });
    verifyRangeProof(range, { root: ann.stateRoot, keyLimit: 2048 });
    const change = await second.api.change({ startRootHash: checkpointRoot, endRootHash: ann.stateRoot, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 2 << 20 });
    expect(change.type).toBe('changeProof');
    if (change.type === 'changeProof') await verifyChangeProof(change.proof, { root: ann.stateRoot, keyLimit: 2048, local: inRange(snapshot) });
  });
});
