/**
 * The replica full node: `proofsync node --follow
 * WRITER --bootstrap ADDR` syncs the writer's state from untrusted nodes, then serves it and
 * follows the writer's deltas, so light clients can spread their requests over many replicas.
 *
 * 1. **Sync** (DESIGN.md "The sync flow" 1–2): dial the bootstrap peers, take the newest
 *    announcement verified against the writer key (its peer id), and run `syncState` into the
 *    node's LevelDB with every connected serving peer as a source. Newer announcements from
 *    gossip move the target; once the engine stands at its target the updates end and it
 *    finishes there. Progress is the engine's, stored with the data: a restart resumes.
 * 2. **Finish**: one batch clears the sync progress and the history window (its roots no
 *    longer describe the state) and records what the state is (`follow` record: root, DAG
 *    heads, log size); the `MerkleDatabase` is opened again over the store and served.
 * 3. **Follow** (steps 3–4): verified gossip deltas go into a `DeltaDag`; ready ones are
 *    committed through `MerkleDatabase.commit` with the new `follow` record (and the log
 *    operation, when the log is contiguous) in the same batch, and their `stateRoot` checked,
 *    so the history window holds the writer's roots and change proofs can be served. Missing
 *    parents, and announced heads not yet held, are fetched with `fillGaps` over /delta from
 *    the peer that sent the gossip. A gap past `maxGap`, a peer lacking deltas, a root
 *    mismatch or a delta pending longer than `pendingTimeoutMs` → **catch-up**: a change-proof
 *    sync from the current root to the newest announcement, with serving held off (the sync
 *    writes the store underneath the database), then step 2 again; covered pending deltas are
 *    dropped, and expired ones too (pending deltas never wait forever).
 * 4. **Log**: operations the replica skipped (before its first sync, across a catch-up) are
 *    fetched over /log and appended, so /delta and /log serve the writer's history.
 *
 * One task at a time runs the follow loop (`#work`): applying, gap filling, catching up and
 * log filling never interleave. Gossip relaying is gossipsub's; /heads answers the newest
 * verified announcement (`announcementBytes`).
 *
 * Pending deltas are held in memory only: after a restart they are fetched again by gap
 * filling from the newest announcement's heads.
 */
import type { PeerId } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { decodeAnnouncement, encodeAnnouncement, supersedes, verifyAnnouncement, type VerifiedAnnouncement } from '../core/announcement.ts';
import { concatBytes, equalBytes, toHex } from '../core/bytes.ts';
import { DeltaDag, type AppliedCover } from '../core/dag.ts';
import { MerkleDatabase } from '../core/database.ts';
import { ANNOUNCEMENT_TAG } from '../core/announcement.ts';
import { decodeDelta, DELTA_TAG, encodeDelta, verifyDelta, type VerifiedDelta } from '../core/delta.ts';
import type { BatchOp } from '../core/store.ts';
import { fillGaps } from '../sync/gap-fill.ts';
import { networkStateSource, responseSize } from '../sync/state/network-source.ts';
import { syncState } from '../sync/state/driver.ts';
import type { StateSyncProgress } from '../sync/state/engine.ts';
import { clearProgressOps, loadProgress } from '../sync/state/progress.ts';
import { fetchHeads } from '../protocol/client.ts';
import type { HostNode } from './host.ts';
import { DELTA_PREFIX, LOG_PREFIX, readU64be, u64be, underPrefix, WRITER_PREFIX, type NodeStore } from './node-store.ts';
import type { OperationLog } from './operation-log.ts';
import { deltaSource, fillLog, servingPeers } from './replica-sources.ts';
import type { RwLock } from '../core/rwlock.ts';

const ANN_KEY = new TextEncoder().encode('ann');
const FOLLOW_KEY = new TextEncoder().encode('follow');
const HISTORY_PREFIX = 0x68; // 'h': database.ts's revision records

