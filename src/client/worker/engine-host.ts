/**
 * The engine host: everything the light client does, run inside the worker (docs/design.md "The
 * sync flow" steps 1–2). It owns the store, the peers, the newest verified
 * announcement and the sync, and answers the page's calls. Its I/O comes in through
 * `HostDeps` (store, lock, channel, event sink), so it runs in Node against a memory store.
 *
 * Flow: open the store → take the sync lock if free (`syncer`) or read (`reader`, following the
 * syncer's events on the BroadcastChannel and waiting to take over its lock) → ask every peer
 * for its newest signed announcement (verified against the writer key; the highest `seq`
 * wins) → `syncState` to its `stateRoot` with every connected peer as a source, resuming from
 * the progress in the store. Newer announcements (gossip or `/heads`) move the target. Every
 * time the engine stands at its target, `synced` fires.
 *
 * This file holds the roles (sync lock, other tabs) and wires the parts: announcements.ts (signed
 * heads and gossip), sync-loop.ts (the syncer's loop), host-reads.ts (the page's reads),
 * live/host.ts (live updates) and history/worker-host.ts (history). Every `peer` event is built
 * here, by `#peerEvent`.
 */
import { serializeError } from '../errors.ts';
import { writerPublicKey } from '../writer-key.ts';
import type { ClientRole, DeltaUpdate, PeerEvent, ProgressEvent, SyncedEvent, WireEvent } from '../events.ts';
import { LiveHost, type LiveHostDeps } from '../live/host.ts';
import type { LogCall, LogReply } from '../history/worker-messages.ts';
import { LogHost } from '../history/worker-host.ts';
import type { StateSyncProgress } from '../../sync/state/engine.ts';
import { Announcements, type MirrorCheckpoint } from './announcements.ts';
import type { HostDeps, HostLock, LocalStore, TabMessage } from './host-deps.ts';
import { HostReads } from './host-reads.ts';
import { Latch } from './latch.ts';
import { TurnBatch } from './turn-batch.ts';
import type { RemotePeer } from './peer-calls.ts';
import { progressEvent } from './progress-event.ts';
import type { GetResult, ProveResult, StatusResult, VerifiedResult, WorkerConfig } from './worker-messages.ts';
import { SyncLoop } from './sync-loop.ts';
import { readerSteps } from './tab-messages.ts';

export type { HostDeps, HostLock, LocalStore, TabMessage } from './host-deps.ts';

export class EngineHost {
  readonly #deps: HostDeps;
  readonly #config: WorkerConfig;
  readonly #writerKey: Uint8Array;
  readonly #dbId: Uint8Array;
  readonly #peers = new Map<string, RemotePeer>();
  readonly #life = new AbortController();
  /** The newest signed head, recent ones by root, and what peers do wrong with them. */
  readonly #heads: Announcements;
  readonly #synced = new Latch<SyncedEvent>();
  #store: LocalStore | undefined;
  readonly #opened = new Latch<LocalStore>();
  #role: ClientRole = 'starting';
  #lock: HostLock | undefined;
  #paused: boolean;
  readonly #sync: SyncLoop;
  /** The checkpoints the static mirrors name (config.snapshots), once asked. */
  #mirrors: Promise<MirrorCheckpoint[]> = Promise.resolve([]);
  readonly #reads: HostReads;
  #lastProgress: ProgressEvent | undefined;
  #unsubscribe: (() => void) | undefined;
  #peerChange = new Latch<true>();
  #fatal = false;
  /** Live updates: deltas applied between syncs; see live/host.ts. */
  #live: LiveHost | undefined;
  /** The history log: `client.log.fetch`; see history/worker-host.ts. */
  readonly #logs: LogHost;

