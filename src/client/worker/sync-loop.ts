/**
 * The syncer's loop (engine-host.ts): wait for a signed head and the store, check the quota
 * once, then `syncState` to the newest signed root with every connected peer as a source,
 * resuming from the progress in the store; a first sync goes to the announced checkpoint first
 * (checkpoint-target.ts) and on to the head once there. Newer heads move the target and peers that connect
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
import type { StateSource } from '../../sync/state/source.ts';
import type { LocalStore } from './host-deps.ts';
import { type Latch } from './latch.ts';
import { delay } from '../../sync/abort.ts';
import { PushQueue } from '../../sync/push-queue.ts';
import { peerStateSource, type RemotePeer } from './peer-calls.ts';
import type { WorkerConfig } from './worker-messages.ts';
import { syncRetry } from './sync-retry.ts';
import { checkpointTarget } from './checkpoint-target.ts';
import type { MirrorCheckpoint } from './announcements.ts';
import { loadProgress } from '../../sync/state/stored-progress.ts';

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
  /** The checkpoints the static mirrors (config.snapshots) name, once their announcements were read. */
  mirrors(): Promise<MirrorCheckpoint[]>;
  /** An attempt starts toward `target` (no progress yet). */
  starting(target: Uint8Array): void;
  /** `interim`: the sync stands at a checkpoint and goes on to the head (no `synced` there). */
  progress(p: StateSyncProgress, interim?: boolean): void;
  /** The host's one builder of `peer` events. */
  peerEvent(peer: string, status: PeerEvent['status'], reason: string): void;
  /** An attempt failed; `fatal`: the loop ended for good (the store is full). */
  failed(err: Error, fatal: boolean): void;
}

/** One running sync: stopped through its controller; `updates` is the current attempt's target queue. */
interface SyncRun {
  controller: AbortController;
  updates: PushQueue<Uint8Array> | undefined;
  /**
   * While the attempt range-syncs to a checkpoint: the newest head held back until it is
   * reached (a new target before then would end the canonical requests); `{}` when none yet.
   */
  held: { head?: Uint8Array } | undefined;
  done: Promise<void>;
}