export interface ReplicaOptions {
  libp2p: HostNode;
  store: NodeStore;
  opLog: OperationLog;
  /** The node's serving lock: held for writing while a catch-up rewrites the store. */
  lock: RwLock;
  /** The writer's peer id (its Ed25519 key signs announcements and deltas). */
  writer: string;
  /** Database id (announcement `db`) and its gossip topic. */
  db: Uint8Array;
  topic: string;
  bootstrap: string[];
  historySize?: number;
  /** Requests in flight during a sync (default 8). */
  concurrency?: number;
  /** Most deltas fetched to fill one gap before catching up by change proof (default 10,000). */
  maxGap?: number;
  /** Deltas pending longer than this trigger a catch-up (default 10,000 ms). */
  pendingTimeoutMs?: number;
  requestTimeoutMs?: number;
  /**
   * During a sync, move the target only once the newest announcement is this many commits
   * ahead of it (default 64): every move sends completed ranges back as change-proof work,
   * while the deltas in between are far cheaper to apply afterwards (measured: moving on each
   * of 20 commits/s doubled the bytes of a 20k-key sync). Must stay well below the servers'
   * history window (300), or the old target's change proofs turn into range proofs.
   */
  retargetAfter?: number;
  /** How often the follow loop looks at timeouts and lagging state (default 1,000 ms). */
  tickMs?: number;
  log?: (line: string) => void;
}

/** Where a replica is: starting, state syncing, following deltas, catching up, or stopped. */
export type ReplicaPhase = 'starting' | 'syncing' | 'following' | 'catching-up' | 'stopped';

/** A replica node's sync and follow state, in `NodeStatus.replica`. */
export interface ReplicaStatus {
  /** The writer's peer id. */
  writer: string;
  /** The replica's phase. */
  phase: ReplicaPhase;
  /** Newest verified announcement. */
  seq: number | null;
  /** Log size the state reflects (the writer's deltas applied). */
  appliedLogSize: number;
  /** Deltas held while their parents are missing. */
  pending: number;
  /** Deltas applied since start. */
  deltasApplied: number;
  /** Gaps filled over `/delta` since start. */
  gapFills: number;
  /** Catch-ups by change proof since start. */
  catchUps: number;
  /** The current or last sync (initial or catch-up). */
  sync: {
    /** The sync engine's phase. */
    phase: string;
    /** The fraction of the key space done (0..1). */
    fractionDone: number;
    /** Key-values received in verified answers. */
    keyValuesReceived: number;
    /** Bytes of answers received (valid or not). */
    bytesReceived: number;
    /** Requests sent. */
    requests: number;
    /** Peers that gave at least one valid answer. */
    peersUsed: number;
    /** Peers banned for invalid answers. */
    peersBanned: number;
    /** Answers whose proofs did not verify. */
    proofsRejected: number;
  } | null;
  /** Peer ids banned for invalid answers. */
  banned: string[];
}

/** The `follow` record: what the synced state is (root, DAG heads, log size). */
interface FollowRecord extends AppliedCover {
  root: Uint8Array;
}

function encodeFollow(r: FollowRecord): Uint8Array {
  if (r.heads.length > 255) throw new RangeError(`expected at most 255 heads, got ${r.heads.length}`);
  return concatBytes(r.root, u64be(r.logSize), Uint8Array.of(r.heads.length), ...r.heads);
}

function decodeFollow(b: Uint8Array): FollowRecord {
  if (b.length < 41 || b.length !== 41 + b[40] * 32) throw new TypeError('malformed follow record');
  const heads: Uint8Array[] = [];
  for (let i = 0; i < b[40]; i++) heads.push(b.slice(41 + i * 32, 73 + i * 32));
  return { root: b.slice(0, 32), logSize: readU64be(b.subarray(32, 40)), heads };
}

