/**
 * The live follower's public types: its tuning (`LightClientOptions.live`) and the events it
 * emits (`live`, `pending`, `gapFill`, `update`), which `events.ts` names for the client's
 * users. The follow policy's own types (modes, catch-up reasons) come from src/sync/follow.
 */
import type { CatchUpReason, FollowMode } from '../../sync/follow/policy.ts';
import { DEFAULT_MAX_MISSING_IDS } from './missing-chains.ts';

export type { CatchUpReason } from '../../sync/follow/policy.ts';

/**
 * Bounds and timeouts of live updates in the browser client: how many deltas are held, how
 * large a gap is filled over `/delta` before a catch-up by change proof, how deltas are grouped
 * into store commits. Every field has a default; `LightClientOptions.live` takes it.
 *
 * @example
 * const client = createLightClient({
 *   db, writer, bootstrap,
 *   live: { maxPending: 4096, pendingTimeoutMs: 60_000, maxGapFill: 5_000 },
 * });
 */
export interface LiveTuning {
  /** Held deltas at most (default 1,024); over it the newest go first. */
  maxPending?: number;
  /** Wire bytes of held deltas at most (default 16 MiB). */
  maxPendingBytes?: number;
  /** Ids per `/delta` request when filling a gap (default 3,000, Calimero's batch). */
  maxPerRound?: number;
  /** Ids one gap fill may request in all; a larger gap is caught up by change proof (default 1,000). */
  maxGapFill?: number;
  /**
   * Deltas a client started on a stored state fetches over `/delta` to reach the head at most
   * (default 16); past it the state is caught up by change proof first. A gap fill walks a
   * writer's chain one round trip per delta (its parents are known only once it arrived), a
   * change proof is one round trip: measured in Chromium on a loaded 2-core machine, 100
   * missed commits took ~9 s delta by delta (bench/browser.bench.ts "warm restart").
   */
  restoreGapFill?: number;
  /**
   * Ids of chains given up on that are remembered, so that deltas on them are dropped on arrival
   * instead of walked again (default 16,384, ~2.5 MB; missing-chains.ts).
   */
  maxMissingIds?: number;
  /** A delta held this long is given up on: catch up, then drop it (default 30,000 ms). */
  pendingTimeoutMs?: number;
  /** Deadline of one `/delta` request (default 10,000 ms). */
  requestTimeoutMs?: number;
  /**
   * How long missing parents, and an announcement's unknown heads, may take to arrive by gossip
   * (which may reorder) before they are fetched (default 250 ms).
   */
  gossipGraceMs?: number;
  /**
   * Deltas per store commit at most (default 1,024). Only a queue (a burst, a pause, a gap
   * filled) makes groups this large. A larger group writes fewer node records per delta (the
   * upper levels are shared): measured on 1M keys in Chromium, bursts of 2,000 deltas applied
   * at 1,397/s and 1,105/s with 1,024 against 1,248/s and 956/s with 256
   * (`npm run bench -- live`, `BENCH_MAX_BATCH=256` for the smaller groups); the group's view
   * holds ~19k decoded nodes (~60 MB) meanwhile.
   */
  maxBatch?: number;
  /**
   * Applied deltas the journal holds at most before a checkpoint (default 4,096). When deltas
   * queue up, groups go into one long-lived trie view (the journal) whose records are written
   * to the store only at a checkpoint: when nothing is ready, at this bound, and before a sync
   * or close. Meanwhile the deltas themselves, kept in the pending store, are what makes them
   * durable (a reload applies them again). The upper trie levels are then encoded and written
   * once per checkpoint, not once per group (measured on 1M keys in Chromium: see README).
   * 0: no journal, every group is written to the store before its updates are emitted.
   */
  checkpointEvery?: number;
  /**
   * Memory for committed trie node records (default 160 MiB). A 1M-key trie has ~70k nodes in
   * its top five levels (~46 MB encoded), which every random update walks; with the core's
   * default 32 MiB they kept being evicted and each batch re-read most node pages. Its ~270k
   * deeper records (~70 MB) are needed by one random put in four: the idle warm-up reads them
   * too while there is room (measured on Node: ~600 scattered node reads per 2,560 puts with
   * only the top five levels cached, each a page read from IndexedDB).
   */
  nodeCacheBytes?: number;
}

/** Whether the client is state syncing, applying deltas live, or catching up by change proof. */
export type LiveMode = FollowMode;

/**
 * The live follower's mode and position: syncing, live or catching up (and why), the root and
 * log size it stands at, and what applying cost. Emitted as `live`.
 *
 * @example
 * client.on('live', (e) => {
 *   if (e.mode === 'catching-up') console.log(`catching up: ${e.reason}`);
 *   else if (e.mode === 'live') console.log(`live at seq ${e.seq}, ${e.applied} deltas applied`);
 * });
 */
export interface LiveStateEvent {
  /** The current mode. */
  mode: LiveMode;
  /** Why the mode changed (catch-ups). */
  reason?: CatchUpReason | 'synced' | 'restored';
  /** The root the local state stands at, once known. */
  root: Uint8Array | undefined;
  /** The `seq` of that root's announcement, when known. */
  seq: number | undefined;
  /** Operations in the writer's log up to that root (the applied delta's `logIndex` + 1). */
  logSize: number;
  /** Deltas applied this session. */
  applied: number;
  /** Catch-ups by change proof asked for this session. */
  catchUps: number;
  /** Where applying spent its time this session (ms, summed over store commits). */
  timings: ApplyTimings;
  /** The idle warm-up of the trie node cache is done (every node record cached, or the cache full). */
  warm: boolean;
  /**
   * Applied deltas whose trie state the store does not hold yet: the journal's, until its
   * checkpoint is durable. 0: the store holds every update emitted.
   */
  unstored: number;
}

