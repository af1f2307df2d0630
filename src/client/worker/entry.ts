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
import { deleteDB } from 'idb';
import { ed25519 } from '@noble/curves/ed25519.js';
import { warmSha256 } from '../../core/sha256.ts';
import { ClientClosed, serializeError } from '../errors.ts';
import { acquireSyncLock, PackedIdbStore, SyncChannel, waitForSyncLock } from '../idb/index.ts';
import { IdbPendingDeltas } from '../idb/pending.ts';
import { sessionKeyBytes } from '../session-key.ts';
import { WorkerBridge } from './bridge-worker.ts';
import { EngineHost, type TabMessage } from './engine-host.ts';
import { delay } from '../../sync/abort.ts';
import { TurnBatch } from './turn-batch.ts';
import { AnswerFirst } from './answer-first.ts';
import { libp2pRequester, type RemotePeer } from './peer-calls.ts';
import type { WireEvent } from '../events.ts';
import type { Call, FromWorker, ToWorker, WorkerConfig } from './worker-messages.ts';
import type { WorkerNode } from './network.ts';
import type { Connection } from '@libp2p/interface';

declare const self: DedicatedWorkerGlobalScope;

/** Start-up marks (User Timing, `proofsync:` prefix): visible in a performance trace of the worker. */
const mark = (name: string): void => void performance.mark(`proofsync:${name}`);
mark('worker-evaluated');

/** Events of one turn go to the page as one message; a reply first sends those before it, so the page sees emission order. */
const events = new TurnBatch<WireEvent>((list) => self.postMessage({ type: 'events', events: list } satisfies FromWorker));
const post = (m: FromWorker): void => {
  events.flush();
  self.postMessage(m);
};
// the session's libp2p key, made before the page's `init` arrives (at once in a preloaded worker)
const identity = sessionKeyBytes();
/**
 * The libp2p stack, its own chunk (network.ts), imported once the store has opened (or failed
 * to): its compile and evaluation and the node's creation keep this thread busy for 300-600 ms
 * on a loaded 2-core machine, and a store opening meanwhile waited for all of it (its
 * IndexedDB callbacks are tasks of this thread): a warm restart's first local `get` answered
 * only after the libp2p node existed. Opening the store alone takes 30-60 ms (the
 * `proofsync:` marks, bench/startup-trace.ts). With the page answering those gets itself
 * (light-client.ts), importing this at `init`, beside the store, was tried for the way to the
 * head after a restart: the store then opened 1.0-1.5 s after `createLightClient` instead of
 * 0.1-0.3 s, and the sync, which needs both, started later (create to synced 2.8-4.5 s against
 * 2.1-2.9 s; `VERIFIED=0 TRACE=0 node bench/startup-trace.ts 20000 3`, 100 missed commits).
 */
let network: Promise<typeof import('./network.ts')> | undefined;
/** The longest the network waits for the store. */
const STORE_FIRST_MS = 500;
function loadNetwork(): Promise<typeof import('./network.ts')> {
  if (!network) {
    network = import('./network.ts');
    network.then(() => mark('network-loaded'), () => {}); // a chunk that fails to load fails `init`, reported there
    // while it downloads: noble's base-point table, which the node's first Noise key (x25519
    // through Ed25519's base point) and the first signature check both need; built on first
    // use, it was 50-190 ms of createNode in worker profiles (loaded 2-core machine). And the
    // SHA-256 module, which the first proof's check needs (core/sha256.ts: ~20-45 ms cold).
    setTimeout(() => {
      ed25519.getPublicKey(new Uint8Array(32));
      warmSha256();
    }, 0);
  }
  return network;
}
const calls = new Map<number, AbortController>();
/**
 * A connection's identify and discovery wait while a `getVerified` is in flight (up to
 * `ANSWER_FIRST_MS`): they start when the peer's first head arrives, as the first proof
 * request goes out, and slowed its answer.
 */
const answerFirst = new AnswerFirst();
const ANSWER_FIRST_MS = 1_000;
let ready: Promise<EngineHost> | undefined;
/** The host as soon as it exists: `getVerified` needs peers and a signed head, not the store. */
let constructed: EngineHost | undefined;
/**
 * The host once its store is open: local reads wait for this, not for the libp2p node (its
 * creation took 110-180 ms of a warm restart's first local `get` on a loaded 2-core machine,
 * bench/browser.bench.ts "warm restart").
 */
let stored: Promise<EngineHost> | undefined;
let teardown: (() => Promise<void>) | undefined;

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
  mark('host-constructed');
  // the store opens while the first dials run
  const started = h.start();
  stored = started.then(() => (mark('store-open'), post({ type: 'stored' }), h));
  stored.catch(() => {}); // reported once, through `ready`

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
  // a store that cannot open soon (another connection blocking an upgrade) does not hold back the peers
  await Promise.race([started.catch(() => {}), delay(STORE_FIRST_MS)]);
  const { createNode, dialAddr, identifyWithRetry, discoveryDialPolicy, connectedTo, PeerDiscovery } = await loadNetwork();
  if (config.dial.length) {
    // gossip is judged and taken by the host; `peer` is the one that relayed it: gap fills ask it first
    node = await createNode(config, await identity, (data, peer) => h.judgeGossip(data, peer));
    mark('node-created');
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
    mark('peer-connected');
    const firstHeads = h.addPeer(peer);
    void firstHeads.then(async () => {
      mark('peer-heads');
      await answerFirst.idle(ANSWER_FIRST_MS);
      void discovery?.ask(peer, { signal: life.signal });
      return identifyWithRetry(node!, conn);
    });
  };
  const discovery =
    node && config.discovery
      ? new PeerDiscovery(config.discovery, {
          self: node.peerId.toString(),
          known: (id) => bootstrapped.has(id) || connectedTo(node!, id),
          allowed: discoveryDialPolicy(config),
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
              const conn = await dialAddr(node!, addr, AbortSignal.any([life.signal, AbortSignal.timeout(15_000)]));
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

/** Calls answered from the store alone: they start once it is open. */
const LOCAL_READS = new Set<Call['method']>(['get', 'list', 'prove']);

self.onmessage = (m: MessageEvent<ToWorker>) => {
  const msg = m.data;
  if (msg.type === 'init') {
    mark('init');
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
  const answered = msg.call.method === 'getVerified' ? answerFirst.begin() : undefined;
  // a first getVerified does not wait for IndexedDB to open (measured: up to 40 ms of the answer)
  const method = msg.call.method;
  const host = method === 'getVerified' && constructed ? Promise.resolve(constructed) : LOCAL_READS.has(method) && stored ? stored : ready;
  const started = host ?? Promise.reject(new ClientClosed('the worker was not initialised'));
  started
    .then((h) => (h.role === 'closed' && msg.call.method !== 'close' ? Promise.reject(new ClientClosed('the client is closed')) : run(h, msg.call, controller.signal)))
    .then(
      (value) => (mark(`reply:${method}`), post({ type: 'reply', id: msg.id, ok: true, value })),
      (err: unknown) => post({ type: 'reply', id: msg.id, ok: false, error: serializeError(err) }),
    )
    .finally(() => {
      calls.delete(msg.id);
      answered?.();
    });
};
