/**
 * The full node: a libp2p host (host.ts) over a LevelDB store (node-store.ts) that
 * serves range and change proofs, deltas, announcements and log batches to anyone
 * (protocols.ts), and, on the writer, commits batches from the HTTP API (http-api.ts) or the
 * write simulator, signing a delta and an announcement per commit (writer.ts) and publishing
 * both on the database's gossipsub topic.
 *
 * Start order: identity → store (and `--generate`) → log → writer → libp2p host → protocols →
 * HTTP API → simulator; `stop()` reverses it after the commit in flight, so a restart serves
 * the same root, history and identity.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { decodeAnnouncement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import type { KeyChange } from '../core/types.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { databaseTopicScoreParams } from '../protocol/gossip-verdict.ts';
import { databaseTopic } from '../protocol/ids.ts';
import { BatchGenerator, generateKeyValues } from './generate.ts';
import { assertNotHalfGenerated, generateOperationLog, isEmptyStore } from './generate-log.ts';
import { validateDatabaseTopic } from './gossip-validator.ts';
import type { MuxerLimits } from './yamux-guard.ts';
import { createHost, writeAddressesFile, type AddressesFile, type Host, type HostOptions } from './host.ts';
import { startHttpApi, type BatchResult, type HttpApi } from './http-api.ts';
import { loadOrCreateIdentity } from './identity.ts';
import { withDefaults } from './limits.ts';
import { NodeMetrics } from './metrics.ts';
import { openNodeStore, type NodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { Misbehaviour } from './misbehave.ts';
import { serveProtocols, type ServeLimits } from './protocols.ts';
import type { WebRTCGuardLimits } from './webrtc-guard.ts';
import { stopWithin } from './stop-deadline.ts';
import { Replica } from './replica.ts';
import type { ReplicaStatus } from './replica-types.ts';
import { RwLock } from '../core/rwlock.ts';
import { databaseName, DatabaseWriter, storedAnnouncement, type CommitResult } from './writer.ts';
import { DEFAULT_WS_LIMITS, type WebSocketGuardLimits } from './ws-guard.ts';

/** The HTTP API's bearer token file in the data directory (`DIR/token`, mode 0600). */
export const TOKEN_FILE = 'token';

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
/** The LevelDB store's directory in the data directory (`DIR/db`). */
export const STORE_DIR = 'db';

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

/**
 * A running full node, as `startFullNode` returns it: its libp2p host, database, HTTP API and
 * metrics, and the calls to commit, report status and stop.
 *
 * @example
 * const enc = new TextEncoder();
 * const node = await startFullNode({ dataDir });
 * const { root, announcement } = await node.commit([{ key: enc.encode('a'), value: enc.encode('1') }]);
 * console.log(toHex(root), announcement.seq, node.httpUrl);
 * await node.stop();
 */
export interface FullNode {
  /** The libp2p host: node, peer id, addresses. */
  host: Host;
  /** The node's peer id. */
  peerId: string;
  /** The database id (announcement `db`). */
  db: string;
  /** The database's gossipsub topic (announcements and deltas). */
  topic: string;
  /** The addresses file as written, with `db`, `writer` and `http`. */
  file: AddressesFile;
  /** The HTTP API's base URL on 127.0.0.1; null when disabled. */
  httpUrl: string | null;
  /** The HTTP API's bearer token. */
  token: string;
  /** The node's Prometheus metrics. */
  metrics: NodeMetrics;
  /** The LevelDB store: trie, history, deltas. */
  store: NodeStore;
  /** The operation log (an MMR of the writer's deltas, docs/mmr.md). */
  log: OperationLog;
  /** Commits one batch (writer only). */
  commit(changes: KeyChange[]): Promise<CommitResult>;
  /** Where the node stands now. */
  status(): NodeStatus;
  /** Stops libp2p (within `stopTimeoutMs`), the HTTP API and the store. */
  stop(): Promise<void>;
}

/**
 * What `FullNode.status()` and the HTTP API's `/v1/status` report. Bytes are hex.
 *
 * @example
 * const s = node.status();
 * console.log(`${s.db} at seq ${s.seq}, root ${s.root}, ${s.peers} peers`);
 */
