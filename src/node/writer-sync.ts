/**
 * The replica's view of the writer and its state syncs (docs/design.md "The sync flow" 1–2): the
 * newest announcement verified against the writer's key (from gossip, `/heads` answers and the
 * store, where it is kept across restarts), the peers that serve the protocols, the peers
 * banned for invalid answers, and `syncToNewest`, which runs `syncState` into the node's store
 * with every usable serving peer as a source. Newer announcements move the running sync's
 * target once they are `retargetAfter` commits ahead of it.
 */
import type { PeerId } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { decodeAnnouncement, encodeAnnouncement, supersedes, verifyAnnouncement, type VerifiedAnnouncement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { networkStateSource, responseSize } from '../sync/state/network-source.ts';
import { syncState } from '../sync/state/driver.ts';
import type { StateSyncProgress } from '../sync/state/engine.ts';
import { fetchHeads } from '../protocol/client.ts';
import { delay, isAbortError } from '../sync/abort.ts';
import { PushQueue } from '../sync/push-queue.ts';
import type { HostNode } from './host.ts';
import type { NodeStore } from './node-store.ts';
import { servingPeers } from './replica-sources.ts';
import type { StateSource } from '../sync/state/source.ts';
import type { ChangeRecorder } from './checkpoint-history.ts';
import { EMPTY_ROOT } from '../core/types.ts';

const ANN_KEY = new TextEncoder().encode('ann');
/** Announcements kept by root, to know which one a sync's final target was. */
const MAX_KNOWN_ROOTS = 256;

export interface WriterSyncOptions {
  libp2p: HostNode;
  /** The writer's peer id: its `RootNotFound` at a checkpoint says the checkpoint is gone. */
  writer: string;
  store: NodeStore;
  /** The writer's Ed25519 public key. */
  writerKey: Uint8Array;
  /** Database id (announcement `db`). */
  db: Uint8Array;
  bootstrap: string[];
  timeoutMs: number;
  /** Requests in flight during a sync. */
  concurrency: number;
  /** See `ReplicaOptions.retargetAfter`. */
  retargetAfter: number;
  /** Ends every wait and request (the node stops). */
  signal: AbortSignal;
  log(line: string): void;
}

/** Attempts of a first sync by a checkpoint (writer-sync.ts `syncToNewest`) before it goes to the head. */
const CHECKPOINT_ATTEMPTS = 2;

/**
 * Newer checkpoints a first sync goes on to, once at one, before it goes to the head
 * (`syncToNewest`): bounded, so a writer that names checkpoints faster than a change-proof leg
 * between two of them takes cannot keep the sync from the head.
 */
const CHECKPOINT_ADVANCES = 4;

/** `source`, calling `onGone` when it answers `RootNotFound` for a request toward `root()`. */
function watchRootGone(source: StateSource, root: () => Uint8Array | undefined, onGone: () => void): StateSource {
  const check = (target: Uint8Array, err: unknown): never => {
    const watched = root();
    if ((err as Error)?.name === 'RootNotFound' && watched !== undefined && equalBytes(target, watched)) onGone();
    throw err;
  };
  return {
    id: source.id,
    rangeProof: (request, o) => source.rangeProof(request, o).catch((err: unknown) => check(request.rootHash, err)),
    changeProof: (request, o) => source.changeProof(request, o).catch((err: unknown) => check(request.endRootHash, err)),
  };
}

const peerIdOf = (a: Multiaddr): string | undefined => a.getComponents().findLast((c) => c.name === 'p2p')?.value;

export class WriterSync {
  readonly #o: WriterSyncOptions;
  #newest: VerifiedAnnouncement | undefined;
  #newestBytes: Uint8Array | undefined;
  /** Announcements by root (hex), to know what a sync's final target was. */
  readonly #byRoot = new Map<string, VerifiedAnnouncement>();
  #updates: PushQueue<Uint8Array> | undefined;
  /** The current sync's target. */
  #syncTarget: VerifiedAnnouncement | undefined;
  /** Peers that answered /heads (they serve the protocols). */
  readonly #serving = new Set<string>();
  readonly #banned = new Set<string>();
  #progress: StateSyncProgress | undefined;
  /** The tenth of the key space last logged. */
  #reported = -1;

  constructor(o: WriterSyncOptions) {
    this.#o = o;
  }

  /** The newest verified announcement. */
  get newest(): VerifiedAnnouncement | undefined {
    return this.#newest;
  }

  /** Its wire bytes (what /heads answers). */
  get newestBytes(): Uint8Array | undefined {
    return this.#newestBytes;
  }

  /** The current or last sync's progress. */
  get progress(): StateSyncProgress | undefined {
    return this.#progress;
  }

  /** Peer ids banned for invalid answers. */
  get banned(): ReadonlySet<string> {
    return this.#banned;
  }

  /** Takes the announcement the store kept (a restart), if it is the writer's. */
  async loadStored(): Promise<void> {
    const stored = await this.#o.store.writer.get(ANN_KEY);
    if (!stored) return;
    try {
      this.#setNewest(verifyAnnouncement(decodeAnnouncement(stored), this.#o.writerKey), stored);
    } catch {
      // not the followed writer's: ignore it
    }
  }

  /** Connected peers that serve the protocols and are not banned. */
  async usablePeers(): Promise<PeerId[]> {
    return (await servingPeers(this.#o.libp2p, this.#serving)).filter((p) => !this.#banned.has(p.toString()));
  }

  /** Ends the running sync's target updates (the node stops). */
  close(): void {
    this.#updates?.close();
  }

  #setNewest(ann: VerifiedAnnouncement, bytes: Uint8Array): boolean {
    if (!equalBytes(ann.db, this.#o.db) || !supersedes(ann, this.#newest)) return false;
    this.#newest = ann;
    this.#newestBytes = bytes;
    this.#byRoot.set(toHex(ann.stateRoot), ann);
    if (this.#byRoot.size > MAX_KNOWN_ROOTS) this.#byRoot.delete(this.#byRoot.keys().next().value!);
    return true;
  }

  /** An announcement's wire bytes (gossip, /heads): true when it is the writer's and newer. */
  accept(bytes: Uint8Array): boolean {
    let ann: VerifiedAnnouncement;
    try {
      ann = verifyAnnouncement(decodeAnnouncement(bytes), this.#o.writerKey);
    } catch {
      return false; // not the writer's: gossip validation is ours
    }
    if (!this.#setNewest(ann, bytes)) return false;
    const target = this.#syncTarget;
    if (this.#updates && !this.#updates.closed && target && ann.seq >= target.seq + this.#o.retargetAfter) {
      this.#syncTarget = ann;
      this.#updates.push(ann.stateRoot);
    }
    void this.#o.store.writer.write([{ type: 'put', key: ANN_KEY, value: bytes }]).catch(() => {});
    return true;
  }

  /** Asks the serving peers and the bootstrap peers for their heads. */
  async fetchNewestHeads(): Promise<void> {
    const { libp2p, signal } = this.#o;
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
          const ann = await fetchHeads(libp2p, t, { writerPublicKey: this.#o.writerKey, db: this.#o.db, timeoutMs: 10_000, signal });
          const id = 'getComponents' in t ? peerIdOf(t) : t.toString();
          if (id) this.#serving.add(id);
          this.accept(encodeAnnouncement(ann));
        } catch (err) {
          if (!signal.aborted) this.#o.log(`heads from ${t.toString()}: ${(err as Error).name}: ${(err as Error).message}`);
        }
      }),
    );
  }

  /**
   * Syncs the store to the newest announcement (and those that arrive meanwhile); resolves
   * with the announcement reached, or undefined when stopped (or a catch-up gave up).
   *
   * The sync writes through `o.recorder` when given (a catch-up records from the served root).
   * With `o.viaCheckpoint` (a replica's first sync) and an announcement that names a checkpoint,
   * the sync goes to the checkpoint root first by the canonical plan, holding newer heads
   * back, then on to the head by change proofs (docs/sync.md#checkpoints, as a fresh light
   * client does): `o.recorder` is started at the checkpoint before any write
   * toward the head, so the replica can keep the checkpoint servable. A newer checkpoint named
   * while the sync went to one (a range sync takes long enough for the writer to name the
   * next) is the one fresh clients ask for: at the checkpoint, the sync goes on to the newest
   * one named by change proofs, still held (at most `CHECKPOINT_ADVANCES` times), and starts
   * the recording there; else the replica would not serve the newest checkpoint until the
   * writer named another after its sync. A checkpoint the writer
   * no longer serves (its `RootNotFound`: dropped while the sync ran) ends the attempt at once;
   * the next goes to the newest announcement's checkpoint. Past `CHECKPOINT_ATTEMPTS` such
   * attempts the sync goes to the head as without one: a sync slower than a checkpoint's life
   * at the writer would otherwise start over at every new one (the work fetched at a root
   * that left the writer's window comes again as range proofs).
   */
  async syncToNewest(what: 'sync' | 'catch-up', o: { recorder?: ChangeRecorder; viaCheckpoint?: boolean } = {}): Promise<VerifiedAnnouncement | undefined> {
    const { signal, libp2p } = this.#o;
    // a catch-up holds serving off: it gives up after a few attempts and is retried on a tick
    const attempts = what === 'catch-up' ? 3 : Infinity;
    const recorder = o.recorder;
    let viaLeft = o.viaCheckpoint && recorder ? CHECKPOINT_ATTEMPTS : 0;
    for (let attempt = 0; !signal.aborted && attempt < attempts; attempt++) {
      const ann = this.#newest!;
      const checkpoint = viaLeft > 0 && ann.checkpoint && !equalBytes(ann.checkpoint.root, EMPTY_ROOT) ? ann.checkpoint : undefined;
      // by a checkpoint, the recording starts there (a sync by none records nothing)
      if (o.viaCheckpoint) recorder?.stop();
      const usable = await this.usablePeers();
      if (usable.length === 0) {
        this.#o.log(`${what}: no serving peer; dialing bootstrap peers`);
        await this.#dialBootstrap();
        await delay(Math.min(10_000, 500 * 2 ** attempt), signal);
        await this.fetchNewestHeads();
        continue;
      }
      const updates = new PushQueue<Uint8Array>();
      this.#updates = updates;
      // while held at the checkpoint, no announcement moves the target (accept)
      let held = checkpoint !== undefined;
      /** The checkpoint the sync is held to (a newer one named meanwhile replaces it). */
      let heldAt = checkpoint;
      let advances = CHECKPOINT_ADVANCES;
      this.#syncTarget = held ? undefined : ann;
      this.#reported = -1;
      if (checkpoint) {
        viaLeft--;
        this.#o.log(`${what}: to checkpoint seq ${checkpoint.seq} root ${toHex(checkpoint.root)} first, then to the head`);
      }
      const gone = new AbortController();
      const sources = usable.map((p): StateSource => {
        const source = networkStateSource(libp2p, p.toString(), p, { timeoutMs: this.#o.timeoutMs });
        if (!checkpoint || p.toString() !== this.#o.writer) return source;
        return watchRootGone(
          source,
          () => (held ? heldAt?.root : undefined),
          () => gone.abort(new Error(`the writer no longer serves checkpoint seq ${heldAt?.seq}`)),
        );
      });
      try {
        const res = await syncState({
          store: recorder ?? this.#o.store.state,
          sources,
          target: checkpoint?.root ?? ann.stateRoot,
          canonicalRoot: checkpoint?.root,
          targetUpdates: updates,
          signal: AbortSignal.any([signal, gone.signal]),
          concurrency: this.#o.concurrency,
          requestTimeoutMs: this.#o.timeoutMs,
          sizeOf: responseSize,
          // a node's store keeps leaves in full (openNodeStore)
          elideLeaves: false,
          onProgress: (p) => {
            this.#progress = p;
            if (held && p.phase === 'at-target' && heldAt && equalBytes(p.target, heldAt.root)) {
              const at = heldAt;
              const newer = this.#newest!.checkpoint;
              if (advances > 0 && newer && newer.seq > at.seq && !equalBytes(newer.root, EMPTY_ROOT) && !equalBytes(newer.root, at.root)) {
                advances--;
                heldAt = newer;
                this.#o.log(`${what}: at checkpoint seq ${at.seq}; on to the newer checkpoint seq ${newer.seq} root ${toHex(newer.root)} first`);
                updates.push(newer.root);
                return;
              }
              // every write is durable here and none is in flight: what follows is the catch-up
              held = false;
              recorder!.start(at.root);
              const head = this.#newest!;
              this.#o.log(`${what}: at checkpoint seq ${at.seq} root ${toHex(at.root)}; on to seq ${head.seq}`);
              if (!equalBytes(head.stateRoot, at.root)) {
                this.#syncTarget = head;
                updates.push(head.stateRoot);
                return;
              }
            }
            this.#report(what, p);
            if (p.phase === 'at-target') updates.close();
          },
          onPenalise: (peer, reason, banned) => {
            this.#o.log(`${what}: peer ${peer} ${banned ? 'banned' : 'penalised'}: ${reason.name}: ${reason.message}`);
            if (banned) this.#banned.add(peer);
          },
        });
        const reached = this.#byRoot.get(toHex(res.target));
        if (!reached) throw new Error(`internal: the sync reached ${toHex(res.target)}, which no known announcement names`);
        const p = res.progress;
        this.#o.log(
          `${what} done: root ${toHex(res.root)} seq ${reached.seq}, ${p.keyValuesReceived} key-values, ${p.bytesReceived} bytes, ${p.requests} requests, ${p.peersUsed} peers, ${p.proofsRejected} rejected, ${p.peersBanned} banned`,
        );
        return reached;
      } catch (err) {
        if (signal.aborted) return undefined;
        if (gone.signal.aborted) {
          this.#o.log(`${what}: ${(gone.signal.reason as Error).message}; ${viaLeft > 0 ? 'to the newest checkpoint' : 'to the head, by no checkpoint'}`);
          await this.fetchNewestHeads();
          continue;
        }
        if (isAbortError(err)) return undefined;
        this.#o.log(`${what} failed (${(err as Error).name}: ${(err as Error).message}); retrying`);
        await delay(Math.min(10_000, 250 * 2 ** attempt), signal);
        await this.fetchNewestHeads();
      } finally {
        this.#updates = undefined;
      }
    }
    return undefined;
  }

  #report(what: string, p: StateSyncProgress): void {
    // a moved target sends done ranges back: report the furthest point reached
    const tenth = Math.floor(p.fractionDone * 10);
    if (tenth <= this.#reported) return;
    this.#reported = tenth;
    this.#o.log(`${what}: ${tenth * 10}% (${p.keyValuesReceived} key-values, ${p.bytesReceived} bytes, ${p.requests} requests)`);
  }

  async #dialBootstrap(): Promise<void> {
    const { signal } = this.#o;
    await Promise.all(
      this.#o.bootstrap.map((a) =>
        this.#o.libp2p.dial(multiaddr(a), { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) }).catch((err: unknown) => {
          if (!signal.aborted) this.#o.log(`dial ${a}: ${(err as Error).message}`);
        }),
      ),
    );
  }
}
