/**
 * The engine host: everything the light client does, run inside the worker (issue 8,
 * DESIGN.md "The sync flow" steps 1–2). It owns the store, the peers, the newest verified
 * announcement and the sync, and answers the page's calls. Its I/O comes in through
 * `HostDeps` (store, lock, channel, event sink), so it runs in Node against a memory store.
 *
 * Flow: open the store → take the sync lock if free (`syncer`) or read (`reader`, following the
 * syncer's events on the BroadcastChannel and waiting to take over its lock) → ask every peer
 * for its newest signed announcement (verified against the writer key; the highest `seq`
 * wins) → `syncState` to its `stateRoot` with every connected peer as a source, resuming from
 * the progress in the store. Newer announcements (gossip or `/heads`) move the target. Every
 * time the engine stands at its target, `synced` fires.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { verifyAnnouncementAsync, type VerifiedAnnouncement } from '../../core/announcement.ts';
import { compareBytes, equalBytes, toHex } from '../../core/bytes.ts';
import { ProofError, RootNotFound, SyncStalled } from '../../core/errors.ts';
import { keyProof, verifyKeyProof } from '../../core/proof.ts';
import type { KVStore } from '../../core/store.ts';
import { MerkleTrie, valueKey } from '../../core/trie.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { InsufficientStorage, InvalidRemoteProof, KeyOutOfScope, NoPeers, ProofUnavailable, serializeError, WrongDatabase } from '../errors.ts';
import type { ClientRole, DeltaUpdate, PeerEvent, ProgressEvent, SyncedEvent, WireEvent } from '../events.ts';
import { responseSize } from '../network-source.ts';
import { singleKeyRequest, verifySingleKey } from '../single-key.ts';
import { syncState } from '../state-sync/driver.ts';
import { isAnswerFault } from '../state-sync/faults.ts';
import type { StateSyncProgress } from '../state-sync/engine.ts';
import { delay } from '../../sync/abort.ts';
import { PushQueue } from '../../sync/push-queue.ts';
import { Latch, TurnBatch } from './latch.ts';
import { peerStateSource, requestHeads, requestRangeProof, type RemotePeer } from './peer-calls.ts';
import type { GetResult, ProveResult, StatusResult, VerifiedResult, WorkerConfig } from './protocol.ts';
import { LiveHost, type LiveHostDeps } from '../live/host.ts';
import type { PendingDeltaStore } from '../live/pending-store.ts';
import type { LogCall, LogReply } from '../log/protocol.ts';
import { LogHost } from '../log/worker-host.ts';
import { gossipVerdict } from '../../protocol/gossip-verdict.ts';
import { PeerEventLimiter } from '../peer-event-limiter.ts';

/** The store the host needs: the core's seam plus lifecycle. */
export interface LocalStore extends KVStore {
  close(): Promise<void>;
  estimate?(): Promise<{ available: number | undefined }>;
}

export interface HostLock {
  release(): void;
}

/** What tabs tell each other on the database's BroadcastChannel. */
export type TabMessage =
  | { type: 'hello' }
  | { type: 'progress'; detail: ProgressEvent }
  | { type: 'synced'; detail: SyncedEvent }
  /** Deltas the syncing tab applied (live updates), in order: readers' subscriptions hear them too. */
  | { type: 'updates'; detail: DeltaUpdate[] };

export interface HostDeps {
  config: WorkerConfig;
  /** Events for the page. */
  emit(event: WireEvent): void;
  openStore(name: string): Promise<LocalStore>;
  deleteStore(name: string): Promise<void>;
  /** The sync lock: `tryAcquire` returns null when another tab holds it. */
  lock: { tryAcquire(): Promise<HostLock | null>; wait(signal: AbortSignal): Promise<HostLock> };
  /** Other tabs of this database; absent in tests with one tab. */
  channel?: { post(m: TabMessage): void; subscribe(listener: (m: TabMessage) => void): () => void; close(): void };
  heapUsed?(): number | undefined;
  /** The pending-delta store of live updates (default: in memory, lost on reload). */
  openPending?(name: string): Promise<PendingDeltaStore>;
}