export interface NodeStatus {
  /** The node's peer id. */
  peerId: string;
  /** The database id. */
  db: string;
  /** Whether this node signs and commits. */
  writer: boolean;
  /** The current state root (hex). */
  root: string;
  /** The newest announcement's `seq`; null before the first. */
  seq: number | null;
  /** Operations in the log. */
  logSize: number;
  /** The log's MMR root (hex). */
  logRoot: string;
  /** The delta DAG heads of the newest announcement (hex ids). */
  heads: string[];
  /** Roots in the history window (change proofs can start at any of them). */
  historyRoots: number;
  /** Connected peers. */
  peers: number;
  /** Dialable multiaddrs. */
  addresses: string[];
  /** The HTTP API's URL; null when disabled. */
  http: string | null;
  /** Whether the node answers with tampered proofs (tests and demos). */
  misbehave: boolean;
  /** Replica mode: sync and follow state. */
  replica?: ReplicaStatus;
}

/**
 * Reads `DIR/token`, creating it (32 random bytes, hex, mode 0600) on first use.
 *
 * @example
 * const token = await loadOrCreateToken(dataDir);
 * await fetch(`${node.httpUrl}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
 */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('hex');
  try {
    const h = await open(file, 'wx', 0o600);
    try {
      await h.writeFile(token + '\n');
    } finally {
      await h.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateToken(dataDir);
    throw err;
  }
  await chmod(file, 0o600);
  return token;
}

function writerKeys(key: PrivateKey): { secretKey: Uint8Array; publicKey: Uint8Array } {
  if (key.type !== 'Ed25519') throw new TypeError(`the writer key must be Ed25519, got ${key.type}`);
  // libp2p's Ed25519 raw private key is seed (32) || public key (32)
  return { secretKey: key.raw.subarray(0, 32), publicKey: key.publicKey.raw };
}

/**
 * Starts a full node. Resolves once it listens and serves.
 *
 * @example
 * const node = await startFullNode({ dataDir: '/tmp/n1', generate: 10_000 });
 * console.log(node.peerId, node.file.ws);
 * await node.commit([{ key: Uint8Array.of(1), value: Uint8Array.of(2) }]);
 * await node.stop();
 */