/** Where applying deltas spent its time, summed over a session. */
export interface ApplyTimings {
  /** Store commits, and the deltas in them. */
  commits: number;
  deltas: number;
  /** Reading the touched trie paths (prefetch). */
  readMs: number;
  /** Applying actions and hashing, in memory. */
  computeMs: number;
  /**
   * The store commit (trie records, position and progress in one batch): encoding and staging
   * it, and waiting for the previous commit's write, which runs while the next group is read
   * and computed. For a journaled group: waiting for the previous write.
   */
  commitMs: number;
  /** Checkpoints of the journal, and their encoding and staging (the write runs after). */
  checkpoints: number;
  checkpointMs: number;
  /** Checkpoints whose write completed: the store then holds every update emitted before. */
  checkpointsStored: number;
}

/**
 * Deltas held while their parents are missing, and what happened to gossip deltas: received,
 * duplicate, rejected, dropped. Emitted as `pending`.
 *
 * @example
 * client.on('pending', (p) => {
 *   if (p.rejected > 0) console.warn(`${p.rejected} gossip deltas were invalid`);
 * });
 */
export interface PendingStateEvent {
  /** Held (verified, not applied) deltas. */
  count: number;
  /** Wire bytes of the held deltas. */
  bytes: number;
  /** Gossip deltas received. */
  received: number;
  /** Received deltas that were already known. */
  duplicates: number;
  /** Received deltas dropped as invalid (they failed decoding or verification). */
  rejected: number;
  /** Held deltas dropped over a bound (`maxPending`, `maxPendingBytes`). */
  evicted: number;
  /** Held deltas dropped after `pendingTimeoutMs`. */
  expired: number;
  /** Held deltas discarded after a root mismatch. */
  discarded: number;
  /** Held deltas found in the pending store at start (a reload). */
  restored: number;
  /** Deltas dropped because they hang on a chain given up on (more missing ancestors than a gap fill may fetch, or none to be had). */
  abandoned: number;
}

/**
 * A gap fill over `/delta`: missing ancestors of held deltas fetched from one peer. Emitted as
 * `gapFill` when it starts, finishes or fails.
 *
 * @example
 * client.on('gapFill', (e) => {
 *   if (e.phase === 'finished') console.log(`filled ${e.fetched} deltas from ${e.peer} in ${e.rounds} rounds`);
 * });
 */
export interface GapFillEvent {
  /** Whether it started, finished or failed. */
  phase: 'started' | 'finished' | 'failed';
  /** The peer asked. */
  peer: string | undefined;
  /** Ids missing when it started. */
  missing: number;
  /** Verified deltas received. */
  fetched: number;
  /** `/delta` requests made. */
  rounds: number;
  /** Why it failed (`abandoned-chain`: it reached a chain given up on before; no catch-up follows). */
  reason?: CatchUpReason | 'abandoned-chain';
  /** Answers that were forged, unrequested or badly signed (the peer is penalised). */
  offences: number;
}

/**
 * One applied delta, as subscribers see it. Emitted as `update`.
 *
 * @example
 * client.on('update', (u) => console.log(`delta ${u.logIndex}: ${u.keys.length} keys, ${u.appliedAtMs - u.hlcWallMs} ms after commit`));
 */
export interface DeltaUpdate {
  /** The delta's id (its hash). */
  deltaId: Uint8Array;
  /** The verified root after it (for a partial sync: the writer's root its ranges stand at). */
  root: Uint8Array;
  /** The `seq` of that root's announcement, when known. */
  seq: number | undefined;
  /** The delta's position in the writer's operation log. */
  logIndex: number;
  /** Changed keys within the client's synced ranges, in key order. */
  keys: Uint8Array[];
  /** The writer's commit time (its HLC wall clock, ms since the epoch). */
  hlcWallMs: number;
  /** When the worker committed it (ms since the epoch). */
  appliedAtMs: number;
}

export type LiveEvent =
  | { type: 'live'; detail: LiveStateEvent }
  | { type: 'pending'; detail: PendingStateEvent }
  | { type: 'gapFill'; detail: GapFillEvent }
  | { type: 'update'; detail: DeltaUpdate };

/** Every `LiveTuning` bound's default. */
export const LIVE_DEFAULTS: Required<LiveTuning> = {
  maxPending: 1024,
  maxPendingBytes: 16 * 1024 * 1024,
  maxPerRound: 3000,
  maxGapFill: 1000,
  restoreGapFill: 16,
  maxMissingIds: DEFAULT_MAX_MISSING_IDS,
  pendingTimeoutMs: 30_000,
  requestTimeoutMs: 10_000,
  gossipGraceMs: 250,
  maxBatch: 1024,
  checkpointEvery: 4096,
  nodeCacheBytes: 160 * 1024 * 1024,
};

/** `tuning` over the defaults (a field left undefined takes its default). */
export function liveTuning(tuning: LiveTuning | undefined): Required<LiveTuning> {
  return { ...LIVE_DEFAULTS, ...Object.fromEntries(Object.entries(tuning ?? {}).filter(([, v]) => v !== undefined)) };
}
