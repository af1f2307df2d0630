/**
 * The light client's events: what a page sees of a sync running in the worker, and
 * a small typed emitter for them. Every payload is structured-clone safe, so the same objects
 * travel worker → page and tab → tab (BroadcastChannel) unchanged.
 */
import type { SyncPhase } from '../sync/state/engine.ts';
import type { DeltaUpdate, GapFillEvent, LiveStateEvent, PendingStateEvent } from './live/types.ts';
import type { TransportName } from '../protocol/transports.ts';

export type { DeltaUpdate, GapFillEvent, LiveStateEvent, PendingStateEvent };

/** Which tab does the work: one syncs (holds the Web Lock), the others read. */
export type ClientRole = 'starting' | 'syncer' | 'reader' | 'closed';

/**
 * Where a state sync stands: its phase, target, counts of what was received and verified, and
 * the share of the key space done. Emitted as `progress`.
 *
 * @example
 * client.on('progress', (p) => {
 *   bar.value = p.fraction;
 *   label.textContent = `${p.phase}: ${p.keyValues} keys from ${p.peersUsed} peers`;
 * });
 */
export interface ProgressEvent {
  /** `connecting` until a signed announcement is known, then the sync engine's phase. */
  phase: 'connecting' | SyncPhase;
  /** This tab's role (only the syncer makes progress). */
  role: ClientRole;
  /** The signed root being synced to, and its announcement's `seq`. */
  target: Uint8Array | undefined;
  /** The `seq` of the target's announcement. */
  seq: number | undefined;
  /** Key-values (and key changes) received in verified answers, this session. */
  keyValues: number;
  /** Bytes of answers received this session (valid or not). */
  bytes: number;
  /** Requests sent this session. */
  requests: number;
  /** Done key ranges and the fraction of the synced key space they cover (0..1). */
  rangesDone: number;
  /** The fraction of the synced key space done (0..1). */
  fraction: number;
  /**
   * The key space in order: ranges verified at the target root, at an older signed root (to be
   * caught up), or not fetched yet (neighbours merged, at most 256 entries).
   */
  segments?: ProgressSegment[];
  /** Peers that gave at least one valid answer. */
  peersUsed: number;
  /** Peers banned for invalid answers. */
  peersBanned: number;
  /** Answers whose proofs did not verify, or that were malformed or oversized (their peers are penalised). */
  proofsRejected: number;
  /** Requests that failed without an answer (timeouts, refusals, resets). */
  failures?: number;
  /** The newest of those failures, as `peer: ErrorName: message (after N ms)`. */
  lastFailure?: string;
  /** Requests sent again to a faster peer because the first went unanswered too long. */
  hedges?: number;
  /** Times the signed target moved during this sync. */
  targetUpdates: number;
}

/** One run of the key space in `ProgressEvent.segments`, for drawing a sync map. */
export interface ProgressSegment {
  /** Inclusive start; undefined: the beginning of the key space. */
  start: Uint8Array | undefined;
  /** Exclusive end; undefined: the end of the key space. */
  end: Uint8Array | undefined;
  /** Verified at the target root, at an older signed root, or not fetched yet. */
  state: 'target' | 'older' | 'none';
}

/**
 * The local state reached a signed root: reads now answer at it. Emitted as `synced`, each time
 * a sync reaches its target.
 *
 * @example
 * client.on('synced', ({ root, seq }) => console.log(`at ${toHex(root)} (seq ${seq})`));
 */
export interface SyncedEvent {
  /** The signed state root the local state now stands at (for a partial sync: within its ranges). */
  root: Uint8Array;
  /** The `seq` of that root's announcement. */
  seq: number;
  /** The local trie's root: equal to `root` for a full sync; a partial sync's own root otherwise. */
  localRoot: Uint8Array;
}

/**
 * A peer connected, disconnected, failed to dial, or was penalised or banned for a bad answer.
 * Emitted as `peer`.
 *
 * @example
 * client.on('peer', (e) => {
 *   if (e.status === 'banned') console.warn(`banned ${e.peer}: ${e.reason}`);
 * });
 */
export interface PeerEvent {
  /** The peer id. */
  peer: string;
  /** What happened to the peer. */
  status: 'connected' | 'disconnected' | 'failed' | 'penalised' | 'banned';
  /** The transport of the connection, when there is one. */
  transport?: TransportName;
  /** Where the connection lives: in the worker, or on the main thread (bytes relayed). */
  via?: 'worker' | 'main';
  /** Why it failed or was penalised (an error name and message). */
  reason?: string;
}