export async function startFullNode(o: FullNodeOptions): Promise<FullNode> {
  const log = o.log ?? (() => {});
  const privateKey = await loadOrCreateIdentity(o.dataDir);
  const { secretKey, publicKey } = writerKeys(privateKey);
  const peerIdString = peerIdFromPrivateKey(privateKey).toString();
  const isWriter = (o.writer ?? true) && !o.follow;
  const token = o.token ?? (await loadOrCreateToken(o.dataDir));
  const metrics = new NodeMetrics();
  let store = await openNodeStore(join(o.dataDir, STORE_DIR), { historySize: o.historySize });
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  };
  try {
    const db = await databaseName(store, o.db, o.follow?.writer ?? peerIdString);
    await assertNotHalfGenerated(store, join(o.dataDir, STORE_DIR));
    if (isWriter && o.generateLog && o.generateLog.commits > 0) {
      if (await isEmptyStore(store)) {
        const initial = o.generate ? generateKeyValues(o.generate, o.seed ?? 1, (done, total) => o.onProgress?.({ phase: 'generate', done, total })) : undefined;
        await generateOperationLog({
          store,
          count: o.generateLog.commits,
          keySpace: o.generateLog.keys,
          seed: (o.seed ?? 1) + 2,
          initial,
          secretKey,
          publicKey,
          db,
          wallClock: o.wallClock,
          onProgress: (p) => o.onProgress?.(p),
        });
        // the database was opened empty: open it again over what was copied in
        await store.close();
        store = await openNodeStore(join(o.dataDir, STORE_DIR), { historySize: o.historySize });
      } else log(`--generate-log ignored: the database is not empty (root ${toHex(store.db.root)})`);
    }
    const opLog = await OperationLog.open(store.log, store.deltas, (done) => o.onProgress?.({ phase: 'log', done }));
    let writer: DatabaseWriter | undefined;
    if (isWriter) {
      writer = await DatabaseWriter.open({ store, log: opLog, secretKey, publicKey, db, wallClock: o.wallClock });
      if (o.generate && o.generate > 0 && !o.generateLog?.commits) {
        if (equalBytes(store.db.root, EMPTY_ROOT) && opLog.size === 0) {
          const kvs = generateKeyValues(o.generate, o.seed ?? 1, (done, total) => o.onProgress?.({ phase: 'generate', done, total }));
          // the bulk load writes trie nodes and values in chunks: report records written
          let records = 0;
          store.state.observer = (ops) => o.onProgress?.({ phase: 'load', done: (records += ops) });
          try {
            await writer.bulkLoad(kvs);
          } finally {
            store.state.observer = undefined;
          }
        } else log(`--generate ignored: the database is not empty (root ${toHex(store.db.root)})`);
      }
    }
    const lock = new RwLock();
    const dbId = new TextEncoder().encode(db);
    const readOnlyAnnouncement = isWriter ? undefined : await storedAnnouncement(store);
    const topic = databaseTopic(db);

    const limits = withDefaults(DEFAULT_CONNECTION_LIMITS, o.connections);
    const host = await createHost({
      dataDir: o.dataDir,
      privateKey,
      listen: o.listen,
      announce: o.announce,
      tls: o.tls,
      connectionManager: {
        inboundConnectionThreshold: o.inboundConnectionThreshold ?? 100,
        maxConnections: limits.maxConnections,
        maxIncomingPendingConnections: limits.maxPendingHandshakes,
        // ws-guard.ts times WebSocket upgrades out itself (to count them); this is the
        // backstop, and WebRTC-Direct's deadline
        inboundUpgradeTimeout: limits.handshakeTimeoutMs + 1_000,
      },
      webSockets: {
        limits: { maxConnections: limits.maxConnections, maxConnectionsPerIp: limits.maxConnectionsPerIp, handshakeTimeoutMs: limits.handshakeTimeoutMs },
        events: {
          onRefused: (reason) => metrics.connectionsRefused.inc({ reason }),
          onProtocolError: (code) => metrics.websocketProtocolErrors.inc({ code }),
          onSockets: (open) => metrics.websocketSockets.set(open),
        },
      },
      muxer: { ...o.muxer, onRefused: (reason) => metrics.muxerRefused.inc({ reason }) },
      webrtcDirect: {
        ...o.webrtcDirect,
        onRefused: (reason) => metrics.webrtcHandshakesRefused.inc({ reason }),
        onExpired: () => metrics.webrtcHandshakesRefused.inc({ reason: 'expired' }),
        onPending: (n) => metrics.webrtcHandshakesPending.set(n),
      },
      gossipTopicScores: { [topic]: databaseTopicScoreParams() },
    });
    cleanup.push(() =>
      stopWithin('libp2p host', host.stop(), o.stopTimeoutMs ?? 5_000, (x, err) =>
        log(`${x.part} did not stop within ${x.timeoutMs} ms${err ? ` (${(err as Error).message})` : ''}: closing the store without it`),
      ),
    );
    const libp2p = host.libp2p;
    const updatePeers = (): void => metrics.peers.set(libp2p.getPeers().length);
    libp2p.addEventListener('peer:connect', updatePeers);
    libp2p.addEventListener('peer:disconnect', updatePeers);
    libp2p.services.pubsub.subscribe(topic);
    // gossip is judged before gossipsub forwards it (the writer's key is known to a writer and a replica)
    const gossipWriterKey = o.follow ? peerIdFromString(o.follow.writer).publicKey?.raw : isWriter ? publicKey : undefined;
    if (gossipWriterKey) {
      validateDatabaseTopic(libp2p.services.pubsub, topic, { writerPublicKey: gossipWriterKey, db: dbId, newestSeq: () => writer?.announcement.seq }, metrics);
    }

    const misbehaviour = new Misbehaviour(o.misbehave ?? false);
    const replica = o.follow
      ? new Replica({
          libp2p,
          store,
          opLog,
          lock,
          writer: o.follow.writer,
          db: dbId,
          topic,
          bootstrap: o.follow.bootstrap,
          historySize: o.historySize,
          maxGap: o.follow.maxGap,
          pendingTimeoutMs: o.follow.pendingTimeoutMs,
          concurrency: o.follow.concurrency,
          log,
        })
      : undefined;
    /** The database served: a replica's once it has synced. */
    const servedDb = () => replica?.db ?? store.db;

    const unserve = await serveProtocols(
      libp2p,
      {
        get db() {
          return misbehaviour.serve(servedDb());
        },
        log: opLog,
        lock,
        dbId,
        announcement: () => writer?.announcementBytes ?? replica?.announcementBytes ?? readOnlyAnnouncement,
        metrics,
        onError: (err, c) => log(`error serving ${c.protocol}: ${(err as Error)?.stack ?? String(err)}`),
      },
      o.limits,
    );
    cleanup.push(unserve);

    let stopping = false;
    const commit = async (changes: KeyChange[]): Promise<CommitResult> => {
      if (!writer) throw new TypeError('this node is not the writer of its database');
      if (stopping) throw new Error('the node is stopping');
      const w = writer;
      const end = metrics.commitSeconds.startTimer();
      const result = await lock.write(() => w.commit(changes));
      end();
      metrics.commits.inc();
      metrics.committedKeys.inc(result.delta.actions.length);
      metrics.logSize.set(opLog.size);
      metrics.seq.set(result.announcement.seq);
      // Gossip is best effort: peers that miss it fetch /heads and fill gaps over /delta.
      for (const bytes of [result.deltaBytes, result.announcementBytes]) {
        libp2p.services.pubsub.publish(topic, bytes).catch((err: unknown) => log(`gossip publish failed: ${(err as Error).message}`));
      }
      return result;
    };
    metrics.logSize.set(opLog.size);
    if (writer) metrics.seq.set(writer.announcement.seq);

    const status = (): NodeStatus => {
      const annBytes = writer?.announcementBytes ?? replica?.announcementBytes ?? readOnlyAnnouncement;
      const ann = annBytes ? decodeAnnouncement(annBytes) : undefined;
      return {
        peerId: peerIdString,
        db,
        writer: isWriter,
        root: toHex(servedDb().root),
        seq: ann?.seq ?? null,
        logSize: opLog.size,
        logRoot: toHex(opLog.root()),
        heads: (ann?.heads ?? []).map(toHex),
        historyRoots: servedDb().roots().length,
        peers: libp2p.getPeers().length,
        addresses: host.file.addresses,
        http: api?.url ?? null,
        misbehave: misbehaviour.on,
        ...(replica ? { replica: replica.status() } : {}),
      };
    };

    let api: HttpApi | undefined;
    if (o.httpPort !== null) {
      api = await startHttpApi({
        port: o.httpPort ?? 0,
        token,
        ...o.http,
        onError: (status, error) => metrics.httpErrors.inc({ status: String(status), error }),
        commit: isWriter
          ? async (changes): Promise<BatchResult> => {
              const r = await commit(changes);
              return { root: toHex(r.root), deltaId: toHex(r.delta.id), seq: r.announcement.seq, logSize: r.announcement.logSize };
            }
          : undefined,
        status: () => status() as unknown as Record<string, unknown>,
        misbehave: (on) => {
          misbehaviour.on = on;
          log(`misbehave ${on ? 'on: serving tampered proofs' : 'off'}`);
        },
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      });
      const a = api;
      cleanup.push(() => a.close());
    }

    const file: AddressesFile = { ...host.file, db, writer: isWriter, http: api?.url ?? null };
    await writeAddressesFile(o.dataDir, file);
    if (replica) {
      await replica.start();
      cleanup.push(() => replica.stop());
    }

    let simulator: ReturnType<typeof setInterval> | undefined;
    if (writer && o.simulateWritesPerSec && o.simulateWritesPerSec > 0) {
      const batches = new BatchGenerator((o.seed ?? 1) + 1);
      let busy = false;
      simulator = setInterval(() => {
        if (busy || stopping) return; // never queue up: the rate is an upper bound
        busy = true;
        commit(batches.next())
          .catch((err: unknown) => log(`simulated write failed: ${(err as Error).message}`))
          .finally(() => (busy = false));
      }, 1000 / o.simulateWritesPerSec);
    }

    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        stopping = true;
        if (simulator) clearInterval(simulator);
        // a replica's catch-up holds the lock: stop it first
        await replica?.stop();
        // let the commit in flight land, then hold the lock while everything closes
        await lock.write(async () => {
          await unwind();
        });
      })();
      return stopped;
    };

    return {
      host,
      peerId: peerIdString,
      db,
      topic,
      file,
      httpUrl: api?.url ?? null,
      token,
      metrics,
      store,
      log: opLog,
      commit,
      status,
      stop,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