const HEADS_TIMEOUT_MS = 10_000;
const VERIFIED_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
const KNOWN_ROOTS = 64;
/** One `peer` event per peer and gossip offence this often at most (a flood is thousands a second). */
const OFFENCE_EVENT_INTERVAL_MS = 10_000;

/** One running sync: stopped through its controller; `updates` is the current attempt's target queue. */
interface SyncRun {
  controller: AbortController;
  updates: PushQueue<Uint8Array> | undefined;
  done: Promise<void>;
}

const isAbort = (err: unknown): boolean => (err as { name?: string } | null)?.name === 'AbortError';

export class EngineHost {
  readonly #deps: HostDeps;
  readonly #config: WorkerConfig;
  readonly #writerKey: Uint8Array;
  readonly #dbId: Uint8Array;
  readonly #peers = new Map<string, RemotePeer>();
  /** Peers that connect while a sync runs, for it to use (one queue per sync attempt). */
  #joiningSources: PushQueue<RemotePeer> | undefined;
  readonly #announcement = new Latch<VerifiedAnnouncement>();
  readonly #synced = new Latch<SyncedEvent>();
  /** Root (hex) → seq of recent signed announcements. */
  readonly #seqOf = new Map<string, number>();
  /** Root (hex) → recent signed announcements (their heads and log size place a synced state in the DAG). */
  readonly #annOf = new Map<string, VerifiedAnnouncement>();
  readonly #life = new AbortController();
  #store: LocalStore | undefined;
  readonly #opened = new Latch<LocalStore>();
  #role: ClientRole = 'starting';
  #lock: HostLock | undefined;
  #paused: boolean;
  #sync: SyncRun | undefined;
  #lastProgress: ProgressEvent | undefined;
  #unsubscribe: (() => void) | undefined;
  #peerChange = new Latch<true>();
  /** Heads asked of each peer as it connected, until the first round of `#headsLoop` awaits them. */
  #firstAsks: Promise<number>[] | undefined = [];
  #verifiedRound = 0;
  #fatal = false;
  /** Live updates (issue 5): deltas applied between syncs; see live/host.ts. */
  #live: LiveHost | undefined;
  /** The history log (issue 6): `client.log.fetch`; see log/worker-host.ts. */
  readonly #logs: LogHost;
  /** What peers do wrong on gossip reaches the page as `peer` events, one per peer and reason per interval. */
  readonly #offences: PeerEventLimiter;

