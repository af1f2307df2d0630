/**
 * The replica's options (`proofsync node --follow`) and the status it reports in
 * `NodeStatus.replica`.
 */
import type { HostNode } from './host.ts';
import type { NodeStore } from './node-store.ts';
import type { OperationLog } from './operation-log.ts';
import type { RwLock } from '../core/rwlock.ts';
import type { DatabaseOptions } from '../core/database.ts';

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
  /** How the served database keeps checkpoints (checkpoints.ts); `historySize` above wins. */
  database?: DatabaseOptions;
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
