/**
 * The syncer's loop (engine-host.ts): wait for a signed head and the store, check the quota
 * once, then `syncState` to the newest signed root with every connected peer as a source,
 * resuming from the progress in the store. Newer heads move the target and peers that connect
 * join the running sync. After a failure it retries (sync-retry.ts decides how soon), until
 * stopped or the store is full. docs/design.md "The sync flow" steps 1–2.
 */
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { equalBytes } from '../../core/bytes.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { InsufficientStorage, NoPeers } from '../errors.ts';
import type { PeerEvent } from '../events.ts';
import type { LiveHost } from '../live/host.ts';
import { responseSize } from '../../sync/state/network-source.ts';
import { syncState } from '../../sync/state/driver.ts';
import { httpStateSource } from '../../sync/state/http-source.ts';
import type { StateSyncProgress } from '../../sync/state/engine.ts';
import type { LocalStore } from './host-deps.ts';
import { type Latch } from './latch.ts';
import { delay } from '../../sync/abort.ts';
import { PushQueue } from '../../sync/push-queue.ts';
import { peerStateSource, type RemotePeer } from './peer-calls.ts';
import type { WorkerConfig } from './worker-messages.ts';
import { syncRetry } from './sync-retry.ts';

/** What the loop needs of the host. */
export interface SyncLoopDeps {
  config: WorkerConfig;
  /** The newest verified announcement. */
  announcement: Latch<VerifiedAnnouncement>;
  store(signal: AbortSignal): Promise<LocalStore>;
  live(): LiveHost | undefined;
  peers(): RemotePeer[];
  /** Set when a peer connects: a loop waiting to retry goes at once. */
  peerChange: Latch<true>;
  /** An attempt starts toward `target` (no progress yet). */
  starting(target: Uint8Array): void;
  progress(p: StateSyncProgress): void;
  /** The host's one builder of `peer` events. */
  peerEvent(peer: string, status: PeerEvent['status'], reason: string): void;
  /** An attempt failed; `fatal`: the loop ended for good (the store is full). */
  failed(err: Error, fatal: boolean): void;
}

/** One running sync: stopped through its controller; `updates` is the current attempt's target queue. */
interface SyncRun {
  controller: AbortController;
  updates: PushQueue<Uint8Array> | undefined;
  done: Promise<void>;
}

export class SyncLoop {
  readonly #deps: SyncLoopDeps;
  #run: SyncRun | undefined;
  /** Peers that connect while a sync runs, for it to use (one queue per sync attempt). */
  #joining: PushQueue<RemotePeer> | undefined;

  constructor(deps: SyncLoopDeps) {
    this.#deps = deps;
  }

  get running(): boolean {
    return this.#run !== undefined;
  }

  /** Starts the loop unless it runs. */
  start(): void {
    if (this.#run) return;
    const controller = new AbortController();
    const run: SyncRun = { controller, updates: undefined, done: Promise.resolve() };
    run.done = this.#loop(controller.signal, run).finally(() => {
      if (this.#run === run) this.#run = undefined;
    });
    this.#run = run;
  }

  /** Stops the loop (its sync aborts with an `AbortError` of `reason`); resolves when it ended. */
  async stop(reason: string): Promise<void> {
    const run = this.#run;
    if (!run) return;
    run.controller.abort(new DOMException(reason, 'AbortError'));
    run.updates?.close();
    await run.done;
  }

  /** A newer signed root: the running sync's target moves there. */
  newTarget(root: Uint8Array): void {
    this.#run?.updates?.push(root);
  }

  /** A peer connected: the running sync takes it as a source (replicas dialed later share the work). */
  peerJoined(peer: RemotePeer): void {
    this.#joining?.push(peer);
  }

  async #loop(signal: AbortSignal, run: SyncRun): Promise<void> {
    const deps = this.#deps;
    const config = deps.config;
    let failures = 0;
    let checkedQuota = false;
    while (!signal.aborted) {
      try {
        const ann = await deps.announcement.wait(signal);
        const store = await deps.store(signal);
        if (!checkedQuota) {
          checkedQuota = true;
          await this.#checkQuota(store);
        }
        // live updates: a stored position may make this sync unnecessary (live/host.ts)
        const live = deps.live();
        if (live && (await live.beforeSync(deps.announcement.value ?? ann))) return;
        const peers = deps.peers();
        const timeout = config.sync.requestTimeoutMs ?? 30_000;
        // static mirrors serve the state at their checkpoint (http-source.ts); peers the rest
        const mirrors = (config.snapshots ?? []).map((base) => httpStateSource(base, { timeoutMs: timeout }));
        if (peers.length === 0 && mirrors.length === 0) throw new NoPeers('no connected peer to sync from');
        // a fresh queue per attempt; heads newer than `target` arrive through it
        const updates = new PushQueue<Uint8Array>();
        run.updates = updates;
        const joining = new PushQueue<RemotePeer>();
        this.#joining = joining;
        const target = deps.announcement.value?.stateRoot ?? ann.stateRoot;
        deps.starting(target);
        try {
          await syncState({
            store,
            sources: [...peers.map((p) => peerStateSource(p, timeout)), ...mirrors],
            sourceUpdates: (async function* () {
              for await (const p of joining) yield peerStateSource(p, timeout);
            })(),
            target,
            ranges: config.ranges,
            targetUpdates: updates,
            signal,
            concurrency: config.sync.concurrency,
            keyLimit: config.sync.keyLimit,
            requestTimeoutMs: timeout,
            banAfter: config.sync.banAfter,
            sizeOf: responseSize,
            onProgress: (p) => {
              failures = 0;
              deps.progress(p);
            },
            onPenalise: (peer, reason, banned) => deps.peerEvent(peer, banned ? 'banned' : 'penalised', `${reason.name}: ${reason.message}`),
          });
        } finally {
          joining.close();
          if (this.#joining === joining) this.#joining = undefined;
        }
        return; // only when the updates end (the sync was stopped)
      } catch (err) {
        if (signal.aborted) return;
        const next = syncRetry(err, ++failures);
        if (next.action === 'stop') return;
        // full: the store stays at its last committed state and readable; syncing stops
        deps.failed(err as Error, next.action === 'fatal');
        if (next.action === 'fatal') return;
        // stalled (every peer banned or failing) or no peers: wait for a new peer, or back off
        deps.peerChange.reset();
        try {
          await Promise.race([deps.peerChange.wait(signal), delay(next.waitMs, signal)]);
        } catch {
          return;
        }
      }
    }
  }

  /** A first sync fails early with `InsufficientStorage` when the origin has too little free quota. */
  async #checkQuota(store: LocalStore): Promise<void> {
    const min = this.#deps.config.minFreeBytes;
    if (!(min > 0) || !store.estimate) return;
    const trie = await MerkleTrie.open(store);
    if (!equalBytes(trie.root, EMPTY_ROOT)) return; // not a first sync
    const { available } = await store.estimate();
    if (available !== undefined && available < min) {
      throw new InsufficientStorage(`only ${available} bytes of storage quota are free; the sync needs at least ${min}. Free space or call navigator.storage.persist() from the page.`, { available, needed: min });
    }
  }
}
