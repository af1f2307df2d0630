/**
 * The light client's dedicated module worker (docs/design.md "Threads in the browser"):
 * the engine host, its own libp2p node for WebSocket peers (with gossipsub for new
 * announcements), the IndexedDB store, the sync lock and the tab channel. The page talks to it
 * with the messages of protocol.ts; connections the worker cannot hold arrive over the bridge
 * port.
 *
 * Spawned by `createLightClient` as
 * `new Worker(new URL('./worker/entry.ts', import.meta.url), { type: 'module' })`.
 */
/// <reference lib="webworker" />
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import type { Connection } from '@libp2p/interface';
import { webSockets } from '@libp2p/websockets';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { deleteDB } from 'idb';
import { databaseTopicScoreParams } from '../../protocol/gossip-verdict.ts';
import { databaseTopic } from '../../protocol/ids.ts';
import { ClientClosed, serializeError } from '../errors.ts';
import { acquireSyncLock, PackedIdbStore, SyncChannel, waitForSyncLock } from '../idb/index.ts';
import { IdbPendingDeltas } from '../idb/pending.ts';
import { sessionIdentity } from '../identity.ts';
import { browserConnectionGater } from '../transport.ts';
import { WorkerBridge } from './bridge-worker.ts';
import { EngineHost, type TabMessage } from './engine-host.ts';
import { delay } from '../../sync/abort.ts';
import { TurnBatch } from './turn-batch.ts';
import { libp2pRequester, type RemotePeer } from './peer-calls.ts';
import { PeerDiscovery } from '../discovery.ts';
import { peerIdFromString } from '@libp2p/peer-id';
import { transportOf } from '../../protocol/transports.ts';
import type { WireEvent } from '../events.ts';
import type { Call, FromWorker, ToWorker, WorkerConfig } from './worker-messages.ts';

declare const self: DedicatedWorkerGlobalScope;

/** Events of one turn go to the page as one message; a reply first sends those before it, so the page sees emission order. */
const events = new TurnBatch<WireEvent>((list) => self.postMessage({ type: 'events', events: list } satisfies FromWorker));
const post = (m: FromWorker): void => {
  events.flush();
  self.postMessage(m);
};
// the session's libp2p key, made before the page's `init` arrives (at once in a preloaded worker)
const identity = sessionIdentity();
const calls = new Map<number, AbortController>();
let ready: Promise<EngineHost> | undefined;
/** The host as soon as it exists: `getVerified` needs peers and a signed head, not the store. */
let constructed: EngineHost | undefined;
let teardown: (() => Promise<void>) | undefined;

const VALIDATOR_RESULT = { accept: TopicValidatorResult.Accept, reject: TopicValidatorResult.Reject, ignore: TopicValidatorResult.Ignore } as const;

type WorkerNode = Libp2p<{ identify: Identify; pubsub: ReturnType<ReturnType<typeof gossipsub>> }>;

/** Identify over `conn`, retried with backoff (up to 6 tries) while the connection is open. */
async function identifyWithRetry(node: WorkerNode, conn: Connection): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt++) {
    if (conn.status !== 'open') return;
    try {
      await node.services.identify.identify(conn, { signal: AbortSignal.timeout(10_000) });
      return;
    } catch {
      await delay(500 * 2 ** attempt);
    }
  }
}

async function createNode(config: WorkerConfig): Promise<WorkerNode> {
  return createLibp2p({
    privateKey: await identity,
    addresses: { listen: [] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: browserConnectionGater({ allowInsecureLoopback: config.allowInsecureLoopback }),
    services: {
      // run by hand once a peer's first signed head arrived (below): measured, identify's
      // exchange (and the gossipsub streams it starts) slows that first answer by a third
      identify: identify({ runOnConnectionOpen: false }),
      // invalid gossip counts against its sender (gossip-verdict.ts): a flooder is graylisted
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, scoreParams: { topics: { [databaseTopic(config.db)]: databaseTopicScoreParams() } } }),
    },
  }) as never;
}

