/**
 * Live updates through the whole engine host, without a browser: a memory store, a scripted
 * writer whose peer serves range, change and delta requests through the real codecs, and gossip
 * fed to `offerGossip`. What is checked is the hand-over between the state sync and the
 * follower: which requests the peer sees, and where the local state ends.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAnnouncement, signAnnouncement } from '../../core/announcement.ts';
import { equalBytes, toHex } from '../../core/bytes.ts';
import { MerkleDatabase } from '../../core/database.ts';
import { encodeDelta, signDelta, type VerifiedDelta } from '../../core/delta.ts';
import { MemoryStore } from '../../core/store.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { decodeChangeProofRequest, decodeRangeProofRequest, encodeChangeProofResponse, encodeRangeProofResponse } from '../../protocol/codec.ts';
import { CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, RANGE_PROTOCOL } from '../../protocol/ids.ts';
import { decodeDeltaRequest, encodeDeltaResponse, encodeHeadsResponse } from '../../protocol/messages.ts';
import { serveChangeProof, serveRangeProof } from '../../protocol/serve.ts';
import type { WireEvent } from '../events.ts';
import { randomPuts, seededRandom } from '../../sync/state/testing.ts';
import { testHostConfig } from '../worker/testing.ts';
import { EngineHost, type LocalStore, type TabMessage } from '../worker/engine-host.ts';
import { valueKey } from '../../core/node-record.ts';
import type { RemotePeer } from '../worker/peer-calls.ts';
import type { WorkerConfig } from '../worker/worker-messages.ts';
import { announcementAhead } from './host.ts';
import { MemoryPendingDeltas } from './pending-store.ts';

const DB = 'live-db';
const enc = new TextEncoder();

class Memory extends MemoryStore implements LocalStore {
  async close(): Promise<void> {}
}

/** A writer as the full node is one: every commit is a signed delta and a signed announcement. */
async function writer() {
  const key = await generateKeyPair('Ed25519');
  const sk = key.raw.subarray(0, 32);
  const db = await MerkleDatabase.open(new MemoryStore());
  const rnd = seededRandom(11);
  await db.commit(randomPuts(rnd, 300));
  const deltas: VerifiedDelta[] = [];
  let seq = 1;
  let wall = 50_000;
  const announce = () =>
    encodeAnnouncement(
      signAnnouncement({ db: enc.encode(DB), seq, stateRoot: db.root, logRoot: new Uint8Array(32), logSize: deltas.length, heads: deltas.length ? [deltas.at(-1)!.id] : [], hlc: { wallMs: wall++, counter: 0 } }, sk),
    );
  let announcement = announce();
  return {
    db,
    deltas,
    peerId: peerIdFromPrivateKey(key).toString(),
    announcement: () => announcement,
    /** One commit: [delta bytes, announcement bytes], as the writer publishes them. */
    async commit(): Promise<[Uint8Array, Uint8Array]> {
      const actions = randomPuts(rnd, 10).sort((a, b) => (toHex(a.key) < toHex(b.key) ? -1 : 1)).filter((a, i, all) => i === 0 || toHex(all[i - 1].key) !== toHex(a.key));
      await db.commit(actions);
      const d = signDelta({ parents: deltas.length ? [deltas.at(-1)!.id] : [EMPTY_ROOT], actions, hlc: { wallMs: wall++, counter: 0 }, stateRoot: db.root, logIndex: deltas.length }, sk);
      deltas.push(d);
      seq++;
      announcement = announce();
      return [encodeDelta(d), announcement];
    },
  };
}
type Writer = Awaited<ReturnType<typeof writer>>;

function peer(id: string, w: Writer, asked: string[]): RemotePeer {
  return {
    id,
    transport: 'websockets',
    via: 'worker',
    async request(protocol, body) {
      asked.push(protocol);
      if (protocol === HEADS_PROTOCOL) return encodeHeadsResponse({ type: 'announcement', announcement: w.announcement() });
      if (protocol === RANGE_PROTOCOL) return encodeRangeProofResponse({ type: 'rangeProof', proof: await serveRangeProof(w.db, decodeRangeProofRequest(body)) });
      if (protocol === CHANGE_PROTOCOL) return encodeChangeProofResponse(await serveChangeProof(w.db, decodeChangeProofRequest(body)));
      if (protocol === DELTA_PROTOCOL) {
        const { ids } = decodeDeltaRequest(body);
        const found = ids.map((x) => w.deltas.find((d) => equalBytes(d.id, x)));
        return encodeDeltaResponse({ type: 'batch', deltas: found.filter((d) => d !== undefined).map(encodeDelta), missing: ids.filter((_, i) => !found[i]), truncated: false });
      }
      throw new Error(`unexpected protocol ${protocol}`);
    },
  };
}

const hosts: EngineHost[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});

/** A store whose writes of trie changes (more than a few records), while `hold`, wait until run. */
class Gated extends Memory {
  hold = false;
  held: (() => void)[] = [];
  override write(ops: Parameters<MemoryStore['write']>[0]): Promise<void> {
    if (!this.hold || ops.length <= 3) return super.write(ops);
    return new Promise<void>((resolve, reject) => this.held.push(() => super.write(ops).then(resolve, reject)));
  }
}

