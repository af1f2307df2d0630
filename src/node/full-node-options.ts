/**
 * How to run a full node (`FullNodeOptions`, what `startFullNode` takes), its inbound
 * connection limits with their defaults, and the progress it reports during long work. The
 * `proofsync node` flags (src/cli/node-commands.ts) set the same fields.
 */
import type { HostOptions } from './host.ts';
import type { ServeLimits } from './protocols.ts';
import type { ProofCacheOptions } from './proof-cache-wiring.ts';
import type { WebRTCGuardLimits } from './webrtc-guard.ts';
import { DEFAULT_WS_LIMITS, type WebSocketGuardLimits } from './ws-guard.ts';
import type { MuxerLimits } from './yamux-guard.ts';

/**
 * Inbound connection limits. The WebSocket listener enforces the total, per-IP and handshake
 * limits on raw TCP sockets (ws-guard.ts: libp2p sees a connection only after its WebSocket
 * upgrade); libp2p's connection manager gets the total, the pending upgrades and the
 * handshake timeout for every transport.
 */
export interface ConnectionLimits extends Pick<WebSocketGuardLimits, 'maxConnections' | 'maxConnectionsPerIp' | 'handshakeTimeoutMs'> {
  /** libp2p upgrades (Noise, Yamux) in progress at once. */
  maxPendingHandshakes: number;
}

/**
 * libp2p's own pending-upgrade default (10) lets 10 clients that handshake a byte a second
 * lock everyone out; 128 is twice the per-IP limit, so one address cannot fill it alone.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: DEFAULT_WS_LIMITS.maxConnections,
  maxConnectionsPerIp: DEFAULT_WS_LIMITS.maxConnectionsPerIp,
  handshakeTimeoutMs: DEFAULT_WS_LIMITS.handshakeTimeoutMs,
  maxPendingHandshakes: 128,
};

/** Long work the node reports: generating, loading, committing a generated log, rebuilding the log. */
export interface Progress {
  /** Which work: generating data, loading it, committing a generated log, copying commits, rebuilding the log. */
  phase: 'generate' | 'load' | 'commit' | 'copy' | 'log';
  /** Items generated, records written (trie nodes and values), commits made or copied, or log operations read. */
  done: number;
  /** How many in all, when known. */
  total?: number;
}

/**
 * How to run a full node: its data directory; what it listens on and announces; whether it
 * writes, follows a writer as a replica, or only serves; and its limits. Every limit has a
 * default; the `proofsync node` flags set the same fields.
 *
 * @example
 * const options: FullNodeOptions = {
 *   dataDir: '/var/lib/proofsync',
 *   listen: ['/ip4/0.0.0.0/tcp/4001/ws', '/ip4/0.0.0.0/udp/4002/webrtc-direct'],
 *   announce: ['/dns4/node.example.com/tcp/443/wss'],
 *   db: 'inventory',
 *   limits: { maxConcurrentPerPeer: 4 },
 * };
 * const node = await startFullNode(options);
 */
export interface FullNodeOptions {
  /** Directory of the store, identity, token and addresses file; created if missing. */
  dataDir: string;
  /** Listen multiaddrs; default loopback WebSockets and WebRTC-Direct. */
  listen?: string[];
  /** Multiaddrs to announce instead of the listen addresses (public IP, DNS name). */
  announce?: string[];
  /** PEM certificate and key for secure WebSockets (`/tls/ws`); see `HostOptions.tls`. */
  tls?: HostOptions['tls'];
  /** Fill an empty database with this many seeded key-values. */
  generate?: number;
  /**
   * Then make this many seeded commits, each a signed delta in the log (generate-log.ts): a
   * writer with a long history in seconds. With `keys`, they put and delete among that many
   * keys (the state stays small); otherwise each puts a fresh key.
   */
  generateLog?: {
    /** Commits to make. */
    commits: number;
    /** Keys the commits put and delete among (default: a fresh key per commit). */
    keys?: number;
  };
  /** Seed of `generate` and of the write simulator. Default 1. */
  seed?: number;
  /** Commit small random batches at this rate (commits per second). */
  simulateWritesPerSec?: number;
  /** HTTP API port on 127.0.0.1; 0 (default) picks one; `null` disables the API. */
  httpPort?: number | null;
  /** HTTP API bounds: body size (default 8 MiB), header and request deadlines (10 s, 30 s). */
  http?: {
    /** Largest request body (default 8 MiB). */
    maxBodyBytes?: number;
    /** Time to receive a request's headers (default 10,000 ms). */
    headersTimeoutMs?: number;
    /** Time to receive a whole request (default 30,000 ms). */
    requestTimeoutMs?: number;
  };
  /** Bearer token; default read from (or created in) `DIR/token`, mode 0600. */
  token?: string;
  /** Whether this node signs and commits (default true). */
  writer?: boolean;
  /** Database name (announcement `db`, gossip topic); default the peer id, kept in the store. */
  db?: string;
  /** Commits of history kept for change proofs (default 300; docs/proofs.md#serving). */
  historySize?: number;
  /** Per-peer stream, rate and proof-serving limits of the protocol handlers. */
  limits?: ServeLimits;
  /** The shared cache of range-proof answers at checkpoint roots (proof-cache.ts). */
  proofCache?: ProofCacheOptions;
  /** Yamux bounds per connection (yamux-guard.ts); refusals are counted in the node's metrics. */
  muxer?: Omit<MuxerLimits, 'onRefused'>;
  /**
   * How long `stop()` waits for libp2p to close its listeners and connections before it closes
   * the store regardless (stop-deadline.ts). Default 5,000 ms: with the store's own close, a
   * SIGTERM ends the process well inside 10 s whatever peers hold open.
   */
  stopTimeoutMs?: number;
  /** Bounds on pending WebRTC-Direct handshakes (webrtc-guard.ts). */
  webrtcDirect?: WebRTCGuardLimits;
  /** libp2p's new-connection threshold per remote IP and second. Default 100. */
  inboundConnectionThreshold?: number;
  /** Inbound connection limits; defaults `DEFAULT_CONNECTION_LIMITS`. */
  connections?: Partial<ConnectionLimits>;
  /** Progress of long work; the CLI renders it. */
  onProgress?: (p: Progress) => void;
  /** Log lines (errors worth knowing about). Default: none. */
  log?: (line: string) => void;
  /** Injected wall clock for the HLC. */
  wallClock?: () => number;
  /**
   * Replica mode (replica.ts): sync the state of the writer with this peer id from the
   * bootstrap peers, serve it, and follow its deltas. Implies `writer: false`.
   */
  follow?: {
    /** The writer's peer id (Ed25519): the one key the replica trusts. */
    writer: string;
    /** Multiaddrs of nodes to sync from. */
    bootstrap: string[];
    /** Most deltas fetched to fill one gap before catching up by change proof (default 10,000). */
    maxGap?: number;
    /** Deltas pending longer than this trigger a catch-up (default 10,000 ms). */
    pendingTimeoutMs?: number;
    /** Requests in flight during a sync (default 8). */
    concurrency?: number;
  };
  /** Answer range and change requests with tampered proofs (misbehave.ts); tests and demos. */
  misbehave?: boolean;
}
