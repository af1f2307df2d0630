/**
 * The typed messages between the page and the light client's worker (docs/design.md
 * "Threads in the browser"). Two channels:
 *
 * - the worker's own port (page ↔ worker): `init` once, then calls with ids and their replies,
 *   aborts, and events flowing to the page;
 * - the *bridge* port (worker ↔ main thread): the worker asks the main thread to run one
 *   request/response exchange on a connection the worker cannot hold (WebRTC needs
 *   `RTCPeerConnection`, which workers lack). Only bytes move: the request body and the
 *   response frame are `ArrayBuffer`s, transferred, never copied or decoded on the main thread
 *   (smoldot's pattern). Decoding and verification stay in the worker.
 *
 * Everything here is structured-clone safe (Uint8Array, Map, plain objects).
 */
import type { DiscoveryOptions } from '../discovery.ts';
import type { SerializedError } from '../errors.ts';
import type { WireEvent } from '../events.ts';
import type { ProofNode } from '../../core/types.ts';
import type { LiveTuning } from '../live/types.ts';
import type { LiveStatus } from '../live/host.ts';
import type { LogCall, LogReply } from '../history/worker-messages.ts';
import type { TransportName } from '../../protocol/transports.ts';

export type { LiveTuning, LiveStatus };

/**
 * An inclusive key range, either side open: a partial sync's range, a read's or a subscription's.
 *
 * @example
 * const range: KeyRangeOption = { start: fromHex('10'), end: fromHex('1f') };
 * for await (const { key } of client.entries(range)) console.log(toHex(key));
 */
export interface KeyRangeOption {
  /** Inclusive lower bound; absent: from the first key. */
  start?: Uint8Array;
  /** Inclusive upper bound; absent: to the last key. */
  end?: Uint8Array;
}

/**
 * State sync settings of the light client: requests in flight, their size and deadline, and
 * how many invalid proofs ban a peer. Every field has a default; `LightClientOptions.sync`
 * takes it.
 *
 * @example
 * const client = createLightClient({ db, writer, bootstrap, sync: { concurrency: 8, requestTimeoutMs: 10_000 } });
 */
export interface SyncTuning {
  /** Requests in flight (default 4). */
  concurrency?: number;
  /** Key-values per request (default 2048). */
  keyLimit?: number;
  /** Per-request deadline (default 30,000 ms). */
  requestTimeoutMs?: number;
  /** Invalid proofs before a peer is banned (default 3). */
  banAfter?: number;
}

/** What the worker needs to run; built by `createLightClient` from its options. */
export interface WorkerConfig {
  db: string;
  /** The writer's peer id (Ed25519): the trust anchor. */
  writer: string;
  /** Bootstrap multiaddrs the worker dials itself (WebSockets). */
  dial: string[];
  /** Whether a bridge port comes with `init` (peers held by the main thread). */
  bridged: boolean;
  ranges: KeyRangeOption[] | undefined;
  /** IndexedDB database name. */
  storageName: string;
  allowInsecureLoopback: boolean;
  sync: SyncTuning;
  /** Start syncing at once (default true); otherwise on `resume()`. */
  autoStart: boolean;
  /** Fail a first sync with `InsufficientStorage` when the origin has less free quota (bytes). */
  minFreeBytes: number;
  /** The store's write-log bound (bytes; undefined: the store's default). */
  writeLogBytes?: number;
  /** Poll `/heads` this often when no gossip peer is connected (ms; 0: never). */
  headsPollMs: number;
  /** Live updates: pending bounds, gap filling, timeouts. */
  live?: LiveTuning;
  /** Peer discovery's bounds (src/client/discovery.ts); false or absent: off. */
  discovery?: DiscoveryOptions | false;
  /** Static proof mirrors (base URLs, normalised): state sources beside the peers (docs/static-proofs.md). */
  snapshots?: string[];
}

/**
 * A key and its value (undefined: absent), as the light client reads it.
 *
 * @example
 * const result: GetResult = await client.prove(key);
 * if (result.value === undefined) console.log(`${toHex(result.key)} is absent`);
 */
export interface GetResult {
  /** The key asked for. */
  key: Uint8Array;
  /** undefined: the key is absent. */
  value: Uint8Array | undefined;
}

/**
 * What `LightClient.prove` returns: the value, the local root, and a single-key proof that
 * anyone can verify again with `verifyKeyProof`.
 *
 * @example
 * const { value, root, proof } = await client.prove(key);
 * verifyKeyProof(root, key, value, proof);
 */
export interface ProveResult extends GetResult {
  /** The local trie root the proof is against (verified before it was returned). */
  root: Uint8Array;
  /** The node path from the root toward the key (docs/proofs.md#verification, single-key proof). */
  proof: ProofNode[];
  /** The `seq` of the signed announcement whose root this is, when it is one. */
  seq: number | undefined;
}

