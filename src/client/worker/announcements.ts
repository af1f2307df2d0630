/**
 * The engine host's signed heads (engine-host.ts): the newest verified announcement, from
 * `/heads` asked of each peer as it connects (and polled while no gossip peer is connected) or
 * from gossip, judged by protocol/gossip-verdict.ts. A newer one moves the sync's target, the
 * history log's newest size and the live follower. What peers do wrong here reaches the page as
 * `peer` events, at most one per peer and reason per interval.
 */
import { decodeAnnouncement, verifyAnnouncementAsync, type VerifiedAnnouncement } from '../../core/announcement.ts';
import { equalBytes } from '../../core/bytes.ts';
import { gossipVerdict } from '../../protocol/gossip-verdict.ts';
import { NoPeers, WrongDatabase } from '../errors.ts';
import type { PeerEvent, WireEvent } from '../events.ts';
import type { LiveHost } from '../live/host.ts';
import { PeerEventLimiter } from '../peer-event-limiter.ts';
import { Latch } from './latch.ts';
import { delay } from '../../sync/abort.ts';
import { requestHeads, type RemotePeer } from './peer-calls.ts';
import { fetchSnapshotAnnouncement } from '../../sync/state/http-source.ts';
import type { WorkerConfig } from './worker-messages.ts';
import { RecentAnnouncements } from './recent-announcements.ts';
import { MAX_BACKOFF_MS } from './sync-retry.ts';

const HEADS_TIMEOUT_MS = 10_000;
/** One `peer` event per peer and gossip offence this often at most (a flood is thousands a second). */
const OFFENCE_EVENT_INTERVAL_MS = 10_000;

/** What the heads need of the host. */
export interface AnnouncementDeps {
  config: WorkerConfig;
  writerPublicKey: Uint8Array;
  /** The database's name as bytes, as announcements carry it. */
  db: Uint8Array;
  /** The host's life: aborted when it closes. */
  signal: AbortSignal;
  peers(): RemotePeer[];
  /** Set when a peer connects: a round waiting for one goes at once. */
  peerChange: Latch<true>;
  live(): LiveHost | undefined;
  /** A verified announcement newer than every one before, after the page heard of it. */
  accepted(ann: VerifiedAnnouncement): void;
  emit(event: WireEvent): void;
  emitError(err: Error, fatal: boolean): void;
  /** The host's one builder of `peer` events. */
  peerEvent(peer: string, status: PeerEvent['status'], reason: string, known?: RemotePeer): void;
}

/** The checkpoint a static mirror's verified announcement names: the root its files hold. */
export interface MirrorCheckpoint {
  base: string;
  seq: number;
  root: Uint8Array;
}

export class Announcements {
  readonly #deps: AnnouncementDeps;
  /** The newest verified announcement. */
  readonly newest = new Latch<VerifiedAnnouncement>();
  /** Recent signed announcements by root: their `seq`, heads and log size. */
  readonly recent = new RecentAnnouncements();
  /** Heads asked of each peer as it connected, until the first round of `headsLoop` awaits them. */
  #firstAsks: Promise<number>[] | undefined = [];
  readonly #offences = new PeerEventLimiter({ intervalMs: OFFENCE_EVENT_INTERVAL_MS });

  constructor(deps: AnnouncementDeps) {
    this.#deps = deps;
  }

  /** A peer connected: ask it at once (`getVerified` can answer as soon as one peer gave a signed head). */
  peerConnected(peer: RemotePeer): Promise<number> {
    const asked = this.askHeads([peer]);
    this.#firstAsks?.push(asked);
    return asked;
  }

  /**
   * gossipsub's topic validator (worker/entry.ts): judges one message (protocol/gossip-verdict.ts)
   * and takes what is valid. `reject` makes gossipsub count it against the peer (its score
   * graylists a flooder) and never forward it; `ignore` drops it without blame (a duplicate, a
   * stale announcement, a delta on a chain given up on).
   */
  async judgeGossip(bytes: Uint8Array, from: string): Promise<'accept' | 'reject' | 'ignore'> {
    const live = this.#deps.live();
    const writerKey = this.#deps.writerPublicKey;
    const v = await gossipVerdict(bytes, {
      writerPublicKey: writerKey,
      db: this.#deps.db,
      verifyDelta: live ? (b) => live.verifyDelta(b) : undefined,
      // WebCrypto where the runtime has Ed25519: noble takes ~7 ms a signature here
      verifyAnnouncement: (a) => verifyAnnouncementAsync(a, writerKey),
      knowsDelta: live ? (id) => live.knowsDelta(id) : undefined,
      abandoned: live ? (d) => live.abandoned(d) : undefined,
      newestSeq: () => this.newest.value?.seq,
    });
    if (v.result === 'reject') {
      this.offence(from, `gossip: ${v.reason}`, v.detail);
      return 'reject';
    }
    if (v.result === 'ignore') return 'ignore';
    if (v.kind === 'delta') live?.offerVerified(v.delta, bytes, from);
    else if (!live?.droppingGossip) this.#offer(v.announcement);
    return 'accept';
  }