function host(w: Writer, o: { live?: WorkerConfig['live']; store?: Memory; pending?: MemoryPendingDeltas } = {}) {
  const asked: string[] = [];
  const events: WireEvent[] = [];
  const waiters = new Set<() => void>();
  const store = o.store ?? new Memory();
  const pending = o.pending ?? new MemoryPendingDeltas();
  const tabs: TabMessage[] = [];
  const h = new EngineHost({
    channel: { post: (m) => void tabs.push(m), subscribe: () => () => undefined, close() {} },
    config: {
      ...testHostConfig(DB, w.peerId),
      live: { gossipGraceMs: 0, ...o.live },
    },
    emit: (e) => {
      events.push(e);
      for (const f of [...waiters]) f();
    },
    openStore: async () => store,
    deleteStore: async () => {},
    openPending: async () => pending,
    lock: { tryAcquire: async () => ({ release() {} }), wait: () => new Promise(() => {}) },
  });
  h.addPeer(peer('a', w, asked));
  hosts.push(h);
  /** Resolves once `ok()` holds after some event (checked at every event, no polling). */
  const until = (ok: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const f = () => {
        if (!ok()) return;
        waiters.delete(f);
        resolve();
      };
      waiters.add(f);
      f();
    });
  const applied = () => events.filter((e) => e.type === 'update').map((e) => toHex((e.detail as { deltaId: Uint8Array }).deltaId));
  const live = () => events.filter((e) => e.type === 'live').map((e) => e.detail as { mode: string; reason?: string });
  const tabUpdates = () => tabs.flatMap((m) => (m.type === 'updates' ? m.detail.map((u) => toHex(u.deltaId)) : []));
  return { h, asked, events, until, applied, live, store, pending, tabUpdates };
}

