/**
 * The full node: a libp2p host (host.ts) over a LevelDB store (node-store.ts) that
 * serves range and change proofs, deltas, announcements and log batches to anyone
 * (protocols.ts), and, on the writer, commits batches from the HTTP API (http-api.ts) or the
 * write simulator, signing a delta and an announcement per commit (writer.ts) and publishing
 * both on the database's gossipsub topic.
 *
 *
 * Start order: identity → store (and `--generate`) → log → writer (open-database.ts) → libp2p
 * host → protocols → HTTP API → simulator (write-simulator.ts); `stop()` reverses it after the
 * commit in flight, so a restart serves the same root, history and identity. Options and their
 * defaults: full-node-options.ts; the HTTP API's token: token.ts.
 */
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { decodeAnnouncement } from '../core/announcement.ts';
import { toHex } from '../core/bytes.ts';
import { RwLock } from '../core/rwlock.ts';
import type { KeyChange } from '../core/types.ts';
import { databaseTopicScoreParams } from '../protocol/gossip-verdict.ts';
import { databaseTopic } from '../protocol/ids.ts';
import { DEFAULT_CONNECTION_LIMITS, type FullNodeOptions } from './full-node-options.ts';
import { validateDatabaseTopic } from './gossip-validator.ts';
import { createHost, writeAddressesFile, type AddressesFile, type Host } from './host.ts';
import { startHttpApi, type BatchResult, type HttpApi } from './http-api.ts';
import { loadOrCreateIdentity } from './identity.ts';
import { withDefaults } from './limits.ts';
import { NodeMetrics } from './metrics.ts';
import { Misbehaviour } from './misbehave.ts';
import type { NodeStore } from './node-store.ts';
import { openDatabase, writerKeys } from './open-database.ts';
import type { OperationLog } from './operation-log.ts';
import { serveProtocols } from './protocols.ts';
import { proofCacheOf } from './proof-cache-wiring.ts';
import { Replica } from './replica.ts';
import type { ReplicaStatus } from './replica-types.ts';
import { stopWithin } from './stop-deadline.ts';
import { loadOrCreateToken } from './token.ts';
import { storedAnnouncement, type CommitResult } from './writer.ts';
import { startWriteSimulator } from './write-simulator.ts';

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
  const keys = writerKeys(privateKey);
  const peerIdString = peerIdFromPrivateKey(privateKey).toString();
  const isWriter = (o.writer ?? true) && !o.follow;
  const token = o.token ?? (await loadOrCreateToken(o.dataDir));
  const metrics = new NodeMetrics();
  const { store, db, opLog, writer } = await openDatabase(o, keys, { isWriter, defaultDb: o.follow?.writer ?? peerIdString, log });
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  };
  try {
    const lock = new RwLock();
    const dbId = new TextEncoder().encode(db);
    const readOnlyAnnouncement = isWriter ? undefined : await storedAnnouncement(store);
    const readOnlyDecoded = readOnlyAnnouncement && decodeAnnouncement(readOnlyAnnouncement);
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
    const gossipWriterKey = o.follow ? peerIdFromString(o.follow.writer).publicKey?.raw : isWriter ? keys.publicKey : undefined;
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
        proofCache: proofCacheOf(o.proofCache, metrics, {
          announcement: () => writer?.announcement ?? replica?.announcement ?? readOnlyDecoded,
          misbehaving: () => misbehaviour.on,
        }),
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

    const stopSimulator =
      writer && o.simulateWritesPerSec && o.simulateWritesPerSec > 0
        ? startWriteSimulator({ perSec: o.simulateWritesPerSec, seed: (o.seed ?? 1) + 1, commit, stopping: () => stopping, log })
        : undefined;

    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        stopping = true;
        stopSimulator?.();
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
