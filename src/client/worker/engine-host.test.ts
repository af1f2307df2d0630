/**
 * The engine host without a browser: a memory store, a lock double, and scripted peers that
 * answer from a `MerkleDatabase` through the real codecs (an honest one, and liars that tamper
 * with single-key proofs), as commonware tests its engine against scripted sources.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAnnouncement, signAnnouncement } from '../../core/announcement.ts';
import { toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { MemoryStore } from '../../core/store.ts';
import type { KeyChange, RangeProof } from '../../core/types.ts';
import { decodeChangeProofRequest, decodeRangeProofRequest, encodeChangeProofResponse, encodeRangeProofResponse } from '../../protocol/codec.ts';
import { CHANGE_PROTOCOL, HEADS_PROTOCOL, RANGE_PROTOCOL } from '../../protocol/ids.ts';
import { encodeHeadsResponse } from '../../protocol/messages.ts';
import { serveChangeProof, serveRangeProof } from '../../protocol/serve.ts';
import { serializeError } from '../errors.ts';
import type { WireEvent } from '../events.ts';
import { randomPuts, seededRandom } from '../../sync/state/testing.ts';
import { testHostConfig } from './testing.ts';
import { EngineHost, type LocalStore } from './engine-host.ts';
import type { RemotePeer } from './peer-calls.ts';
import type { WorkerConfig } from './worker-messages.ts';

const DB = 'test-db';

async function writer() {
  const key = await generateKeyPair('Ed25519');
  const db = await MerkleDatabase.open(new MemoryStore());
  const puts = randomPuts(seededRandom(3), 400);
  await db.commit(puts);
  let seq = 0;
  const announce = () =>
    encodeAnnouncement(
      signAnnouncement(
        { db: new TextEncoder().encode(DB), seq: ++seq, stateRoot: db.root, logRoot: new Uint8Array(32), logSize: 0, heads: [], hlc: { wallMs: 1000 + seq, counter: 0 } },
        key.raw.subarray(0, 32),
      ),
    );
  let announcement = announce();
  return {
    db,
    puts,
    peerId: peerIdFromPrivateKey(key).toString(),
    announcement: () => announcement,
    /** An announcement the same writer key signed for another database. */
    foreign: () =>
      encodeAnnouncement(
        signAnnouncement({ db: new TextEncoder().encode('another-db'), seq: 99, stateRoot: db.root, logRoot: new Uint8Array(32), logSize: 0, heads: [], hlc: { wallMs: 5000, counter: 0 } }, key.raw.subarray(0, 32)),
      ),
    async commit(changes: KeyChange[]) {
      await db.commit(changes);
      announcement = announce();
      return announcement;
    },
  };
}
type Writer = Awaited<ReturnType<typeof writer>>;

/** A peer answering from the writer's database; `tamper` rewrites its range proofs. */
function peer(id: string, w: Writer, tamper?: (p: RangeProof) => RangeProof): RemotePeer {
  return {
    id,
    transport: 'websockets',
    via: 'worker',
    async request(protocol, body) {
      if (protocol === HEADS_PROTOCOL) return encodeHeadsResponse({ type: 'announcement', announcement: w.announcement() });
      if (protocol === RANGE_PROTOCOL) {
        const proof = await serveRangeProof(w.db, decodeRangeProofRequest(body));
        return encodeRangeProofResponse({ type: 'rangeProof', proof: tamper ? tamper(proof) : proof });
      }
      if (protocol === CHANGE_PROTOCOL) {
        const r = await serveChangeProof(w.db, decodeChangeProofRequest(body));
        return encodeChangeProofResponse(r);
      }
      throw new Error(`unexpected protocol ${protocol}`);
    },
  };
}

const flipValue = (p: RangeProof): RangeProof => ({ ...p, keyValues: p.keyValues.map((kv) => ({ key: kv.key, value: kv.value.map((b, i) => (i === 0 ? b ^ 1 : b)) })) });
const hideValue = (p: RangeProof): RangeProof => ({ ...p, keyValues: [] });

class Memory extends MemoryStore implements LocalStore {
  async close(): Promise<void> {}
}

const hosts: EngineHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});

function host(w: Writer, peers: RemotePeer[], config: Partial<WorkerConfig> = {}) {
  const events: WireEvent[] = [];
  const waiters = new Set<(e: WireEvent) => void>();
  /** Resolves at the first event (from now on) that `match` accepts. */
  const next = (match: (e: WireEvent) => boolean): Promise<WireEvent> =>
    new Promise((resolve) => {
      const w = (e: WireEvent): void => {
        if (!match(e)) return;
        waiters.delete(w);
        resolve(e);
      };
      waiters.add(w);
    });
  let store = new Memory();
  const h = new EngineHost({
    config: {
      ...testHostConfig(DB, w.peerId),
      ...config,
    },
    emit: (e) => {
      events.push(e);
      for (const w of [...waiters]) w(e);
    },
    openStore: async () => store,
    deleteStore: async () => void (store = new Memory()),
    lock: { tryAcquire: async () => ({ release() {} }), wait: () => new Promise(() => {}) },
  });
  for (const p of peers) h.addPeer(p);
  hosts.push(h);
  return { h, events, next };
}