async function init(config: WorkerConfig, bridgePort: MessagePort | undefined): Promise<EngineHost> {
  const channel = new SyncChannel<TabMessage>(config.db);
  const h = new EngineHost({
    config,
    emit: (event) => events.push(event),
    openStore: (name) => PackedIdbStore.open(name, { logBytes: config.writeLogBytes }),
    deleteStore: (name) => deleteDB(name),
    lock: { tryAcquire: () => acquireSyncLock(config.storageName), wait: (signal) => waitForSyncLock(config.storageName, { signal }) },
    channel,
    heapUsed: () => (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize,
    openPending: (name) => IdbPendingDeltas.open(name),
  });
  constructed = h;
  // the store opens while the first dials run
  const started = h.start();

  // peers held by the main thread (WebRTC-Direct; WebSockets when told to keep them there)
  let bridgedPeers: ((peer: RemotePeer) => void) | undefined;
  const bridge = bridgePort
    ? new WorkerBridge(bridgePort, (n) => {
        if (n.status === 'connected') {
          const peer = bridge!.peer(n.peer, n.transport);
          void h.addPeer(peer).then(() => bridgedPeers?.(peer));
        } else if (n.status === 'disconnected') h.removePeer(n.peer);
        else h.peerFailed(n.peer, n.reason ?? 'dial failed', n.transport, 'main');
      })
    : undefined;

  // peers held here: WebSockets, and gossip for new announcements
  let node: WorkerNode | undefined;
  if (config.dial.length) {
    node = await createNode(config);
    const topic = databaseTopic(config.db);
    // every message is judged before gossipsub forwards it (nothing invalid travels on through
    // this client) and taken there; `peer` is the one that relayed it: gap fills ask it first
    node.services.pubsub.topicValidators.set(topic, async (peer, msg) => VALIDATOR_RESULT[await h.judgeGossip(msg.data, peer.toString())]);
    node.services.pubsub.subscribe(topic);
    node.addEventListener('peer:disconnect', (e) => h.removePeer(e.detail.toString()));
  }
  /**
   * A connection in the worker: its peer joins the host (and the running sync), then, once its
   * first signed head is in (or failed), identify runs, and through it gossip (how a worker
   * peer brings new targets; a failed identify, a timeout on a loaded machine, is retried while
   * the connection stays open), and the peer is asked for the other full nodes it knows.
   */
  const life = new AbortController();
  const bootstrapped = new Set(config.dial.map((a) => a.match(/\/p2p\/([^/]+)/)?.[1] ?? ''));
  const connected = (conn: Connection): void => {
    const peer = { id: conn.remotePeer.toString(), transport: 'websockets', via: 'worker', request: libp2pRequester(node!, conn.remotePeer) } as const;
    const firstHeads = h.addPeer(peer);
    void firstHeads.then(() => {
      void discovery?.ask(peer, { signal: life.signal });
      return identifyWithRetry(node!, conn);
    });
  };
  const discovery =
    node && config.discovery
      ? new PeerDiscovery(config.discovery, {
          self: node.peerId.toString(),
          known: (id) => bootstrapped.has(id) || node!.getConnections(peerIdFromString(id)).length > 0,
          allowed: (ma) => transportOf(ma.toString()) === 'websockets' && !browserConnectionGater({ allowInsecureLoopback: config.allowInsecureLoopback }).denyDialMultiaddr!(ma),
          dial: async (ma) => {
            const conn = await node!.dial(ma, { signal: AbortSignal.any([life.signal, AbortSignal.timeout(10_000)]) });
            connected(conn);
            return true;
          },
          onError: (peer, err) => h.peerFailed(peer, `discovery: ${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}`, 'websockets', 'worker'),
        })
      : undefined;
  node?.addEventListener('peer:disconnect', (e) => discovery?.disconnected(e.detail.toString()));
  // bridged peers (the main thread's connections) are asked too; what they name is dialed here
  if (bridge && discovery) bridgedPeers = (peer) => void discovery.ask(peer, { signal: life.signal });
  // Each bootstrap address is dialed until it connects, and again after its peer disconnects,
  // with backoff (1 s doubling to 30 s): a refused or dropped dial never leaves the client
  // without peers for good. `dials` settles with each address's first attempt.
  const disconnected = new Map<string, () => void>();
  node?.addEventListener('peer:disconnect', (e) => disconnected.get(e.detail.toString())?.());
  const dials = config.dial.map(
    (addr) =>
      new Promise<void>((firstAttempt) => {
        void (async () => {
          for (let failures = 0; !life.signal.aborted; ) {
            try {
              const conn = await node!.dial(multiaddr(addr), { signal: AbortSignal.any([life.signal, AbortSignal.timeout(15_000)]) });
              const id = conn.remotePeer.toString();
              const gone = new Promise<void>((resolve) => disconnected.set(id, resolve));
              failures = 0;
              connected(conn);
              firstAttempt();
              await gone;
            } catch (err) {
              if (life.signal.aborted) break;
              const e = err as { name?: unknown; message?: unknown };
              const reason = typeof e?.message === 'string' ? `${String(e.name ?? 'Error')}: ${e.message}` : `dial failed: ${String(err)}`;
              h.peerFailed(addr.match(/\/p2p\/([^/]+)/)?.[1] ?? addr, reason, 'websockets', 'worker');
              firstAttempt();
              failures++;
            }
            await delay(Math.min(30_000, 1_000 * 2 ** Math.max(0, failures - 1)), life.signal).catch(() => {});
          }
          firstAttempt();
        })();
      }),
  );
  teardown = async () => {
    life.abort();
    await h.close();
    bridge?.close();
    await node?.stop();
  };
  void Promise.all([...dials, bridge?.dialed(), started]).then(() => h.peersSettled());
  await started;
  return h;
}

async function run(h: EngineHost, call: Call, signal: AbortSignal): Promise<unknown> {
  switch (call.method) {
    case 'get':
      return h.get(call.key, call.consistency, signal);
    case 'list':
      return h.list(call.start, call.end, call.limit, call.consistency, signal);
    case 'prove':
      return h.prove(call.key, signal);
    case 'getVerified':
      return h.getVerified(call.key, signal);
    case 'synced':
      return h.synced(signal);
    case 'status':
      return h.status();
    case 'pause':
      return h.pause();
    case 'resume':
      return h.resume();
    case 'clear':
      return h.clear();
    case 'close':
      await teardown?.();
      return undefined;
    case 'dropGossip':
      return h.dropGossip(call.count);
    case 'log':
      return h.log(call.call, signal);
  }
}

self.onmessage = (m: MessageEvent<ToWorker>) => {
  const msg = m.data;
  if (msg.type === 'init') {
    ready ??= init(msg.config, msg.bridge);
    ready.catch((err: unknown) => events.push({ type: 'error', detail: { error: serializeError(err), fatal: true } }));
    return;
  }
  if (msg.type === 'abort') {
    calls.get(msg.id)?.abort(new DOMException(msg.reason.message, msg.reason.name));
    return;
  }
  const controller = new AbortController();
  calls.set(msg.id, controller);
  // a first getVerified does not wait for IndexedDB to open (measured: up to 40 ms of the answer)
  const host = msg.call.method === 'getVerified' && constructed ? Promise.resolve(constructed) : ready;
  const started = host ?? Promise.reject(new ClientClosed('the worker was not initialised'));
  started
    .then((h) => (h.role === 'closed' && msg.call.method !== 'close' ? Promise.reject(new ClientClosed('the client is closed')) : run(h, msg.call, controller.signal)))
    .then(
      (value) => post({ type: 'reply', id: msg.id, ok: true, value }),
      (err: unknown) => post({ type: 'reply', id: msg.id, ok: false, error: serializeError(err) }),
    )
    .finally(() => calls.delete(msg.id));
};