/**
 * What `LightClient.getVerified` returns: a value a remote peer proved against the newest
 * signed root, and who answered.
 *
 * @example
 * const { value, seq, peer } = await client.getVerified(key);
 * console.log(`seq ${seq} from ${peer}:`, value);
 */
export interface VerifiedResult extends GetResult {
  /** The signed state root the answer was proven against. */
  root: Uint8Array;
  /** That root's announcement `seq`. */
  seq: number;
  /** The peer that answered. */
  peer: string;
}

/**
 * What `LightClient.status` returns: where the client stands.
 *
 * @example
 * const s = await client.status();
 * console.log(s.role, s.synced ? `synced at seq ${s.synced.seq}` : 'syncing', `${s.peers.length} peers`);
 */
export interface StatusResult {
  /** This tab's role: only the syncer syncs; readers read the shared store. */
  role: 'starting' | 'syncer' | 'reader' | 'closed';
  /** Whether syncing is paused (`pause()`, or `autoStart: false` before `resume()`). */
  paused: boolean;
  /** The `seq` of the newest verified announcement. */
  seq: number | undefined;
  /** The root of the newest verified announcement. */
  target: Uint8Array | undefined;
  /** Set once the local state stands at a signed root this session. */
  synced:
    | {
        /** The signed root. */
        root: Uint8Array;
        /** Its announcement's `seq`. */
        seq: number;
        /** The local trie's root (a partial sync's own root; else equal to `root`). */
        localRoot: Uint8Array;
      }
    | undefined;
  /** The connected peers. */
  peers: {
    /** The peer id. */
    peer: string;
    /** Whether the connection lives in the worker or on the main thread. */
    via: 'worker' | 'main';
    /** The connection's transport. */
    transport: TransportName;
  }[];
  /** JS heap of the worker, where the engine reports it (Chromium's `performance.memory`). */
  heapUsed: number | undefined;
  /** Live updates: mode, held deltas, the position of the local state. */
  live?: LiveStatus;
}

/** Calls the page makes; `Results[method]` is the reply. */
export type Call =
  | { method: 'get'; key: Uint8Array; consistency: 'synced' | 'local' }
  | { method: 'list'; start: Uint8Array | undefined; end: Uint8Array | undefined; limit: number; consistency: 'synced' | 'local' }
  | { method: 'prove'; key: Uint8Array }
  | { method: 'getVerified'; key: Uint8Array }
  | { method: 'synced' }
  | { method: 'status' }
  | { method: 'pause' }
  | { method: 'resume' }
  | { method: 'clear' }
  | { method: 'close' }
  /** Test hook (live updates): ignore the next `count` gossip deltas, and announcements meanwhile. */
  | { method: 'dropGossip'; count: number }
  /** The history log (client.log.fetch): open, pull, close a fetch (history/worker-messages.ts). */
  | { method: 'log'; call: LogCall };

export interface Results {
  get: GetResult;
  list: { key: Uint8Array; value: Uint8Array }[];
  prove: ProveResult;
  getVerified: VerifiedResult;
  synced: {
    /** The signed root the local state stands at. */
    root: Uint8Array;
    /** Its announcement's `seq`. */
    seq: number;
    /** The local trie's root (a partial sync's own root; else equal to `root`). */
    localRoot: Uint8Array;
  };
  status: StatusResult;
  pause: void;
  resume: void;
  clear: void;
  close: void;
  dropGossip: void;
  log: LogReply;
}

export type Method = Call['method'];

/** Page → worker. */
export type ToWorker =
  | { type: 'init'; config: WorkerConfig; bridge?: MessagePort }
  | { type: 'call'; id: number; call: Call }
  | { type: 'abort'; id: number; reason: SerializedError };

/** Worker → page. */
export type FromWorker =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: SerializedError }
  /** Events emitted in one turn of the worker's loop (e.g. a live commit's `update`s), in order. */
  | { type: 'events'; events: WireEvent[] }
  /** The worker's store is open: local reads go to the worker from now on (the page's own reader closes). */
  | { type: 'stored' };

/** Worker → main thread, on the bridge port. */
export type BridgeRequest =
  | {
      type: 'request';
      id: number;
      /** Peer id of a connection the main thread holds. */
      peer: string;
      protocol: string;
      body: ArrayBuffer;
      maxResponseBytes: number;
      timeoutMs: number;
    }
  | { type: 'cancel'; id: number };

/** Main thread → worker, on the bridge port. */
export type BridgeReply =
  | { type: 'response'; id: number; body: ArrayBuffer }
  | { type: 'failure'; id: number; error: SerializedError }
  | { type: 'peer'; peer: string; status: 'connected' | 'disconnected' | 'failed'; transport: TransportName; addr: string; reason?: string }
  /** The first round of dials has settled (each peer connected or failed). */
  | { type: 'dialed' };

/** A Uint8Array's bytes as an ArrayBuffer of exactly that length, ready to transfer. */
export function transferable(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}