/** An async iterable fed by `push`, ended by `close` (the sync's target updates). */
class TargetQueue implements AsyncIterable<Uint8Array> {
  #items: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  closed = false;
  push(root: Uint8Array): void {
    if (this.closed) return;
    this.#items.push(root);
    this.#wake?.();
  }
  close(): void {
    this.closed = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      while (this.#items.length) yield this.#items.shift()!;
      if (this.closed) return;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

const peerIdOf = (a: Multiaddr): string | undefined => a.getComponents().findLast((c) => c.name === 'p2p')?.value;

const isAbort = (err: unknown): boolean => (err as { name?: string } | null)?.name === 'AbortError';

export class Replica {
  readonly #o: ReplicaOptions;
  readonly #writerKey: Uint8Array;
  readonly #writerId: string;
  readonly #life = new AbortController();
  readonly #log: (line: string) => void;
  readonly #timeoutMs: number;
  #phase: ReplicaPhase = 'starting';
  #db: MerkleDatabase | undefined;
  #dag = new DeltaDag();
  #newest: VerifiedAnnouncement | undefined;
  #newestBytes: Uint8Array | undefined;
  /** Announcements by root (hex), to know what a sync's final target was. */
  readonly #byRoot = new Map<string, VerifiedAnnouncement>();
  #updates: TargetQueue | undefined;
  /** The current sync's target. */
  #syncTarget: VerifiedAnnouncement | undefined;
  #appliedLogSize = 0;
  /** The peer that last gossiped to us (asked for missing parents first). */
  #lastSender: PeerId | undefined;
  /** Peers that answered /heads (they serve the protocols). */
  readonly #serving = new Set<string>();
  readonly #banned = new Set<string>();
  #syncProgress: StateSyncProgress | undefined;
  #reported = -1;
  #stats = { deltasApplied: 0, gapFills: 0, catchUps: 0 };
  #busy = false;
  #working: Promise<void> | undefined;
  #again = false;
  #logFillAfter = 0;
  #running: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #onMessage: (evt: CustomEvent<{ propagationSource: PeerId; msg: { topic: string; data: Uint8Array } }>) => void;

  constructor(o: ReplicaOptions) {
    this.#o = o;
    this.#writerId = o.writer;
    const key = peerIdFromString(o.writer).publicKey;
    if (!key || key.type !== 'Ed25519') throw new TypeError(`--follow needs an Ed25519 peer id (the writer's key), got ${o.writer}`);
    this.#writerKey = key.raw;
    this.#log = o.log ?? (() => {});
    this.#timeoutMs = o.requestTimeoutMs ?? 30_000;
    this.#onMessage = (evt) => {
      if (evt.detail.msg.topic !== o.topic) return;
      // An event listener that throws ends the process (Node reports it as an uncaught
      // exception): gossip is remote input, so no failure on it may escape.
      try {
        this.#onGossip(evt.detail.msg.data, evt.detail.propagationSource);
      } catch (err) {
        this.#log(`gossip message from ${evt.detail.propagationSource.toString()} dropped: ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
    };
  }

  /** The served database once synced (before that, undefined: the caller serves its own). */
  get db(): MerkleDatabase | undefined {
    return this.#db;
  }

  /** The newest verified writer announcement's wire bytes (what /heads answers). */
  get announcementBytes(): Uint8Array | undefined {
    return this.#newestBytes;
  }

  get announcement(): VerifiedAnnouncement | undefined {
    return this.#newest;
  }

  get phase(): ReplicaPhase {
    return this.#phase;
  }

  status(): ReplicaStatus {
    const p = this.#syncProgress;
    return {
      writer: this.#writerId,
      phase: this.#phase,
      seq: this.#newest?.seq ?? null,
      appliedLogSize: this.#appliedLogSize,
      pending: this.#dag.pendingCount,
      ...this.#stats,
      sync: p
        ? {
            phase: p.phase,
            fractionDone: p.fractionDone,
            keyValuesReceived: p.keyValuesReceived,
            bytesReceived: p.bytesReceived,
            requests: p.requests,
            peersUsed: p.peersUsed,
            peersBanned: p.peersBanned,
            proofsRejected: p.proofsRejected,
          }
        : null,
      banned: [...this.#banned],
    };
  }

  /**
   * Loads what the store holds, subscribes to gossip and starts syncing or following in the
   * background (the node serves meanwhile).
   */
  async start(): Promise<void> {
    const { store } = this.#o;
    const stored = await store.writer.get(ANN_KEY);
    if (stored) {
      try {
        this.#setNewest(verifyAnnouncement(decodeAnnouncement(stored), this.#writerKey), stored);
      } catch {
        // not the followed writer's: ignore it
      }
    }
    const followBytes = await store.writer.get(FOLLOW_KEY);
    const follow = followBytes ? decodeFollow(followBytes) : undefined;
    const progress = await loadProgress(store.state);
    const synced = follow !== undefined && equalBytes(follow.root, store.db.root) && progress.target === undefined && progress.segments.length === 0;
    if (synced) {
      this.#db = store.db;
      this.#dag = new DeltaDag({ applied: follow });
      this.#appliedLogSize = follow.logSize;
    }
    const pubsub = this.#o.libp2p.services.pubsub;
    pubsub.addEventListener('gossipsub:message', this.#onMessage as never);
    this.#running = this.#run(synced).catch((err: unknown) => {
      if (!this.#life.signal.aborted) this.#log(`replica stopped on an error: ${(err as Error)?.stack ?? String(err)}`);
    });
  }

  async stop(): Promise<void> {
    if (this.#life.signal.aborted) return;
    this.#life.abort(new DOMException('the node is stopping', 'AbortError'));
    this.#updates?.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#o.libp2p.services.pubsub.removeEventListener('gossipsub:message', this.#onMessage as never);
    await this.#running;
    // let a follow step in flight finish its commit
    await this.#working;
    this.#phase = 'stopped';
  }

  // ---- announcements and gossip --------------------------------------------------------------

  #setNewest(ann: VerifiedAnnouncement, bytes: Uint8Array): boolean {
    if (!equalBytes(ann.db, this.#o.db) || !supersedes(ann, this.#newest)) return false;
    this.#newest = ann;
    this.#newestBytes = bytes;
    this.#byRoot.set(toHex(ann.stateRoot), ann);
    if (this.#byRoot.size > 256) this.#byRoot.delete(this.#byRoot.keys().next().value!);
    return true;
  }

  #acceptAnnouncement(bytes: Uint8Array): boolean {
    let ann: VerifiedAnnouncement;
    try {
      ann = verifyAnnouncement(decodeAnnouncement(bytes), this.#writerKey);
    } catch {
      return false; // not the writer's: gossip validation is ours
    }
    if (!this.#setNewest(ann, bytes)) return false;
    const target = this.#syncTarget;
    if (this.#updates && !this.#updates.closed && target && ann.seq >= target.seq + (this.#o.retargetAfter ?? 64)) {
      this.#syncTarget = ann;
      this.#updates.push(ann.stateRoot);
    }
    void this.#o.store.writer.write([{ type: 'put', key: ANN_KEY, value: bytes }]).catch(() => {});
    return true;
  }

  #onGossip(data: Uint8Array, from: PeerId): void {
    if (data.length === 0 || this.#life.signal.aborted) return;
    const body = data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (body[0] === ANNOUNCEMENT_TAG) {
      if (this.#acceptAnnouncement(body)) {
        this.#lastSender = from;
        this.#kick();
      }
      return;
    }
    if (body[0] !== DELTA_TAG) return;
    let d: VerifiedDelta;
    try {
      d = verifyDelta(decodeDelta(body), this.#writerKey);
    } catch {
      return;
    }
    this.#lastSender = from;
    const r = this.#dag.add(d, Date.now());
    if (r.status === 'ready' || r.status === 'pending') this.#kick();
  }

  async #fetchNewestHeads(): Promise<void> {
    const { libp2p } = this.#o;
    const targets: (PeerId | Multiaddr)[] = [];
    const seen = new Set<string>();
    for (const p of await servingPeers(libp2p, this.#serving)) {
      seen.add(p.toString());
      targets.push(p);
    }
    for (const a of this.#o.bootstrap) {
      const ma = multiaddr(a);
      const id = peerIdOf(ma);
      if (id && seen.has(id)) continue;
      targets.push(ma);
    }
    await Promise.all(
      targets.map(async (t) => {
        try {
          const ann = await fetchHeads(libp2p, t, { writerPublicKey: this.#writerKey, db: this.#o.db, timeoutMs: 10_000, signal: this.#life.signal });
          const id = 'getComponents' in t ? peerIdOf(t) : t.toString();
          if (id) this.#serving.add(id);
          this.#acceptAnnouncement(encodeAnnouncement(ann));
        } catch (err) {
          if (!this.#life.signal.aborted) this.#log(`heads from ${t.toString()}: ${(err as Error).name}: ${(err as Error).message}`);
        }
      }),
    );
  }

  // ---- sync ------------------------------------------------------------------------------------

  async #run(synced: boolean): Promise<void> {
    const signal = this.#life.signal;
    await this.#fetchNewestHeads();
    for (let attempt = 0; !this.#newest; attempt++) {
      await delay(Math.min(10_000, 500 * 2 ** attempt), signal);
      if (signal.aborted) return;
      await this.#fetchNewestHeads();
    }
    if (!synced) {
      this.#phase = 'syncing';
      const reached = await this.#syncToNewest('sync');
      if (!reached) return;
      await this.#finish(reached);
    }
    if (signal.aborted) return;
    this.#phase = 'following';
    this.#log(`following ${this.#writerId} at root ${toHex(this.#db!.root)}, log ${this.#appliedLogSize}`);
    this.#timer = setInterval(() => this.#kick(), this.#o.tickMs ?? 1000);
    this.#timer.unref?.();
    this.#kick();
  }

  /**
   * Syncs the store to the newest announcement (and those that arrive meanwhile); resolves
   * with the announcement reached, or undefined when stopped (or a catch-up gave up).
   */
  async #syncToNewest(what: 'sync' | 'catch-up'): Promise<VerifiedAnnouncement | undefined> {
    const signal = this.#life.signal;
    // a catch-up holds serving off: it gives up after a few attempts and is retried on a tick
    const attempts = what === 'catch-up' ? 3 : Infinity;
    for (let attempt = 0; !signal.aborted && attempt < attempts; attempt++) {
      const ann = this.#newest!;
      const peers = await servingPeers(this.#o.libp2p, this.#serving);
      const usable = peers.filter((p) => !this.#banned.has(p.toString()));
      if (usable.length === 0) {
        this.#log(`${what}: no serving peer; dialing bootstrap peers`);
        await this.#dialBootstrap();
        await delay(Math.min(10_000, 500 * 2 ** attempt), signal);
        await this.#fetchNewestHeads();
        continue;
      }
      const updates = new TargetQueue();
      this.#updates = updates;
      this.#syncTarget = ann;
      this.#reported = -1;
      try {
        const res = await syncState({
          store: this.#o.store.state,
          sources: usable.map((p) => networkStateSource(this.#o.libp2p, p.toString(), p, { timeoutMs: this.#timeoutMs })),
          target: ann.stateRoot,
          targetUpdates: updates,
          signal,
          concurrency: this.#o.concurrency ?? 8,
          requestTimeoutMs: this.#timeoutMs,
          sizeOf: responseSize,
          onProgress: (p) => {
            this.#syncProgress = p;
            this.#reportProgress(what, p);
            if (p.phase === 'at-target') updates.close();
          },
          onPenalise: (peer, reason, banned) => {
            this.#log(`${what}: peer ${peer} ${banned ? 'banned' : 'penalised'}: ${reason.name}: ${reason.message}`);
            if (banned) this.#banned.add(peer);
          },
        });
        const reached = this.#byRoot.get(toHex(res.target));
        if (!reached) throw new Error(`internal: the sync reached ${toHex(res.target)}, which no known announcement names`);
        const p = res.progress;
        this.#log(
          `${what} done: root ${toHex(res.root)} seq ${reached.seq}, ${p.keyValuesReceived} key-values, ${p.bytesReceived} bytes, ${p.requests} requests, ${p.peersUsed} peers, ${p.proofsRejected} rejected, ${p.peersBanned} banned`,
        );
        return reached;
      } catch (err) {
        if (signal.aborted || isAbort(err)) return undefined;
        this.#log(`${what} failed (${(err as Error).name}: ${(err as Error).message}); retrying`);
        await delay(Math.min(10_000, 250 * 2 ** attempt), signal);
        await this.#fetchNewestHeads();
      } finally {
        this.#updates = undefined;
      }
    }
    return undefined;
  }

  #reportProgress(what: string, p: StateSyncProgress): void {
    // a moved target sends done ranges back: report the furthest point reached
    const tenth = Math.floor(p.fractionDone * 10);
    if (tenth <= this.#reported) return;
    this.#reported = tenth;
    this.#log(`${what}: ${tenth * 10}% (${p.keyValuesReceived} key-values, ${p.bytesReceived} bytes, ${p.requests} requests)`);
  }

  /**
   * The store holds the state at `ann`: drop the sync progress and the history window in one
   * batch with the `follow` record, and serve a database opened afresh over it.
   */
  async #finish(ann: VerifiedAnnouncement): Promise<void> {
    const state = this.#o.store.state;
    const progress = await loadProgress(state);
    const ops: BatchOp[] = clearProgressOps(progress.segments);
    for await (const [k] of state.iterate({ gte: Uint8Array.of(HISTORY_PREFIX), lt: Uint8Array.of(HISTORY_PREFIX + 1) })) ops.push({ type: 'del', key: k });
    const cover: FollowRecord = { root: ann.stateRoot, heads: ann.heads, logSize: ann.logSize };
    ops.push(...underPrefix(WRITER_PREFIX, [{ type: 'put', key: FOLLOW_KEY, value: encodeFollow(cover) }]));
    await state.write(ops);
    this.#db = await MerkleDatabase.open(state, { historySize: this.#o.historySize ?? 300 });
    if (!equalBytes(this.#db.root, ann.stateRoot)) throw new Error(`internal: synced to ${toHex(this.#db.root)}, expected ${toHex(ann.stateRoot)}`);
    this.#dag.resetApplied(cover);
    this.#appliedLogSize = ann.logSize;
  }

  /** Change-proof catch-up to the newest announcement, serving held off meanwhile. */
  async #catchUp(why: string): Promise<void> {
    this.#log(`catch-up (${why}) from root ${toHex(this.#db!.root)} to seq ${this.#newest!.seq}`);
    this.#phase = 'catching-up';
    this.#stats.catchUps++;
    try {
      await this.#o.lock.write(async () => {
        const reached = await this.#syncToNewest('catch-up');
        if (reached) await this.#finish(reached);
      });
    } finally {
      if (!this.#life.signal.aborted) this.#phase = 'following';
    }
    // pending deltas never wait forever: what a catch-up did not cover and is too old goes
    const dropped = this.#dag.drop(this.#dag.expired(Date.now(), this.#o.pendingTimeoutMs ?? 10_000).map((d) => d.id));
    if (dropped.length) this.#log(`dropped ${dropped.length} expired pending deltas`);
  }

  async #dialBootstrap(): Promise<void> {
    await Promise.all(
      this.#o.bootstrap.map((a) =>
        this.#o.libp2p.dial(multiaddr(a), { signal: AbortSignal.any([this.#life.signal, AbortSignal.timeout(10_000)]) }).catch((err: unknown) => {
          if (!this.#life.signal.aborted) this.#log(`dial ${a}: ${(err as Error).message}`);
        }),
      ),
    );
  }

  // ---- follow ----------------------------------------------------------------------------------

  #kick(): void {
    if (this.#phase !== 'following' || this.#life.signal.aborted) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#working = (async () => {
      try {
        do {
          this.#again = false;
          if (this.#life.signal.aborted || this.#phase !== 'following') break;
          await this.#step();
        } while (this.#again);
      } catch (err) {
        if (!this.#life.signal.aborted) this.#log(`follow step failed: ${(err as Error)?.stack ?? String(err)}`);
      } finally {
        this.#busy = false;
      }
    })();
  }

  /** One round of the follow loop; sets `#again` when there is more to do at once. */
  async #step(): Promise<void> {
    const dag = this.#dag;
    const report = await dag.applyReady((d) => this.#apply(d));
    if (report.kind === 'needs-catch-up') {
      await this.#catchUp(report.reason === 'root-mismatch' ? `delta ${toHex(report.delta)} did not reproduce its root` : report.reason);
      this.#again = true;
      return;
    }
    const timeout = this.#o.pendingTimeoutMs ?? 10_000;
    if (dag.expired(Date.now(), timeout).length > 0) {
      await this.#catchUp(`deltas pending over ${timeout} ms`);
      this.#again = true;
      return;
    }
    const want = new Map<string, Uint8Array>();
    for (const id of dag.missingParents()) want.set(toHex(id), id);
    for (const h of this.#newest?.heads ?? []) if (!dag.knows(h)) want.set(toHex(h), h);
    if (want.size > 0) {
      const peer = await this.#deltaPeer();
      if (!peer) return;
      this.#stats.gapFills++;
      const r = await fillGaps([...want.values()], {
        source: deltaSource(this.#o.libp2p, peer, this.#timeoutMs),
        writerPublicKey: this.#writerKey,
        knows: (id) => dag.knows(id),
        maxTotal: this.#o.maxGap ?? 10_000,
        requestTimeoutMs: this.#timeoutMs,
        signal: this.#life.signal,
      });
      const now = Date.now();
      for (const d of r.deltas) dag.add(d, now);
      if (r.offences.length) this.#log(`gap fill: ${r.offences.length} offences by ${peer.toString()}`);
      if (r.kind === 'needs-catch-up') {
        if (r.reason === 'aborted') return;
        await this.#catchUp(`gap fill: ${r.reason}`);
      }
      this.#again = true;
      return;
    }
    if (this.#o.opLog.size < this.#appliedLogSize && Date.now() >= this.#logFillAfter) await this.#fillLog();
  }

  /** The peer to ask for deltas: the last gossip sender, else any serving peer. */
  async #deltaPeer(): Promise<PeerId | undefined> {
    const peers = (await servingPeers(this.#o.libp2p, this.#serving)).filter((p) => !this.#banned.has(p.toString()));
    const last = this.#lastSender;
    if (last && peers.some((p) => p.equals(last))) return last;
    return peers[0];
  }

  async #fillLog(): Promise<void> {
    const ann = this.#newest;
    if (!ann || ann.logSize < this.#appliedLogSize) return;
    const peers = (await servingPeers(this.#o.libp2p, this.#serving)).filter((p) => !this.#banned.has(p.toString()));
    // the writer has the whole log; other replicas may not
    peers.sort((a, b) => Number(b.toString() === this.#writerId) - Number(a.toString() === this.#writerId));
    for (const peer of peers) {
      try {
        await fillLog(
          { libp2p: this.#o.libp2p, peer, store: this.#o.store, log: this.#o.opLog, writerPublicKey: this.#writerKey, timeoutMs: this.#timeoutMs, signal: this.#life.signal },
          ann,
          this.#appliedLogSize,
        );
        this.#log(`log filled to ${this.#o.opLog.size} from ${peer.toString()}`);
        return;
      } catch (err) {
        if (this.#life.signal.aborted) return;
        this.#log(`log fill from ${peer.toString()} failed: ${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    this.#logFillAfter = Date.now() + 5_000;
  }

  /** Commits one delta through the database, with the follow record (and its log entry). */
  async #apply(d: VerifiedDelta): Promise<Uint8Array> {
    const db = this.#db!;
    const log = this.#o.opLog;
    const bytes = encodeDelta(d);
    const heads = [...this.#dag.heads().filter((h) => !d.parents.some((p) => equalBytes(p, h))), d.id];
    const logSize = Math.max(this.#appliedLogSize, d.logIndex + 1);
    let staged: ReturnType<OperationLog['stage']> | undefined;
    const root = await db.commit(d.actions, (root) => {
      const ops: BatchOp[] = underPrefix(WRITER_PREFIX, [{ type: 'put', key: FOLLOW_KEY, value: encodeFollow({ root, heads, logSize }) }]);
      if (d.logIndex === log.size) {
        staged = log.stage(d.id, bytes);
        ops.push(...underPrefix(LOG_PREFIX, staged.logOps), ...underPrefix(DELTA_PREFIX, staged.deltaOps));
      }
      return ops;
    });
    if (staged) log.applyStaged(staged);
    this.#appliedLogSize = logSize;
    this.#stats.deltasApplied++;
    this.#log(`applied log ${d.logIndex} root ${toHex(root)}`);
    return root;
  }
}