describe('live updates in the engine host', () => {
  it('after the sync, deltas move the state: no change proof is asked for, announcements only name heads', async () => {
    const w = await writer();
    const t = host(w);
    await t.h.start();
    await t.h.synced(AbortSignal.timeout(20_000));
    await t.until(() => t.live().at(-1)?.mode === 'live');
    for (let i = 0; i < 5; i++) for (const m of await w.commit()) t.h.offerGossip(m, 'a');
    await t.until(() => t.applied().length === 5);
    expect(t.applied()).toEqual(w.deltas.map((d) => toHex(d.id)));
    expect(t.asked.filter((p) => p === CHANGE_PROTOCOL)).toEqual([]);
    expect(toHex(t.h.status().synced!.root)).toBe(toHex(w.db.root));
    expect(t.h.status().live).toMatchObject({ mode: 'live', pending: 0, logSize: 5 });
    // each delta's announcement arrives after it: the synced seq catches up with it
    await t.until(() => t.h.status().synced?.seq === 6);
  });

  it('an announcement heard after its delta was applied: the status already holds its seq when the event fires', async () => {
    const w = await writer();
    const t = host(w);
    await t.h.start();
    await t.h.synced(AbortSignal.timeout(20_000));
    await t.until(() => t.live().at(-1)?.mode === 'live');
    const [delta, ann] = await w.commit();
    t.h.offerGossip(delta, 'a');
    await t.until(() => t.applied().length === 1);
    expect(t.h.status().synced?.seq).toBe(-1);
    const seen: (number | undefined)[] = [];
    t.h.offerGossip(ann, 'a');
    // what a page's listener reads from `status()` at the event the seq arrives with
    await t.until(() => {
      seen.push(t.h.status().synced?.seq);
      return t.events.some((e) => e.type === 'live' && (e.detail as { seq?: number }).seq === 2);
    });
    expect(seen.at(-1)).toBe(2);
  });

  it('a lost delta is filled over /delta once its announcement names it', async () => {
    const w = await writer();
    const t = host(w);
    await t.h.start();
    await t.h.synced(AbortSignal.timeout(20_000));
    await t.until(() => t.live().at(-1)?.mode === 'live');
    const [, ann] = await w.commit(); // the delta is lost, its announcement arrives
    t.h.offerGossip(ann, 'a');
    await t.until(() => t.applied().length === 1);
    expect(t.asked).toContain(DELTA_PROTOCOL);
    expect(t.asked.filter((p) => p === CHANGE_PROTOCOL)).toEqual([]);
  });

  it('a gap beyond the limit is caught up by change proof, then deltas follow again', async () => {
    const w = await writer();
    const t = host(w, { live: { maxGapFill: 2 } });
    await t.h.start();
    await t.h.synced(AbortSignal.timeout(20_000));
    await t.until(() => t.live().at(-1)?.mode === 'live');
    for (let i = 0; i < 5; i++) await w.commit(); // all lost
    const [delta] = await w.commit();
    t.h.offerGossip(delta, 'a');
    await t.until(() => t.live().some((l) => l.reason === 'gap-too-large') && t.live().at(-1)?.mode === 'live');
    expect(t.asked).toContain(CHANGE_PROTOCOL);
    await t.until(() => toHex(t.h.status().live!.root!) === toHex(w.db.root));
    for (const m of await w.commit()) t.h.offerGossip(m, 'a');
    await t.until(() => t.applied().includes(toHex(w.deltas.at(-1)!.id)));
    expect(toHex(t.h.status().synced!.root)).toBe(toHex(w.db.root));
  });

  it('a burst goes into the journal: the page reads each update at once, other tabs hear of them once the store holds them', async () => {
    const w = await writer();
    const store = new Gated();
    const t = host(w, { store, live: { maxBatch: 2 } });
    await t.h.start();
    await t.h.synced(AbortSignal.timeout(20_000));
    await t.until(() => t.live().at(-1)?.mode === 'live');
    t.h.pause();
    await t.until(() => t.live().at(-1)?.mode === 'syncing');
    for (let i = 0; i < 6; i++) t.h.offerGossip((await w.commit())[0], 'a');
    await t.until(() => t.h.status().live?.pending === 6);
    store.hold = true;
    t.h.resume();
    // every update is out while the store's one write (the checkpoint) waits
    await t.until(() => t.applied().length === 6);
    while (store.held.length === 0) await new Promise((r) => setTimeout(r, 5)); // polling interval: a store write is no event
    expect(t.tabUpdates()).toEqual([]);
    const last = w.deltas[5].actions[0];
    expect(toHex((await t.h.get(last.key, 'local')).value!)).toBe(toHex(last.value!));
    expect(await store.get(valueKey(last.key))).not.toEqual(last.value);
    store.hold = false;
    store.held.shift()!();
    await t.until(() => t.tabUpdates().length === 6);
    expect(t.tabUpdates()).toEqual(w.deltas.map((d) => toHex(d.id)));
    expect(await store.get(valueKey(last.key))).toEqual(last.value);
  });

  it('a restart with a stored position goes live at once: restored pending deltas applied, no proof requests', async () => {
    const w = await writer();
    const first = host(w);
    await first.h.start();
    await first.h.synced(AbortSignal.timeout(20_000));
    await first.until(() => first.live().at(-1)?.mode === 'live');
    for (const m of await w.commit()) first.h.offerGossip(m, 'a');
    await first.until(() => first.applied().length === 1);
    await w.commit(); // lost
    const [held] = await w.commit();
    // the grace period is 0 here: pause so the held delta is not filled before the "reload"
    first.h.pause();
    first.h.offerGossip(held, 'a');
    await first.until(() => first.h.status().live?.pending === 1);
    await first.h.close();
    hosts.splice(hosts.indexOf(first.h), 1);

    const second = host(w, { store: first.store, pending: first.pending });
    await second.h.start();
    await second.h.synced(AbortSignal.timeout(20_000));
    await second.until(() => second.applied().length === 2);
    expect(second.applied()).toEqual(w.deltas.slice(1).map((d) => toHex(d.id)));
    expect(second.live().some((l) => l.reason === 'restored')).toBe(true);
    expect(second.asked.filter((p) => p === RANGE_PROTOCOL || p === CHANGE_PROTOCOL)).toEqual([]);
    expect(second.events.find((e) => e.type === 'pending' && (e.detail as { restored: number }).restored === 1)).toBeDefined();
  });

  it('a restart further behind than restoreGapFill catches up by change proof, not delta by delta', async () => {
    const w = await writer();
    const first = host(w);
    await first.h.start();
    await first.h.synced(AbortSignal.timeout(20_000));
    await first.until(() => first.live().at(-1)?.mode === 'live');
    await first.h.close();
    hosts.splice(hosts.indexOf(first.h), 1);
    for (let i = 0; i < 4; i++) await w.commit(); // committed while no page was open

    const second = host(w, { store: first.store, pending: first.pending, live: { restoreGapFill: 3 } });
    await second.h.start();
    await second.until(() => second.h.status().synced !== undefined && toHex(second.h.status().synced!.root) === toHex(w.db.root));
    expect(second.asked).toContain(CHANGE_PROTOCOL);
    expect(second.asked).not.toContain(DELTA_PROTOCOL);
    expect(second.live().some((l) => l.reason === 'restored')).toBe(false);
    await second.until(() => second.live().at(-1)?.mode === 'live');
  });
});

describe('announcementAhead', () => {
  const r = (b: number) => new Uint8Array(32).fill(b);
  const pos = { root: r(1), heads: [], logSize: 5, seq: 7 };
  const cases: [string, { logSize: number; stateRoot: Uint8Array; seq: number }, boolean][] = [
    ['a longer log', { logSize: 6, stateRoot: r(2), seq: 8 }, true],
    ['a shorter log (a lagging peer)', { logSize: 4, stateRoot: r(2), seq: 9 }, false],
    ['the same state', { logSize: 5, stateRoot: r(1), seq: 7 }, false],
    ['same log, another root, newer (changed outside the DAG)', { logSize: 5, stateRoot: r(3), seq: 8 }, true],
    ['same log, another root, older', { logSize: 5, stateRoot: r(3), seq: 6 }, false],
  ];
  for (const [name, ann, expected] of cases) it(name, () => expect(announcementAhead(ann, pos)).toBe(expected));
});
