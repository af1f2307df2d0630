/**
 * The light client's events (issue 8): what a page sees of a sync running in the worker, and
 * a small typed emitter for them. Every payload is structured-clone safe, so the same objects
 * travel worker → page and tab → tab (BroadcastChannel) unchanged.
 */
import type { SyncPhase } from './state-sync/engine.ts';
import type { DeltaUpdate, GapFillEvent, LiveStateEvent, PendingStateEvent } from './live/follower.ts';

export type { DeltaUpdate, GapFillEvent, LiveStateEvent, PendingStateEvent };

/** Which tab does the work: one syncs (holds the Web Lock), the others read. */
export type ClientRole = 'starting' | 'syncer' | 'reader' | 'closed';

export interface ProgressEvent {
  /** `connecting` until a signed announcement is known, then the sync engine's phase. */
  phase: 'connecting' | SyncPhase;
  role: ClientRole;
  /** The signed root being synced to, and its announcement's `seq`. */
  target: Uint8Array | undefined;
  seq: number | undefined;
  /** Key-values (and key changes) received in verified answers, this session. */
  keyValues: number;
  /** Bytes of answers received this session (valid or not). */
  bytes: number;
  requests: number;
  /** Done key ranges and the fraction of the synced key space they cover (0..1). */
  rangesDone: number;
  fraction: number;
  /**
   * The key space in order: ranges verified at the target root, at an older signed root (to be
   * caught up), or not fetched yet (neighbours merged, at most 256 entries).
   */
  segments?: ProgressSegment[];
  peersUsed: number;
  peersBanned: number;
  /** Answers whose proofs did not verify, or that were malformed or oversized (their peers are penalised). */
  proofsRejected: number;
  /** Requests that failed without an answer (timeouts, refusals, resets). */
  failures?: number;
  /** Requests sent again to a faster peer because the first went unanswered too long. */
  hedges?: number;
  /** Times the signed target moved during this sync. */
  targetUpdates: number;
}

export interface ProgressSegment {
  /** Inclusive start; undefined: the beginning of the key space. */
  start: Uint8Array | undefined;
  /** Exclusive end; undefined: the end of the key space. */
  end: Uint8Array | undefined;
  state: 'target' | 'older' | 'none';
}

export interface SyncedEvent {
  /** The signed state root the local state now stands at (for a partial sync: within its ranges). */
  root: Uint8Array;
  seq: number;
  /** The local trie's root: equal to `root` for a full sync; a partial sync's own root otherwise. */
  localRoot: Uint8Array;
}

export interface PeerEvent {
  /** The peer id. */
  peer: string;
  status: 'connected' | 'disconnected' | 'failed' | 'penalised' | 'banned';
  transport?: 'websockets' | 'webrtc-direct';
  /** Where the connection lives: in the worker, or on the main thread (bytes relayed). */
  via?: 'worker' | 'main';
  /** Why it failed or was penalised (an error name and message). */
  reason?: string;
}

export interface AnnouncementEvent {
  /** A newer signed announcement arrived (verified against the writer key). */
  seq: number;
  root: Uint8Array;
}

export interface ErrorEvent {
  /** The error, with a stable `name` (e.g. `StorageQuotaExceeded`, `NoPeers`). */
  error: Error;
  /** Whether the client stopped syncing because of it (it still answers reads). */
  fatal: boolean;
}

export interface RoleEvent {
  role: ClientRole;
}

/** Event name → payload. */
export interface LightClientEventMap {
  progress: ProgressEvent;
  synced: SyncedEvent;
  peer: PeerEvent;
  announcement: AnnouncementEvent;
  error: ErrorEvent;
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