  constructor(deps: HostDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#paused = !deps.config.autoStart;
    this.#writerKey = peerIdFromString(deps.config.writer).publicKey!.raw;
    this.#dbId = new TextEncoder().encode(deps.config.db);
    this.#offences = new PeerEventLimiter({ intervalMs: OFFENCE_EVENT_INTERVAL_MS });
    this.#logs = new LogHost({
      peers: () => [...this.#peers.values()],
      store: (signal) => this.#opened.wait(signal),
      newest: () => {
        const a = this.#announcement.value;
        return a && a.logSize > 0 ? { root: a.logRoot, size: a.logSize, seq: a.seq } : undefined;
      },
      timeoutMs: deps.config.sync.requestTimeoutMs ?? 30_000,
      banAfter: deps.config.sync.banAfter,
      onPenalise: (peer, banned, reason) => {
        this.#peerEvent(peer, banned ? 'banned' : 'penalised', `log: ${(reason as Error)?.message ?? String(reason)}`);
      },
    });
    if (this.#config.ranges) {
      for (const r of this.#config.ranges) {
        if (r.start && r.end && compareBytes(r.start, r.end) > 0) throw new RangeError('range start is after its end');
      }
    }
  }

  get role(): ClientRole {
    return this.#role;
  }

  // ---- peers and announcements --------------------------------------------------------------

  /** Adds a connected peer and asks it for its newest head; resolves once it answered or failed. */
  addPeer(peer: RemotePeer): Promise<void> {
    const known = this.#peers.has(peer.id);
    this.#peers.set(peer.id, peer);
    // a sync already running takes the new peer as a source (replicas dialed later share the work)
    if (!known) this.#joiningSources?.push(peer);
    this.#peerEvent(peer.id, 'connected');
    this.#peerChange.set(true);
    // ask at once: `getVerified` can answer as soon as one peer gave a signed head
    const asked = this.#askHeads([peer]);
    this.#firstAsks?.push(asked);
    return asked.then(() => undefined);
  }

  removePeer(id: string): void {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#peers.delete(id);
    this.#peerEvent(id, 'disconnected', undefined, peer);
  }

  peerFailed(peer: string, reason: string, transport: RemotePeer['transport'], via: RemotePeer['via']): void {
    this.#peerEvent(peer, 'failed', reason, { transport, via });
  }

  /** Emits a `peer` event; the connection's transport and thread come from `known`, else from the peer's record. */
  #peerEvent(peer: string, status: PeerEvent['status'], reason?: string, known?: Pick<PeerEvent, 'transport' | 'via'>): void {
    const p = known ?? this.#peers.get(peer);
    this.#emit({ type: 'peer', detail: { peer, status, ...(reason === undefined ? {} : { reason }), transport: p?.transport, via: p?.via } });
  }

  /** Gossip: a delta (0x01) or an announcement (0x02) from the database topic; `from`: the peer that relayed it. */
  offerGossip(bytes: Uint8Array, from?: string): void {
    void this.judgeGossip(bytes, from);
  }

  /**
   * gossipsub's topic validator (worker/entry.ts): judges one message (protocol/gossip-verdict.ts)
   * and takes what is valid. `reject` makes gossipsub count it against the peer (its score
   * graylists a flooder) and never forward it; `ignore` drops it without blame (a duplicate, a
   * stale announcement, a delta on a chain given up on). A rejected message becomes a `peer`
   * event, at most one per peer and reason per interval.
   */
  async judgeGossip(bytes: Uint8Array, from = 'unknown'): Promise<'accept' | 'reject' | 'ignore'> {
    const live = this.#live;
    const v = await gossipVerdict(bytes, {
      writerPublicKey: this.#writerKey,
      db: this.#dbId,
      verifyDelta: live ? (b) => live.verifyDelta(b) : undefined,
      // WebCrypto where the runtime has Ed25519: noble takes ~7 ms a signature here
      verifyAnnouncement: (a) => verifyAnnouncementAsync(a, this.#writerKey),
      knowsDelta: live ? (id) => live.knowsDelta(id) : undefined,
      abandoned: live ? (d) => live.abandoned(d) : undefined,
      newestSeq: () => this.#announcement.value?.seq,
    });
    if (v.result === 'reject') {
      this.#offence(from, `gossip: ${v.reason}`, v.detail);
      return 'reject';
    }
    if (v.result === 'ignore') return 'ignore';
    if (v.kind === 'delta') live?.offerVerified(v.delta, bytes, from);
    else if (!live?.droppingGossip) this.#offer(v.announcement);
    return 'accept';
  }

  /** A peer did something wrong: a `peer` event unless one of the same reason went out within the interval. */
  #offence(peer: string, reason: string, detail?: string): void {
    const a = this.#offences.admit(peer, reason, Date.now());
    if (!a.emit) return;
    const more = a.suppressed > 0 ? `; ${a.suppressed} more since the last report` : '';
    this.#peerEvent(peer, 'penalised', `${reason}${detail ? ` (${detail})` : ''}${more}`);
  }

  /** A verified announcement; `from`: the peer that answered `/heads` with it. */
  #offer(ann: VerifiedAnnouncement, from?: string): void {
    if (!equalBytes(ann.db, this.#dbId)) {
      // a peer's doing (a replay): its event, rate-limited, not one page error each time
      if (from !== undefined) return this.#offence(from, 'heads: wrong-database', `an announcement of database "${new TextDecoder().decode(ann.db)}"`);
      this.#emitError(new WrongDatabase(`the writer signed an announcement for database "${new TextDecoder().decode(ann.db)}", not "${this.#config.db}"`), false);
      return;
    }
    const current = this.#announcement.value;
    if (current && ann.seq <= current.seq) return;
    this.#seqOf.set(toHex(ann.stateRoot), ann.seq);
    if (this.#seqOf.size > KNOWN_ROOTS) this.#seqOf.delete(this.#seqOf.keys().next().value!);
    this.#annOf.set(toHex(ann.stateRoot), ann);
    if (this.#annOf.size > KNOWN_ROOTS) this.#annOf.delete(this.#annOf.keys().next().value!);
    this.#announcement.set(ann);
    this.#emit({ type: 'announcement', detail: { seq: ann.seq, root: ann.stateRoot } });
    if (ann.logSize > 0) this.#logs.announce({ root: ann.logRoot, size: ann.logSize, seq: ann.seq });
    if (this.#live?.offerAnnouncement(ann)) return; // live: deltas bring the state there
    this.#sync?.updates?.push(ann.stateRoot);
  }

  /** Asks `peers` for their heads; resolves when all answered or failed. */
  async #askHeads(peers: RemotePeer[]): Promise<number> {
    let ok = 0;
    await Promise.all(
      peers.map(async (peer) => {
        try {
          this.#offer(await requestHeads(peer, this.#writerKey, { timeoutMs: HEADS_TIMEOUT_MS, signal: this.#life.signal, db: this.#dbId }), peer.id);
          ok++;
        } catch (err) {
          if (this.#life.signal.aborted) return;
          this.#peerEvent(peer.id, 'penalised', `heads: ${(err as Error).name}: ${(err as Error).message}`, peer);
        }
      }),
    );
    return ok;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Opens the store and takes a role (call at once, while the first dials run): `syncer` if
   * the sync lock is free, else `reader`. Syncing waits for a signed head.
   */
  async start(): Promise<void> {
    this.#store = await this.#deps.openStore(this.#config.storageName);
    this.#live = await LiveHost.open(this.#liveDeps(), this.#store);
    this.#opened.set(this.#store);
    this.#unsubscribe = this.#deps.channel?.subscribe((m) => this.#onTab(m));
    const lock = await this.#deps.lock.tryAcquire();
    if (lock) this.#becomeSyncer(lock);
    else {
      this.#setRole('reader');
      this.#deps.channel?.post({ type: 'hello' });
      this.#deps.lock.wait(this.#life.signal).then(
        (l) => this.#becomeSyncer(l),
        () => {},
      );
    }
  }

  /** The first round of dials has settled: report when no peer gave a head, poll if asked. */
  peersSettled(): void {
    void this.#headsLoop();
  }

  #setRole(role: ClientRole): void {
    this.#role = role;
    this.#emit({ type: 'role', detail: { role } });
  }

  #becomeSyncer(lock: HostLock): void {
    if (this.#life.signal.aborted) return lock.release();
    this.#lock = lock;
    this.#setRole('syncer');
    if (!this.#paused) this.#startSync();
  }

  /** First heads from every peer; then, while no gossip peer is connected, poll. */
  async #headsLoop(): Promise<void> {
    const signal = this.#life.signal;
    let failures = 0;
    let first = true;
    while (!signal.aborted) {
      const peers = [...this.#peers.values()];
      // every peer was asked when it connected: the first round waits for those answers
      let answered: number;
      if (first) {
        const asks = this.#firstAsks ?? [];
        this.#firstAsks = undefined;
        answered = (await Promise.all(asks)).reduce((a, b) => a + b, 0);
      } else answered = peers.length ? await this.#askHeads(peers) : 0;
      first = false;
      if (signal.aborted) return;
      if (answered === 0 && !this.#announcement.value) {
        this.#emitError(new NoPeers(`none of ${peers.length} connected peer(s) gave a signed announcement (${this.#config.dial.length} bootstrap address(es) in the worker${this.#config.bridged ? ', more on the main thread' : ''})`), false);
        failures++;
      } else failures = 0;
      const poll = this.#config.headsPollMs;
      const gossip = [...this.#peers.values()].some((p) => p.via === 'worker');
      try {
        if (!this.#announcement.value) {
          // nothing yet: retry on a new peer or after a backoff
          this.#peerChange.reset();
          await Promise.race([this.#peerChange.wait(signal), delay(Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures), signal)]);
        } else if (poll > 0 && !gossip) await delay(poll, signal);
        else return;
      } catch {
        return;
      }
    }
  }

  #startSync(): void {
    if (this.#sync || this.#fatal || this.#role !== 'syncer' || this.#life.signal.aborted) return;
    const controller = new AbortController();
    const entry: SyncRun = { controller, updates: undefined, done: Promise.resolve() };
    entry.done = this.#runSync(controller.signal, entry).finally(() => {
      if (this.#sync === entry) this.#sync = undefined;
    });
    this.#sync = entry;
  }

  async #stopSync(reason: string): Promise<void> {
    const s = this.#sync;
    if (!s) return;
    s.controller.abort(new DOMException(reason, 'AbortError'));
    s.updates?.close();
    await s.done;
  }

  async #runSync(signal: AbortSignal, entry: { updates: PushQueue<Uint8Array> | undefined }): Promise<void> {
    let failures = 0;
    let checkedQuota = false;
    while (!signal.aborted) {
      try {
        const ann = await this.#announcement.wait(signal);
        const store = await this.#opened.wait(signal);
        if (!checkedQuota) {
          checkedQuota = true;
          await this.#checkQuota(store);
        }
        // live updates: a stored position may make this sync unnecessary (live/host.ts)
        if (this.#live && (await this.#live.beforeSync(this.#announcement.value ?? ann))) return;
        const peers = [...this.#peers.values()];
        if (peers.length === 0) throw new NoPeers('no connected peer to sync from');
        const timeout = this.#config.sync.requestTimeoutMs ?? 30_000;
        // a fresh queue per attempt; heads newer than `target` arrive through it
        const updates = new PushQueue<Uint8Array>();
        entry.updates = updates;
        const joining = new PushQueue<RemotePeer>();
        this.#joiningSources = joining;
        const target = this.#announcement.value?.stateRoot ?? ann.stateRoot;
        this.#emitProgress(undefined, target);
        try {
          await syncState({
            store,
            sources: peers.map((p) => peerStateSource(p, timeout)),
            sourceUpdates: (async function* () {
              for await (const p of joining) yield peerStateSource(p, timeout);
            })(),
            target,
            ranges: this.#config.ranges,
            targetUpdates: updates,
            signal,
            concurrency: this.#config.sync.concurrency,
            keyLimit: this.#config.sync.keyLimit,
            requestTimeoutMs: timeout,
            banAfter: this.#config.sync.banAfter,
            sizeOf: responseSize,
            onProgress: (p) => {
              failures = 0;
              this.#onProgress(p);
            },
            onPenalise: (peer, reason, banned) => {
              this.#peerEvent(peer, banned ? 'banned' : 'penalised', `${reason.name}: ${reason.message}`);
            },
          });
        } finally {
          joining.close();
          if (this.#joiningSources === joining) this.#joiningSources = undefined;
        }
        return; // only when the updates end (the sync was stopped)
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        const name = (err as Error).name;
        if (name === 'StorageQuotaExceeded' || name === 'InsufficientStorage') {
          // the store stays at its last committed state and readable; syncing stops
          this.#fatal = true;
          this.#emitError(err as Error, true);
          return;
        }
        this.#emitError(err as Error, false);
        failures++;
        // stalled (every peer banned or failing) or no peers: wait for a new peer, or back off
        this.#peerChange.reset();
        const wait = err instanceof SyncStalled || name === 'NoPeers' ? MAX_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, 250 * 2 ** failures);
        try {
          await Promise.race([this.#peerChange.wait(signal), delay(wait, signal)]);
        } catch {
          return;
        }
      }
    }
  }

  async #checkQuota(store: LocalStore): Promise<void> {
    const min = this.#config.minFreeBytes;
    if (!(min > 0) || !store.estimate) return;
    const trie = await MerkleTrie.open(store);
    if (!equalBytes(trie.root, EMPTY_ROOT)) return; // not a first sync
    const { available } = await store.estimate();
    if (available !== undefined && available < min) {
      throw new InsufficientStorage(`only ${available} bytes of storage quota are free; the sync needs at least ${min}. Free space or call navigator.storage.persist() from the page.`, { available, needed: min });
    }
  }

  #onProgress(p: StateSyncProgress): void {
    const detail = this.#emitProgress(p, p.target);
    if (p.phase === 'at-target') {
      const synced: SyncedEvent = { root: p.target, seq: this.#seqOf.get(toHex(p.target)) ?? detail.seq ?? -1, localRoot: p.localRoot };
      this.#synced.set(synced);
      this.#emit({ type: 'synced', detail: synced });
      this.#deps.channel?.post({ type: 'synced', detail: synced });
      this.#live?.atTarget(p.target);
    }
  }

  #emitProgress(p: StateSyncProgress | undefined, target: Uint8Array): ProgressEvent {
    const detail: ProgressEvent = {
      phase: p?.phase ?? 'connecting',
      role: this.#role,
      target,
      seq: this.#seqOf.get(toHex(target)),
      keyValues: p?.keyValuesReceived ?? 0,
      bytes: p?.bytesReceived ?? 0,
      requests: p?.requests ?? 0,
      rangesDone: p?.rangesDone ?? 0,
      fraction: p?.fractionDone ?? 0,
      segments: p?.segments,
      peersUsed: p?.peersUsed ?? 0,
      peersBanned: p?.peersBanned ?? 0,
      proofsRejected: p?.proofsRejected ?? 0,
      failures: p?.failures ?? 0,
      hedges: p?.hedges ?? 0,
      targetUpdates: p?.targetUpdates ?? 0,
    };
    this.#lastProgress = detail;
    this.#emit({ type: 'progress', detail });
    this.#deps.channel?.post({ type: 'progress', detail });
    return detail;
  }

  #onTab(m: TabMessage): void {
    if (m.type === 'hello') {
      // a new reader: tell it where the sync stands
      if (this.#role !== 'syncer') return;
      if (this.#lastProgress) this.#deps.channel?.post({ type: 'progress', detail: this.#lastProgress });
      if (this.#synced.value) this.#deps.channel?.post({ type: 'synced', detail: this.#synced.value });
      return;
    }
    if (this.#role !== 'reader') return;
    if (m.type === 'progress') this.#emit({ type: 'progress', detail: { ...m.detail, role: 'reader' } });
    else if (m.type === 'updates') {
      for (const u of m.detail) {
        const prev = this.#synced.value;
        // a partial sync's own root is not in the update: it stays the last one heard (full sync: the root)
        const partial = prev && !equalBytes(prev.localRoot, prev.root);
        this.#synced.set({ root: u.root, seq: u.seq ?? prev?.seq ?? -1, localRoot: partial ? prev.localRoot : u.root });
        this.#emit({ type: 'update', detail: u });
      }
    } else {
      this.#synced.set(m.detail);
      this.#emit({ type: 'synced', detail: m.detail });
    }
  }

  // ---- calls --------------------------------------------------------------------------------

  pause(): void {
    this.#paused = true;
    void this.#stopSync('paused');
    void this.#live?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#fatal = false;
    this.#startSync();
  }

  async synced(signal?: AbortSignal): Promise<SyncedEvent> {
    return this.#synced.wait(signal);
  }

  #inScope(key: Uint8Array): boolean {
    const ranges = this.#config.ranges;
    if (!ranges) return true;
    return ranges.some((r) => (!r.start || compareBytes(key, r.start) >= 0) && (!r.end || compareBytes(key, r.end) <= 0));
  }

  async get(key: Uint8Array, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<GetResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    if (!this.#inScope(key)) throw new KeyOutOfScope('the key lies outside the ranges this client syncs; use getVerified', { key });
    if (consistency === 'synced') await this.#synced.wait(signal);
    const store = await this.#opened.wait(signal);
    // live: the applied state, which may be ahead of the store (the follower's journal)
    const live = this.#live ? await this.#live.read(key) : null;
    return { key, value: live !== null ? live : await store.get(valueKey(key)) };
  }

  async list(start: Uint8Array | undefined, end: Uint8Array | undefined, limit: number, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<{ key: Uint8Array; value: Uint8Array }[]> {
    if (consistency === 'synced') await this.#synced.wait(signal);
    const store = await this.#opened.wait(signal);
    await this.#live?.stored();
    const trie = await MerkleTrie.open(store);
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for await (const kv of trie.entries(start, end, limit)) {
      signal?.throwIfAborted();
      out.push({ key: kv.key, value: kv.value });
    }
    return out;
  }

  /** A single-key proof from the local trie, verified before it is returned. */
  async prove(key: Uint8Array, signal?: AbortSignal): Promise<ProveResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    for (let attempt = 0; attempt < 3; attempt++) {
      signal?.throwIfAborted();
      const store = await this.#opened.wait(signal);
      await this.#live?.stored();
      const trie = await MerkleTrie.open(store);
      if (equalBytes(trie.root, EMPTY_ROOT)) throw new ProofUnavailable('the local state is empty: nothing is synced yet');
      const { value, proof } = await keyProof(trie.view(), key);
      try {
        // a commit between reading the root and the nodes gives a proof that does not verify
        verifyKeyProof(trie.root, key, value, proof);
      } catch (err) {
        if (err instanceof ProofError) continue;
        throw err;
      }
      return { key, value, root: trie.root, proof, seq: this.#seqOf.get(toHex(trie.root)) };
    }
    throw new ProofUnavailable('the local state changed under the proof three times; try again');
  }

  /** The key's value proven by a peer against the newest signed root. */
  async getVerified(key: Uint8Array, signal?: AbortSignal): Promise<VerifiedResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    const ann = await this.#announcement.wait(signal);
    const root = ann.stateRoot;
    const request = singleKeyRequest(root, key);
    const peers = [...this.#peers.values()];
    if (peers.length === 0) throw new NoPeers('no connected peer to ask');
    // spread the questions: start with a different peer each time
    const first = this.#verifiedRound++ % peers.length;
    const rejected: string[] = [];
    const failed: string[] = [];
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[(first + i) % peers.length];
      let proof;
      try {
        proof = await this.#askKey(peer, request, signal);
      } catch (err) {
        signal?.throwIfAborted();
        // a malformed or oversized answer is an invalid one, as a proof that does not verify
        if (isAnswerFault(err)) {
          rejected.push(`${peer.id}: ${err.name}`);
          this.#peerEvent(peer.id, 'penalised', `single-key proof: ${err.name}: ${err.message}`, peer);
        } else if (!(err instanceof RootNotFound)) failed.push(`${peer.id}: ${(err as Error).name}`);
        continue;
      }
      try {
        return { key, value: verifySingleKey(root, key, proof), root, seq: ann.seq, peer: peer.id };
      } catch (err) {
        if (!(err instanceof ProofError)) throw err;
        rejected.push(`${peer.id}: ${err.name}`);
        this.#peerEvent(peer.id, 'penalised', `single-key proof: ${err.name}: ${err.message}`, peer);
      }
    }
    if (rejected.length) throw new InvalidRemoteProof(`no valid proof of the key at seq ${ann.seq}: ${rejected.join(', ')}`, { rejected: rejected.length });
    throw new NoPeers(`no peer answered for the key at seq ${ann.seq}: ${failed.join(', ') || 'none has that root'}`);
  }

  /** One peer's answer; a peer that refuses for load (its per-peer limits) is asked again shortly. */
  async #askKey(peer: RemotePeer, request: ReturnType<typeof singleKeyRequest>, signal: AbortSignal | undefined) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await requestRangeProof(peer, request, { timeoutMs: VERIFIED_TIMEOUT_MS, signal });
      } catch (err) {
        const name = (err as Error).name;
        if (attempt >= 4 || (name !== 'TooManyStreams' && name !== 'RateLimited')) throw err;
        await delay(25 * 2 ** attempt, signal);
      }
    }
  }

  async clear(): Promise<void> {
    await this.#stopSync('clearing');
    this.#opened.reset();
    await this.#live?.closeStores();
    await this.#store?.close();
    await this.#deps.deleteStore(this.#config.storageName);
    this.#synced.reset();
    this.#fatal = false;
    this.#store = await this.#deps.openStore(this.#config.storageName);
    await this.#live?.reopen(this.#store);
    this.#opened.set(this.#store);
    if (!this.#paused) this.#startSync();
  }

  status(): StatusResult {
    const ann = this.#announcement.value;
    return {
      role: this.#role,
      paused: this.#paused,
      seq: ann?.seq,
      target: ann?.stateRoot,
      synced: this.#synced.value,
      peers: [...this.#peers.values()].map((p) => ({ peer: p.id, via: p.via, transport: p.transport })),
      heapUsed: this.#deps.heapUsed?.(),
      live: this.#live?.status(),
    };
  }

  /** Test hook: ignore the next `count` gossip deltas, and announcements meanwhile (a filtering relay). */
  dropGossip(count: number): void {
    this.#live?.dropGossip(count);
  }

  /** A `log` call of the page: open, pull or close a history fetch. */
  log(call: LogCall, signal?: AbortSignal): Promise<LogReply> {
    return this.#logs.call(call, signal);
  }

  async close(): Promise<void> {
    if (this.#role === 'closed') return;
    this.#life.abort(new DOMException('the client closed', 'AbortError'));
    await this.#logs.close();
    await this.#stopSync('closing');
    await this.#live?.close();
    this.#unsubscribe?.();
    this.#deps.channel?.close();
    this.#lock?.release();
    await this.#store?.close();
    this.#setRole('closed');
  }

  // ---- live updates -------------------------------------------------------------------------

  /** What live/host.ts needs of this host: a narrow seam, so the two stay separate. */
  #liveDeps(): LiveHostDeps {
    return {
      config: this.#config,
      writerPublicKey: this.#writerKey,
      openPending: this.#deps.openPending,
      peers: () => [...this.#peers.values()],
      isSyncer: () => this.#role === 'syncer' && !this.#paused && !this.#fatal,
      holdsLock: () => this.#role === 'syncer',
      announcement: () => this.#announcement.value,
      announcementOf: (root) => this.#annOf.get(toHex(root)),
      seqOf: (root) => this.#seqOf.get(toHex(root)),
      askHeads: () => this.#askHeads([...this.#peers.values()]).then(() => undefined),
      stopSync: () => this.#stopSync('live'),
      startSync: () => this.#startSync(),
      emit: (e) => {
        this.#emit(e);
        // other tabs read the store: they hear of an update once the store holds it
        if (e.type === 'update') this.#unstoredUpdates.push(e.detail);
      },
      stored: () => {
        for (const u of this.#unstoredUpdates) this.#tabUpdates.push(u);
        this.#unstoredUpdates = [];
      },
      emitError: (err, fatal) => {
        if (fatal) this.#fatal = true;
        this.#emitError(err, fatal);
      },
      offence: (peer, reason) => this.#offence(peer, reason),
      synced: (s, announce) => {
        this.#synced.set(s);
        if (!announce) return;
        this.#emit({ type: 'synced', detail: s });
        this.#deps.channel?.post({ type: 'synced', detail: s });
      },
    };
  }

  // ---- events -------------------------------------------------------------------------------

  /** Updates emitted before the store holds them (the follower's journal): the other tabs wait. */
  #unstoredUpdates: DeltaUpdate[] = [];
  /** Updates for the other tabs, one message per turn (a live commit emits one per delta). */
  readonly #tabUpdates = new TurnBatch<DeltaUpdate>((list) => this.#deps.channel?.post({ type: 'updates', detail: list }));

  #emit(event: WireEvent): void {
    this.#deps.emit(event);
  }

  #emitError(error: Error, fatal: boolean): void {
    this.#emit({ type: 'error', detail: { error: serializeError(error), fatal } });
  }
}