describe('EngineHost', () => {
  it('syncs to the signed root, then get and prove answer from the local state', async () => {
    const w = await writer();
    const { h, events } = host(w, [peer('a', w), peer('b', w)]);
    await h.start();
    const synced = await h.synced(AbortSignal.timeout(20_000));
    expect(toHex(synced.root)).toBe(toHex(w.db.root));
    expect(toHex(synced.localRoot)).toBe(toHex(w.db.root));
    expect(synced.seq).toBe(1);
    const kv = w.puts[10];
    expect((await h.get(kv.key, 'synced')).value).toEqual(kv.value);
    const p = await h.prove(kv.key);
    expect(p).toMatchObject({ value: kv.value, seq: 1 });
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(h.status().role).toBe('syncer');
  });

  it('follows a newer announcement from gossip to the new root', async () => {
    const w = await writer();
    const { h, next } = host(w, [peer('a', w)]);
    await h.start();
    await h.synced(AbortSignal.timeout(20_000));
    const changed = { key: w.puts[0].key, value: new Uint8Array([7, 7, 7]) };
    const bytes = await w.commit([changed]);
    const moved = next((e) => e.type === 'synced' && toHex(e.detail.root) === toHex(w.db.root));
    h.offerGossip(bytes);
    const e = await moved;
    expect(e.detail).toMatchObject({ seq: 2 });
    expect((await h.get(changed.key, 'synced')).value).toEqual(changed.value);
    // a forged announcement is ignored
    const forged = bytes.slice();
    forged[forged.length - 1] ^= 1;
    h.offerGossip(forged);
    expect(h.status().seq).toBe(2);
  });

  it('judges gossip: a flood of replays and forgeries is rejected, one peer event per reason, no page error', async () => {
    const w = await writer();
    const { h, events } = host(w, [peer('a', w)]);
    await h.start();
    await h.synced(AbortSignal.timeout(20_000));
    const foreign = w.foreign();
    const forged = w.announcement().slice();
    forged[forged.length - 1] ^= 1;
    const verdicts = new Map<string, number>();
    const count = (v: string) => verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
    for (let i = 0; i < 300; i++) count(await h.judgeGossip(foreign, 'attacker'));
    for (let i = 0; i < 100; i++) count(await h.judgeGossip(forged, 'attacker'));
    for (let i = 0; i < 100; i++) count(await h.judgeGossip(Uint8Array.of(0x01, i & 0xff, 7, 7), 'attacker'));
    expect(Object.fromEntries(verdicts)).toEqual({ reject: 500 });
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(events.filter((e) => e.type === 'peer' && e.detail.peer === 'attacker').map((e) => (e.detail as { reason: string }).reason.replace(/ \(.*$/, '')).sort()).toEqual(['gossip: bad-encoding', 'gossip: bad-signature', 'gossip: wrong-database']);
    // the valid announcement of this database is still taken; an older one is ignored
    expect(await h.judgeGossip(await w.commit([{ key: w.puts[0].key, value: new Uint8Array([1]) }]), 'a')).toBe('accept');
    expect(await h.judgeGossip(w.announcement().slice(), 'a')).toBe('accept');
  });

  it('getVerified answers before any sync, from the signed root', async () => {
    const w = await writer();
    const { h } = host(w, [peer('a', w)], { autoStart: false });
    await h.start();
    const kv = w.puts[20];
    const r = await h.getVerified(kv.key, AbortSignal.timeout(5_000));
    expect(r).toMatchObject({ value: kv.value, seq: 1, peer: 'a' });
    expect(toHex(r.root)).toBe(toHex(w.db.root));
    expect((await h.getVerified(new Uint8Array([1, 2, 3]))).value).toBeUndefined();
    expect(h.status().synced).toBeUndefined();
  });

  it('getVerified rejects tampered single-key proofs: InvalidRemoteProof when every peer lies', async () => {
    const w = await writer();
    const { h, events } = host(w, [peer('liar1', w, flipValue), peer('liar2', w, hideValue)], { autoStart: false });
    await h.start();
    await expect(h.getVerified(w.puts[5].key)).rejects.toMatchObject({ name: 'InvalidRemoteProof' });
    const penalised = events.filter((e) => e.type === 'peer' && e.detail.status === 'penalised').map((e) => (e.detail as { peer: string }).peer);
    expect(penalised.sort()).toEqual(['liar1', 'liar2']);
  });

  it('getVerified skips a lying peer and returns the honest answer', async () => {
    const w = await writer();
    const { h } = host(w, [peer('liar', w, flipValue), peer('honest', w)], { autoStart: false });
    await h.start();
    for (let i = 0; i < 4; i++) {
      const kv = w.puts[30 + i];
      const r = await h.getVerified(kv.key);
      expect(r.value).toEqual(kv.value);
      expect(r.peer).toBe('honest');
    }
  });

  it('a partial sync stores only its range; keys outside reject with KeyOutOfScope', async () => {
    const w = await writer();
    const range = { start: new Uint8Array([0x40]), end: new Uint8Array([0x7f, 0xff]) };
    const { h } = host(w, [peer('a', w)], { ranges: [range] });
    await h.start();
    const synced = await h.synced(AbortSignal.timeout(20_000));
    expect(toHex(synced.root)).toBe(toHex(w.db.root));
    const inRange = w.puts.filter((kv) => kv.key[0] >= 0x40 && kv.key[0] < 0x80);
    const local = await h.list(undefined, undefined, 10_000, 'synced');
    expect(local.length).toBe(inRange.length);
    const outside = w.puts.find((kv) => kv.key[0] < 0x40)!;
    await expect(h.get(outside.key, 'local')).rejects.toMatchObject({ name: 'KeyOutOfScope' });
  });

  it('serialises its errors with their names for the page', () => {
    expect(serializeError(new DOMException('x', 'QuotaExceededError'))).toMatchObject({ name: 'QuotaExceededError' });
  });
});