export class SyncLoop {
  readonly #deps: SyncLoopDeps;
  #run: SyncRun | undefined;
  /** Peers that connect while a sync runs, for it to use (one queue per sync attempt). */
  #joining: PushQueue<RemotePeer> | undefined;
  /** Ids of peers that disconnect while a sync runs: their work goes to the others. */
  #leaving: PushQueue<string> | undefined;

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
    const run: SyncRun = { controller, updates: undefined, held: undefined, done: Promise.resolve() };
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
    const run = this.#run;
    if (run?.held) run.held.head = root;
    else run?.updates?.push(root);
  }

  /** A peer connected: the running sync takes it as a source (replicas dialed later share the work). */
  peerJoined(peer: RemotePeer): void {
    this.#joining?.push(peer);
  }

  /** A peer disconnected: the running sync re-queues its work (it rejoins through `peerJoined`). */
  peerLeft(id: string): void {
    this.#leaving?.push(id);
  }

  async #loop(signal: AbortSignal, run: SyncRun): Promise<void> {
    const deps = this.#deps;
    const config = deps.config;
    let failures = 0;
    let checkedQuota = false;
    let triedMirrors = false;
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
        const timeout = config.sync.requestTimeoutMs ?? 30_000;
        if (!triedMirrors) {
          triedMirrors = true;
          await this.#fromMirrors(store, signal, timeout);
        }
        const peers = deps.peers();
        if (peers.length === 0) throw new NoPeers('no connected peer to sync from');
        // a fresh queue per attempt; heads newer than `target` arrive through it
        const updates = new PushQueue<Uint8Array>();
        run.updates = updates;
        const joining = new PushQueue<RemotePeer>();
        this.#joining = joining;
        const head = deps.announcement.value ?? ann;
        // a first sync goes to the newest checkpoint first, then on to the head (checkpoint-target.ts)
        const checkpoint = await checkpointTarget(store, head);
        const target = checkpoint ?? head.stateRoot;
        run.held = checkpoint && !equalBytes(checkpoint, head.stateRoot) ? { head: head.stateRoot } : undefined;
        // the sync stands at this root only on its way on (every report there, not just the first)
        const passing = run.held ? checkpoint : undefined;
        const release = (): void => {
          const held = run.held;
          run.held = undefined;
          if (held?.head && !equalBytes(held.head, target)) updates.push(held.head);
        };
        const leaving = new PushQueue<string>();
        this.#leaving = leaving;
        deps.starting(target);
        try {
          await syncState({
            store,
            sources: peers.map((p) => peerStateSource(p, timeout)),
            sourceUpdates: (async function* () {
              for await (const p of joining) yield peerStateSource(p, timeout);
            })(),
            sourcesLeft: leaving,
            target,
            canonicalRoot: checkpoint,
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
              const interim = passing !== undefined && p.phase === 'at-target' && equalBytes(p.target, passing);
              if (interim && run.held) release();
              deps.progress(p, interim);
            },
            onPenalise: (peer, reason, banned) => deps.peerEvent(peer, banned ? 'banned' : 'penalised', `${reason.name}: ${reason.message}`),
          });
        } finally {
          run.held = undefined;
          joining.close();
          leaving.close();
          if (this.#joining === joining) this.#joining = undefined;
          if (this.#leaving === leaving) this.#leaving = undefined;
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

  /**
   * A fresh store with static mirrors (config.snapshots) first syncs to the newest checkpoint
   * a mirror names, in canonical mode (the requests its files answer), from those mirrors
   * alone until one gives a wrong answer: then the connected peers join (the work goes
   * elsewhere). The sync to the head then catches up by change proofs from peers (mirrors serve
   * none). Skipped when the store holds other state; a failure here (every mirror gone) is
   * reported and the head sync does the rest from peers.
   */
  async #fromMirrors(store: LocalStore, signal: AbortSignal, timeout: number): Promise<void> {
    const deps = this.#deps;
    const named = await deps.mirrors();
    if (named.length === 0) return;
    const newest = named.reduce((a, b) => (b.seq > a.seq ? b : a));
    const root = newest.root;
    const local = (await MerkleTrie.open(store)).root;
    if (equalBytes(local, root) || equalBytes(root, EMPTY_ROOT)) return;
    const stored = await loadProgress(store);
    // a store with other state, or part of another sync, catches up by change proofs instead
    if (!equalBytes(local, EMPTY_ROOT) && !(stored.target && equalBytes(stored.target, root))) return;
    const mirrors = named.filter((m) => equalBytes(m.root, root)).map((m) => httpStateSource(m.base, { timeoutMs: timeout }));
    deps.starting(root);
    // peers are the fallback, so a node's capacity goes to those no mirror serves
    const fallback = new PushQueue<StateSource>();
    const callPeers = () => {
      if (fallback.closed) return;
      for (const p of deps.peers()) fallback.push(peerStateSource(p, timeout));
      fallback.close();
    };
    try {
      await syncState({
        store,
        sources: mirrors,
        sourceUpdates: fallback,
        target: root,
        ranges: deps.config.ranges,
        signal,
        concurrency: deps.config.sync.concurrency,
        requestTimeoutMs: timeout,
        banAfter: deps.config.sync.banAfter,
        sizeOf: responseSize,
        canonicalRoot: root,
        // at the checkpoint the client is not yet at the head: `synced` comes from the head sync
        onProgress: (p) => deps.progress(p.phase === 'at-target' ? { ...p, phase: 'fetching' } : p),
        onPenalise: (peer, reason, banned) => {
          callPeers();
          deps.peerEvent(peer, banned ? 'banned' : 'penalised', `${reason.name}: ${reason.message}`);
        },
      });
    } catch (err) {
      if (signal.aborted) throw err;
      // the head sync takes over from whatever was verified and stored
      deps.peerEvent(`static:${newest.base}`, 'penalised', `checkpoint sync: ${(err as Error).name}: ${(err as Error).message}`);
    } finally {
      fallback.close();
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