  /** A peer did something wrong: a `peer` event unless one of the same reason went out within the interval. */
  offence(peer: string, reason: string, detail?: string): void {
    const a = this.#offences.admit(peer, reason, Date.now());
    if (!a.emit) return;
    const more = a.suppressed > 0 ? `; ${a.suppressed} more since the last report` : '';
    this.#deps.peerEvent(peer, 'penalised', `${reason}${detail ? ` (${detail})` : ''}${more}`);
  }

  /** A verified announcement; `from`: the peer that answered `/heads` with it. */
  #offer(ann: VerifiedAnnouncement, from?: string): void {
    if (!equalBytes(ann.db, this.#deps.db)) {
      // a peer's doing (a replay): its event, rate-limited, not one page error each time
      if (from !== undefined) return this.offence(from, 'heads: wrong-database', `an announcement of database "${new TextDecoder().decode(ann.db)}"`);
      this.#deps.emitError(new WrongDatabase(`the writer signed an announcement for database "${new TextDecoder().decode(ann.db)}", not "${this.#deps.config.db}"`), false);
      return;
    }
    const current = this.newest.value;
    if (current && ann.seq <= current.seq) return;
    this.recent.remember(ann);
    this.newest.set(ann);
    this.#deps.emit({ type: 'announcement', detail: { seq: ann.seq, root: ann.stateRoot } });
    this.#deps.accepted(ann);
  }

  /** Asks `peers` for their heads; resolves with how many answered when all answered or failed. */
  async askHeads(peers: RemotePeer[]): Promise<number> {
    const signal = this.#deps.signal;
    let ok = 0;
    await Promise.all(
      peers.map(async (peer) => {
        try {
          this.#offer(await requestHeads(peer, this.#deps.writerPublicKey, { timeoutMs: HEADS_TIMEOUT_MS, signal, db: this.#deps.db }), peer.id);
          ok++;
        } catch (err) {
          if (signal.aborted) return;
          this.#deps.peerEvent(peer.id, 'penalised', `heads: ${(err as Error).name}: ${(err as Error).message}`, peer);
        }
      }),
    );
    return ok;
  }

  /**
   * Reads each static mirror's `announcement` (config.snapshots) and takes the valid ones like a
   * peer's heads: verified with the writer's key, newer than the newest known. So a client learns
   * the mirror's checkpoint even before a peer answers. A mirror without one, or with a bad one,
   * is reported as a `peer` event under its source id. Resolves to the checkpoint each valid
   * mirror names (its announcement's `checkpoint`, else its state): the root its files hold.
   */
  async askSnapshots(): Promise<MirrorCheckpoint[]> {
    const { signal, config, writerPublicKey } = this.#deps;
    const found = await Promise.all(
      (config.snapshots ?? []).map(async (base): Promise<MirrorCheckpoint | undefined> => {
        const id = `static:${base}`;
        try {
          const bytes = await fetchSnapshotAnnouncement(base, { timeoutMs: HEADS_TIMEOUT_MS, signal });
          const ann = await verifyAnnouncementAsync(decodeAnnouncement(bytes), writerPublicKey);
          this.#offer(ann, id);
          if (!equalBytes(ann.db, this.#deps.db)) return undefined;
          return { base, seq: ann.checkpoint?.seq ?? ann.seq, root: ann.checkpoint?.root ?? ann.stateRoot };
        } catch (err) {
          if (!signal.aborted) this.#deps.peerEvent(id, 'penalised', `announcement: ${(err as Error).name}: ${(err as Error).message}`);
          return undefined;
        }
      }),
    );
    return found.filter((m) => m !== undefined);
  }

  /**
   * After the first round of dials: the heads asked as peers connected; then, while no signed
   * head is known, again on a new peer or after a backoff, and while no gossip peer is
   * connected, every `headsPollMs`. Reports when no peer gave a head.
   */
  async headsLoop(): Promise<void> {
    const { signal, config, peerChange } = this.#deps;
    let failures = 0;
    let first = true;
    while (!signal.aborted) {
      const peers = this.#deps.peers();
      // every peer was asked when it connected: the first round waits for those answers
      let answered: number;
      if (first) {
        const asks = this.#firstAsks ?? [];
        this.#firstAsks = undefined;
        answered = (await Promise.all(asks)).reduce((a, b) => a + b, 0);
      } else answered = peers.length ? await this.askHeads(peers) : 0;
      first = false;
      if (signal.aborted) return;
      if (answered === 0 && !this.newest.value) {
        this.#deps.emitError(new NoPeers(`none of ${peers.length} connected peer(s) gave a signed announcement (${config.dial.length} bootstrap address(es) in the worker${config.bridged ? ', more on the main thread' : ''})`), false);
        failures++;
      } else failures = 0;
      const poll = config.headsPollMs;
      const gossip = this.#deps.peers().some((p) => p.via === 'worker');
      try {
        if (!this.newest.value) {
          // nothing yet: retry on a new peer or after a backoff
          peerChange.reset();
          await Promise.race([peerChange.wait(signal), delay(Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures), signal)]);
        } else if (poll > 0 && !gossip) await delay(poll, signal);
        else return;
      } catch {
        return;
      }
    }
  }
}