  constructor(deps: HostDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#paused = !deps.config.autoStart;
    this.#writerKey = writerPublicKey(deps.config.writer);
    this.#dbId = new TextEncoder().encode(deps.config.db);
    this.#heads = new Announcements({
      config: this.#config,
      writerPublicKey: this.#writerKey,
      db: this.#dbId,
      signal: this.#life.signal,
      peers: () => [...this.#peers.values()],
      peerChange: this.#peerChange,
      live: () => this.#live,
      accepted: (ann) => {
        if (ann.logSize > 0) this.#logs.announce({ root: ann.logRoot, size: ann.logSize, seq: ann.seq });
        if (this.#live?.offerAnnouncement(ann)) return; // live: deltas bring the state there
        this.#sync.newTarget(ann.stateRoot);
      },
      emit: (e) => this.#emit(e),
      emitError: (err, fatal) => this.#emitError(err, fatal),
      peerEvent: (peer, status, reason, known) => this.#peerEvent(peer, status, reason, known),
    });
    this.#logs = new LogHost({
      peers: () => [...this.#peers.values()],
      store: (signal) => this.#opened.wait(signal),
      newest: () => {
        const a = this.#heads.newest.value;
        return a && a.logSize > 0 ? { root: a.logRoot, size: a.logSize, seq: a.seq } : undefined;
      },
      timeoutMs: deps.config.sync.requestTimeoutMs ?? 30_000,
      banAfter: deps.config.sync.banAfter,
      onPenalise: (peer, banned, reason) => {
        this.#peerEvent(peer, banned ? 'banned' : 'penalised', `log: ${(reason as Error)?.message ?? String(reason)}`);
      },
    });
    this.#sync = new SyncLoop({
      config: this.#config,
      announcement: this.#heads.newest,
      store: (signal) => this.#opened.wait(signal),
      live: () => this.#live,
      peers: () => [...this.#peers.values()],
      peerChange: this.#peerChange,
      mirrors: () => this.#mirrors,
      starting: (target) => this.#emitProgress(undefined, target),
      progress: (p, interim) => this.#onProgress(p, interim),
      peerEvent: (peer, status, reason) => this.#peerEvent(peer, status, reason),
      failed: (err, fatal) => this.#failed(err, fatal),
    });
    this.#reads = new HostReads({
      ranges: this.#config.ranges,
      synced: (signal) => this.#synced.wait(signal),
      store: (signal) => this.#opened.wait(signal),
      live: () => this.#live,
      announcement: (signal) => this.#heads.newest.wait(signal),
      peers: () => [...this.#peers.values()],
      seqOf: (root) => this.#heads.recent.seqOf(root),
      peerEvent: (peer, status, reason, known) => this.#peerEvent(peer, status, reason, known),
    });
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
    if (!known) this.#sync.peerJoined(peer);
    this.#peerEvent(peer.id, 'connected');
    this.#peerChange.set(true);
    return this.#heads.peerConnected(peer).then(() => undefined);
  }

  removePeer(id: string): void {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#peers.delete(id);
    // the running sync gives its requests to the others (the bootstrap node may be the one gone)
    this.#sync.peerLeft(id);
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

  /** Gossip: a delta (0x01) or an announcement (0x02, 0x03) from the database topic; `from`: the peer that relayed it. */
  offerGossip(bytes: Uint8Array, from?: string): void {
    void this.judgeGossip(bytes, from);
  }

  /**
   * gossipsub's topic validator (worker/entry.ts): judges one message and takes what is valid
   * (announcements.ts). A rejected message becomes a `peer` event, at most one per peer and
   * reason per interval.
   */
  judgeGossip(bytes: Uint8Array, from = 'unknown'): Promise<'accept' | 'reject' | 'ignore'> {
    return this.#heads.judgeGossip(bytes, from);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Opens the store and takes a role (call at once, while the first dials run): `syncer` if
   * the sync lock is free, else `reader`. Syncing waits for a signed head.
   */
  async start(): Promise<void> {
    this.#store = await this.#deps.openStore(this.#config.storageName);
    this.#live = await LiveHost.open(this.#liveDeps(), this.#store);
    // a mirror's announcement names its checkpoint, maybe before any peer answers; set before
    // the store opens, so the sync loop (which waits for the store) finds it
    if (this.#config.snapshots?.length) this.#mirrors = this.#heads.askSnapshots();
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
    void this.#heads.headsLoop();
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

  #startSync(): void {
    if (this.#fatal || this.#role !== 'syncer' || this.#life.signal.aborted) return;
    this.#sync.start();
  }

  #onProgress(p: StateSyncProgress, interim?: boolean): void {
    const detail = this.#emitProgress(p, p.target);
    // at a checkpoint on the way to the head the state is not where the page asked to be
    if (p.phase === 'at-target' && !interim) {
      const synced: SyncedEvent = { root: p.target, seq: this.#heads.recent.seqOf(p.target) ?? detail.seq ?? -1, localRoot: p.localRoot };
      this.#synced.set(synced);
      this.#emit({ type: 'synced', detail: synced });
      this.#deps.channel?.post({ type: 'synced', detail: synced });
      this.#live?.atTarget(p.target);
    }
  }

  #emitProgress(p: StateSyncProgress | undefined, target: Uint8Array): ProgressEvent {
    const detail = progressEvent(p, target, this.#role, this.#heads.recent.seqOf(target));
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
    for (const step of readerSteps(m, this.#synced.value)) {
      if (step.synced) this.#synced.set(step.synced);
      this.#emit(step.event);
    }
  }

  // ---- calls --------------------------------------------------------------------------------

  pause(): void {
    this.#paused = true;
    void this.#sync.stop('paused');
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

  get(key: Uint8Array, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<GetResult> {
    return this.#reads.get(key, consistency, signal);
  }

  list(start: Uint8Array | undefined, end: Uint8Array | undefined, limit: number, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<{ key: Uint8Array; value: Uint8Array }[]> {
    return this.#reads.list(start, end, limit, consistency, signal);
  }

  /** A single-key proof from the local trie, verified before it is returned. */
  prove(key: Uint8Array, signal?: AbortSignal): Promise<ProveResult> {
    return this.#reads.prove(key, signal);
  }

  /** The key's value proven by a peer against the newest signed root. */
  getVerified(key: Uint8Array, signal?: AbortSignal): Promise<VerifiedResult> {
    return this.#reads.getVerified(key, signal);
  }

  async clear(): Promise<void> {
    await this.#sync.stop('clearing');
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
    const ann = this.#heads.newest.value;
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
    await this.#sync.stop('closing');
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
      announcement: () => this.#heads.newest.value,
      announcementOf: (root) => this.#heads.recent.get(root),
      seqOf: (root) => this.#heads.recent.seqOf(root),
      askHeads: () => this.#heads.askHeads([...this.#peers.values()]).then(() => undefined),
      stopSync: () => this.#sync.stop('live'),
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
      emitError: (err, fatal) => this.#failed(err, fatal),
      offence: (peer, reason) => this.#heads.offence(peer, reason),
      penalised: (peer, reason) => this.#peerEvent(peer, 'penalised', reason),
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

  /** A sync or live failure: `fatal` stops syncing until `resume()` (the store is full). */
  #failed(error: Error, fatal: boolean): void {
    if (fatal) this.#fatal = true;
    this.#emitError(error, fatal);
  }
}