/**
 * A newer signed announcement arrived and verified against the writer key: the database moved
 * to a new root. Emitted as `announcement`.
 *
 * @example
 * client.on('announcement', ({ seq, root }) => console.log(`writer at seq ${seq}: ${toHex(root)}`));
 */
export interface AnnouncementEvent {
  /** The announcement's sequence number. */
  seq: number;
  /** The state root it signs. */
  root: Uint8Array;
}

/**
 * Something went wrong in the background (a sync, storage, the worker). Emitted as `error`;
 * errors of a call reject that call instead.
 *
 * @example
 * client.on('error', ({ error, fatal }) => {
 *   if (error.name === 'StorageQuotaExceeded') showQuotaDialog();
 *   if (fatal) console.error('sync stopped', error);
 * });
 */
export interface ErrorEvent {
  /** The error, with a stable `name` (e.g. `StorageQuotaExceeded`, `NoPeers`). */
  error: Error;
  /** Whether the client stopped syncing because of it (it still answers reads). */
  fatal: boolean;
}

/**
 * This tab's role changed (it took the sync over from a closed tab, or the client closed).
 * Emitted as `role`.
 *
 * @example
 * client.on('role', ({ role }) => console.log(`this tab is now the ${role}`));
 */
export interface RoleEvent {
  /** The new role. */
  role: ClientRole;
}

/**
 * Event name → payload, for `LightClient.on` and `once`.
 *
 * @example
 * const off = client.on('progress', (p: LightClientEventMap['progress']) => console.log(p.fraction));
 * off();
 */
export interface LightClientEventMap {
  /** The state sync advanced. */
  progress: ProgressEvent;
  /** The local state reached a signed root. */
  synced: SyncedEvent;
  /** A peer connected, disconnected, failed or was penalised. */
  peer: PeerEvent;
  /** A newer signed announcement arrived. */
  announcement: AnnouncementEvent;
  /** A background error. */
  error: ErrorEvent;
  /** This tab's role changed. */
  role: RoleEvent;
  /** Live updates: the mode (syncing, live, catching-up and why), the position, deltas applied. */
  live: LiveStateEvent;
  /** Held deltas (count, bytes) and what happened to gossip deltas (received, rejected, dropped). */
  pending: PendingStateEvent;
  /** A gap fill over `/delta` started, finished or failed. */
  gapFill: GapFillEvent;
  /** A delta was applied (every key it changed within the synced ranges); see `subscribe`. */
  update: DeltaUpdate;
}

/** The name of a light client event: `'progress'`, `'synced'`, `'peer'`, ... */
export type LightClientEventName = keyof LightClientEventMap;

/** One event as it crosses a thread or tab boundary (errors serialised, see errors.ts). */
export type WireEvent = {
  [K in LightClientEventName]: { type: K; detail: K extends 'error' ? Omit<ErrorEvent, 'error'> & { error: import('./errors.ts').SerializedError } : LightClientEventMap[K] };
}[LightClientEventName];

/**
 * A typed emitter: `on` returns its own unsubscribe function; a listener that throws does not
 * stop the others (its error is reported through `reportError` where it exists).
 *
 * @example
 * const off = emitter.on('progress', (p) => bar.value = p.fraction);
 * off();
 */
export class TypedEmitter<M> {
  readonly #listeners = new Map<keyof M, Set<(detail: never) => void>>();

  on<K extends keyof M>(type: K, listener: (detail: M[K]) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as (detail: never) => void);
    return () => void set.delete(listener as (detail: never) => void);
  }

  /** Like `on`, removed after the first call. */
  once<K extends keyof M>(type: K, listener: (detail: M[K]) => void): () => void {
    const off = this.on(type, (d) => {
      off();
      listener(d);
    });
    return off;
  }

  emit<K extends keyof M>(type: K, detail: M[K]): void {
    for (const l of [...(this.#listeners.get(type) ?? [])]) {
      try {
        (l as (d: M[K]) => void)(detail);
      } catch (err) {
        (globalThis as { reportError?: (e: unknown) => void }).reportError?.(err);
      }
    }
  }

  listenerCount(type: keyof M): number {
    return this.#listeners.get(type)?.size ?? 0;
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
