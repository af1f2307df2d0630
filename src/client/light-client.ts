/**
 * The light client's main-thread API: what a dApp embeds. `createLightClient` starts
 * the worker (worker/entry.ts) that syncs a verified replica of one database into IndexedDB,
 * and returns a `LightClient` whose calls and events cross to it as typed messages
 * (worker/worker-messages.ts). This thread holds no state, does no hashing and no decoding: it only
 * opens the connections the worker cannot (WebRTC-Direct, worker/bridge-main.ts) and moves
 * their bytes; and until the worker's store is open, it answers local `get`s from the stored,
 * verified state itself (idb/store-reader.ts), so a warm restart's first read does not wait for
 * the worker to boot.
 *
 * Trust: the only input trusted is `writer`, the writer's peer id (its Ed25519 key). Every
 * value the client returns was verified against a root that key signed.
 *
 * One file: this is the public API a dApp reads, about 200 of its lines TSDoc with examples;
 * each method is a thin call across to the worker, so the class stays whole where its
 * documentation is read.
 */
import { ClientClosed, reviveError, WorkerFailed } from './errors.ts';
import { TypedEmitter, type LightClientEventMap, type WireEvent } from './events.ts';
import { prefixRange } from '../sync/state/ranges.ts';
import type { MainBridge } from './worker/bridge-main.ts';
import { LogApi } from './history/api.ts';
import type { DiscoveryOptions } from './discovery.ts';
import type {
  Call,
  FromWorker,
  GetResult,
  KeyRangeOption,
  ProveResult,
  Results,
  StatusResult,
  SyncTuning,
  ToWorker,
  VerifiedResult,
  WorkerConfig,
  LiveTuning,
} from './worker/worker-messages.ts';
import { compareBytes, inKeyRange } from '../core/bytes.ts';
import { transportOf, type TransportName } from '../protocol/transports.ts';
import { snapshotBase } from '../sync/state/snapshot-url.ts';
import { EarlyReads } from './early-reads.ts';

export type { GetResult, KeyRangeOption, LiveTuning, ProveResult, StatusResult, SyncTuning, VerifiedResult };
export { prefixRange };

/**
 * What `createLightClient` needs: the database, the writer key it trusts, the full nodes to
 * dial; optionally a partial sync's ranges, storage, transport and tuning settings.
 *
 * @example
 * const options: LightClientOptions = {
 *   db: 'inventory',
 *   writer: '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSU',
 *   bootstrap: ['/dns4/node.example.com/tcp/443/wss/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'],
 *   ranges: [prefixRange(new TextEncoder().encode('users/'))],
 *   sync: { concurrency: 8 },
 * };
 * const client = createLightClient(options);
 */
export interface LightClientOptions {
  /** The database id (the announcements' `db`, as UTF-8; a full node's default is its peer id). */
  db: string;
  /** The writer's libp2p peer id (Ed25519): the one key the client trusts. */
  writer: string;
  /** Full nodes to dial: multiaddrs with `/p2p/<peer id>` (`/ws`, `/wss`, `/webrtc-direct`). */
  bootstrap: string[];
  /** Partial sync: only these inclusive key ranges (see `prefixRange`). Default: everything. */
  ranges?: KeyRangeOption[];
  /** Where and how the replica is stored in IndexedDB. */
  storage?: {
    /** IndexedDB database name (default `proofsync:<db>`; one per database and range set). */
    name?: string;
    /** A first sync fails with `InsufficientStorage` below this much free quota (default 16 MiB; 0: no check). */
    minFreeBytes?: number;
    /**
     * Bytes of the store's write log (live deltas appended, not yet compacted into the pages)
     * before a compaction runs (default 48 MiB; 0: no write log). The overlay holds at most this much.
     */
    writeLogBytes?: number;
  };
  /** Transports to use (default both); addresses of other transports are skipped. */
  transports?: TransportName[];
  /** Allow loopback and plain `ws://` (local tests and demos only). Default false. */
  allowInsecureLoopback?: boolean;
  /**
   * Where WebSocket connections live: in the worker (default; their bytes never touch the main
   * thread) or on the main thread beside the WebRTC ones (one libp2p node on the page).
   */
  websocketsIn?: 'worker' | 'main';
  /** A worker to use instead of the bundled entry (e.g. `new Worker(url, { type: 'module' })`). */
  worker?: Worker;
  /** Start syncing at once (default true); otherwise at `resume()`. Reads work either way. */
  autoStart?: boolean;
  /** Poll `/heads` this often when no gossip peer is connected (default 5,000 ms; 0: never). */
  headsPollMs?: number;
  /** State sync: concurrency, key limit, deadlines, ban threshold (defaults in `SyncTuning`). */
  sync?: SyncTuning;
  /** Live updates: pending bounds, gap-fill limits, timeouts (defaults in `LiveTuning`). */
  live?: LiveTuning;
  /**
   * Peer discovery (default on): every full node the client connects to is asked for the other
   * full nodes of the database, and up to `maxPeers` of them are dialed and share the sync.
   * `false`: only `bootstrap` is dialed.
   */
  discovery?: DiscoveryOptions | false;
  /**
   * Static proof mirrors: base URLs (http or https) where `proofsync snapshot` files are served,
   * by any static server or CDN (with `Access-Control-Allow-Origin` for another origin). The
   * state at a checkpoint is fetched from them beside the peers and verified like a peer's
   * answers; a wrong file penalises the mirror. Their `announcement` is read too (verified with
   * the writer's key). Catching up past the checkpoint goes over libp2p. docs/static-proofs.md.
   */
  snapshots?: string[];
}

/**
 * Options every call of the client takes.
 *
 * @example
 * await client.synced({ signal: AbortSignal.timeout(60_000) });
 */
export interface CallOptions {
  /** Aborts the call: it rejects with the signal's reason, and the worker is told to stop its work. */
  signal?: AbortSignal;
}

/**
 * Options of the local reads (`get`, `entries`): whether to wait for a synced state.
 *
 * @example
 * const cached = await client.get(key, { consistency: 'local' }); // do not wait for the sync
 */
export interface ReadOptions extends CallOptions {
  /**
   * `synced` (default): wait until the local state stands at a signed root this session, then
   * read. `local`: read what is stored now (every value verified, but ranges still syncing may
   * be missing or at an older root).
   */
  consistency?: 'synced' | 'local';
}

/**
 * What a subscriber hears: one applied delta (its id, the changed keys in the subscribed range),
 * or a new synced root reached by a state sync (`deltaId` and `keys` undefined: re-read).
 *
 * @example
 * client.subscribe({}, (u: Update) => {
 *   if (u.keys === undefined) reloadAll();
 *   else console.log(`${u.keys.length} keys changed at seq ${u.seq}`);
 * });
 */
export interface Update {
  /** The verified root the state now stands at. */
  root: Uint8Array;
  /** Its announcement's `seq`, when known (a delta is often applied before its announcement arrives). */
  seq: number | undefined;
  /** Changed keys within the subscribed range, in key order; undefined after a state sync. */
  keys: Uint8Array[] | undefined;
  /** The applied delta's id; undefined after a state sync. */
  deltaId?: Uint8Array;
  /** The applied delta's position in the writer's operation log; undefined after a state sync. */
  logIndex?: number;
  /** The writer's commit time (its HLC wall clock, ms since the epoch): `Date.now() - hlcWallMs` is the commit-to-callback latency. */
  hlcWallMs?: number;
}

const inRange = (key: Uint8Array, r: KeyRangeOption): boolean => inKeyRange(key, r.start, r.end);

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The bundled worker entry (bundlers see this `new Worker(new URL(...))` and emit the worker). */
function spawnWorker(name: string): Worker {
  return new Worker(new URL('./worker/entry.ts', import.meta.url), { type: 'module', name });
}

let preloaded: Worker | undefined;

function takePreloadedWorker(): Worker | undefined {
  const w = preloaded;
  preloaded = undefined;
  return w;
}

/**
 * Starts the light client's worker now, for the next `createLightClient` to adopt: fetching,
 * compiling and evaluating the worker's entry (the engine, IndexedDB) and making its session
 * key then overlap with whatever the page does before it creates the client, instead of
 * delaying the first answer. (The libp2p chunk loads once the client's store has opened; a
 * warm restart's first local `get` is answered by the page itself before that.)
 * Measured: the entry's boot took 250-500 ms on a loaded 2-core machine (`proofsync:` marks,
 * bench/startup-trace.ts). Calling it
 * again before a client adopted the worker does nothing; a preloaded worker no client adopts
 * stays idle until the page closes.
 *
 * @example
 * import { createLightClient, preloadLightClient } from 'proofsync/client';
 * preloadLightClient(); // first thing in the app's entry module
 * // ... render, read settings ...
 * const client = createLightClient({ db, writer, bootstrap });
 */
export function preloadLightClient(): void {
  performance.mark?.('proofsync:preload');
  preloaded ??= spawnWorker('proofsync');
}


function checkOptions(o: LightClientOptions): void {
  if (typeof o?.db !== 'string' || o.db.length === 0) throw new TypeError('expected a non-empty db name');
  // the shape only: the worker decodes the key (libp2p's peer-id code stays off this thread)
  if (typeof o.writer !== 'string' || !/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/.test(o.writer)) {
    throw new TypeError(`expected an Ed25519 peer id (12D3KooW...) for the writer, got ${o.writer}`);
  }
  if (!Array.isArray(o.bootstrap) || o.bootstrap.length === 0) throw new TypeError('expected at least one bootstrap multiaddr');
  for (const a of o.bootstrap) if (typeof a !== 'string' || !/\/p2p\/[^/]+$/.test(a)) throw new TypeError(`expected a multiaddr ending in /p2p/<peer id>, got ${a}`);
  for (const r of o.ranges ?? []) {
    for (const b of [r.start, r.end]) if (b !== undefined && !(b instanceof Uint8Array)) throw new TypeError('expected Uint8Array range bounds');
  }
  if (o.discovery) {
    for (const [k, v] of Object.entries({ maxPeers: o.discovery.maxPeers, maxDials: o.discovery.maxDials })) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw new TypeError(`expected discovery.${k} to be a non-negative integer, got ${v}`);
    }
  }
  if (o.snapshots !== undefined && !Array.isArray(o.snapshots)) throw new TypeError('expected snapshots to be a list of base URLs');
  for (const s of o.snapshots ?? []) snapshotBase(s);
}

/**
 * A verified replica of one database, synced by a worker; see `createLightClient`.
 * Every async call takes `{ signal }` and rejects with its reason when aborted.
 *
 * @example
 * const client = createLightClient({ db, writer, bootstrap });
 * await client.synced();
 * for await (const { key, value } of client.entries(prefixRange(prefix))) render(key, value);
 * await client.close();
 */
export class LightClient {
  /** The database id given at creation. */
  readonly db: string;
  /**
   * The writer's history log, verified against signed log roots: `client.log.fetch({ from, to,
   * store, signal, onProgress })` (history/api.ts).
   */
  readonly log: LogApi;
  readonly #worker: Worker;
  readonly #events = new TypedEmitter<LightClientEventMap>();
  readonly #pending = new Map<number, Pending>();
  readonly #subscriptions = new Set<{ range: KeyRangeOption; callback: (u: Update) => void }>();
  #nextId = 1;
  #closed: Error | undefined;
  #bridge: Promise<MainBridge | undefined>;
  readonly #ranges: KeyRangeOption[] | undefined;
  /** Local gets answered on the page until the worker's store is open (early-reads.ts). */
  readonly #early: EarlyReads;

  /** @internal use `createLightClient` */
  constructor(options: LightClientOptions) {
    performance.mark?.('proofsync:create');
    checkOptions(options);
    this.db = options.db;
    this.log = new LogApi((call, signal) => this.#call({ method: 'log', call }, signal));
    const transports = options.transports ?? ['websockets', 'webrtc-direct'];
    const usable = options.bootstrap.filter((a) => transports.includes(transportOf(a)));
    const inWorker = (a: string): boolean => transportOf(a) === 'websockets' && (options.websocketsIn ?? 'worker') === 'worker';
    const workerDials = usable.filter(inWorker);
    const mainDials = usable.filter((a) => !inWorker(a));
    const config: WorkerConfig = {
      db: options.db,
      writer: options.writer,
      dial: workerDials,
      bridged: mainDials.length > 0,
      ranges: options.ranges?.map((r) => ({ start: r.start?.slice(), end: r.end?.slice() })),
      storageName: options.storage?.name ?? `proofsync:${options.db}`,
      allowInsecureLoopback: options.allowInsecureLoopback ?? false,
      sync: { ...options.sync },
      autoStart: options.autoStart ?? true,
      minFreeBytes: options.storage?.minFreeBytes ?? 16 * 1024 * 1024,
      writeLogBytes: options.storage?.writeLogBytes,
      headsPollMs: options.headsPollMs ?? 5_000,
      live: options.live ? { ...options.live } : undefined,
      discovery: options.discovery === false ? false : { ...options.discovery },
      snapshots: options.snapshots?.map(snapshotBase),
    };
    this.#ranges = config.ranges;
    // opened before the worker is asked to: its open is then first in IndexedDB's queue
    this.#early = new EarlyReads(config.storageName);
    this.#worker = options.worker ?? takePreloadedWorker() ?? spawnWorker(`proofsync:${options.db}`);
    this.#worker.onmessage = (m: MessageEvent<FromWorker>) => this.#onMessage(m.data);
    this.#worker.onerror = (e: globalThis.ErrorEvent) => {
      e.preventDefault?.();
      this.#fail(new WorkerFailed(`the light client worker failed: ${e.message || 'it could not be loaded'}`, { message: e.message }));
    };
    if (mainDials.length === 0) {
      this.#bridge = Promise.resolve(undefined);
      this.#post({ type: 'init', config });
    } else {
      const channel = new MessageChannel();
      this.#post({ type: 'init', config, bridge: channel.port2 }, [channel.port2]);
      // libp2p loads on this thread only when some address needs it
      this.#bridge = import('./worker/bridge-main.ts').then((m) => m.MainBridge.start(channel.port1, { dial: mainDials, allowInsecureLoopback: config.allowInsecureLoopback }));
      this.#bridge.catch((err: unknown) => this.#events.emit('error', { error: err as Error, fatal: false }));
    }
    this.on('synced', (s) => {
      for (const sub of this.#subscriptions) sub.callback({ root: s.root, seq: s.seq, keys: undefined });
    });
    this.on('update', (u) => {
      for (const sub of this.#subscriptions) {
        const keys = u.keys.filter((k) => inRange(k, sub.range));
        if (keys.length > 0) sub.callback({ root: u.root, seq: u.seq, keys, deltaId: u.deltaId, logIndex: u.logIndex, hlcWallMs: u.hlcWallMs });
      }
    });
  }

  /**
   * Listens to an event; returns the function that stops listening.
   *
   * @example
   * client.on('progress', (p) => console.log(`${Math.round(p.fraction * 100)}% via ${p.peersUsed} peers`));
   * client.on('error', ({ error, fatal }) => fatal && alert(error.message));
   */
  on<K extends keyof LightClientEventMap>(type: K, listener: (detail: LightClientEventMap[K]) => void): () => void {
    return this.#events.on(type, listener);
  }

  /** Like `on`, for one event. */
  once<K extends keyof LightClientEventMap>(type: K, listener: (detail: LightClientEventMap[K]) => void): () => void {
    return this.#events.once(type, listener);
  }

  /**
   * Resolves once the local state stands at a signed root (at once if it already does).
   *
   * @example
   * const { root, seq } = await client.synced({ signal: AbortSignal.timeout(60_000) });
   */
  synced(o: CallOptions = {}): Promise<Results['synced']> {
    return this.#call({ method: 'synced' }, o.signal);
  }

  /**
   * A key's value from the verified local state (undefined: absent). Keys outside a partial
   * sync's ranges reject with `KeyOutOfScope`. With `consistency: 'local'`, a page that reloads
   * gets its first answers from the stored state without waiting for the worker to start: the
   * page reads IndexedDB itself (read-only, committed and verified state only) until the
   * worker's store is open.
   *
   * @example
   * const value = await client.get(key);
   * const cached = await client.get(key, { consistency: 'local' }); // at once after a reload
   */
  async get(key: Uint8Array, o: ReadOptions = {}): Promise<Uint8Array | undefined> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    const consistency = o.consistency ?? 'synced';
    if (consistency === 'local' && this.#early.open && !this.#closed && (!this.#ranges || this.#ranges.some((r) => inRange(key, r)))) {
      return this.#early.get(key, (signal) => this.#call({ method: 'get', key, consistency: 'local' }, signal).then((r) => r.value), o.signal);
    }
    return (await this.#call({ method: 'get', key, consistency }, o.signal)).value;
  }

  /**
   * Key-values of the local state in `[start, end]` (inclusive, either open), in key order.
   *
   * @example
   * for await (const { key, value } of client.entries(prefixRange(prefix))) show(key, value);
   */
  async *entries(
    range: KeyRangeOption = {},
    o: ReadOptions & { pageSize?: number } = {},
  ): AsyncIterable<{
    /** The key. */
    key: Uint8Array;
    /** Its verified value. */
    value: Uint8Array;
  }> {
    const pageSize = o.pageSize ?? 1024;
    let start = range.start;
    for (;;) {
      const page = await this.#call({ method: 'list', start, end: range.end, limit: pageSize, consistency: o.consistency ?? 'synced' }, o.signal);
      yield* page;
      if (page.length < pageSize) return;
      const last = page[page.length - 1].key;
      start = new Uint8Array(last.length + 1); // the next key after `last`
      start.set(last);
    }
  }

  /**
   * A single-key proof from the local trie against its current root, verified in the worker
   * before it is returned. `seq` says which signed announcement that root is (undefined while a
   * sync is in between roots, or for a partial sync's own root).
   *
   * @example
   * const { value, root, proof } = await client.prove(key);
   * verifyKeyProof(root, key, value, proof); // anyone can check it again
   */
  prove(key: Uint8Array, o: CallOptions = {}): Promise<ProveResult> {
    if (!(key instanceof Uint8Array)) return Promise.reject(new TypeError('expected Uint8Array key'));
    return this.#call({ method: 'prove', key }, o.signal);
  }

  /**
   * A key's value answered by a remote peer and proven against the newest signed root: works
   * before the local sync has finished, and for keys outside a partial sync. Rejects with
   * `InvalidRemoteProof` when every peer's proof failed, `NoPeers` when none answered.
   *
   * @example
   * const { value, seq, peer } = await client.getVerified(key, { signal: AbortSignal.timeout(5_000) });
   */
  getVerified(key: Uint8Array, o: CallOptions = {}): Promise<VerifiedResult> {
    if (!(key instanceof Uint8Array)) return Promise.reject(new TypeError('expected Uint8Array key'));
    return this.#call({ method: 'getVerified', key }, o.signal);
  }

  /**
   * Calls `callback` for every applied delta that changed a key in `range` (inclusive bounds),
   * with the delta's id, those keys and the new verified root; and with `keys` undefined when
   * a state sync (the first one, or a catch-up by change proof) moved the state to a new signed
   * root. Returns the unsubscribe function. Keys outside a partial sync's ranges never appear.
   *
   * @example
   * const off = client.subscribe(prefixRange(userPrefix), ({ keys, root }) => {
   *   if (keys) for (const k of keys) refresh(k); else refreshAll();
   * });
   */
  subscribe(range: KeyRangeOption, callback: (update: Update) => void): () => void {
    const sub = { range, callback };
    this.#subscriptions.add(sub);
    return () => void this.#subscriptions.delete(sub);
  }

  /**
   * Test hook: the worker ignores the next `count` gossip deltas, and announcements meanwhile,
   * as a relay that filters them would. Gaps are then filled over `/delta` or caught up.
   * @internal
   */
  dropGossipForTesting(count: number, o: CallOptions = {}): Promise<void> {
    return this.#call({ method: 'dropGossip', count }, o.signal);
  }

  /** Where the client stands: role, newest announcement, synced root, peers, worker heap, live mode. */
  status(o: CallOptions = {}): Promise<StatusResult> {
    return this.#call({ method: 'status' }, o.signal);
  }

  /** Stops syncing after the requests in flight; progress is kept. Reads keep working. */
  pause(o: CallOptions = {}): Promise<void> {
    return this.#call({ method: 'pause' }, o.signal);
  }

  /** Resumes syncing where it stopped (also after a fatal storage error, once space is freed). */
  resume(o: CallOptions = {}): Promise<void> {
    return this.#call({ method: 'resume' }, o.signal);
  }

  /** Deletes the local replica (its IndexedDB database) and, unless paused, syncs again. */
  clear(o: CallOptions = {}): Promise<void> {
    return this.#call({ method: 'clear' }, o.signal);
  }

  /** Stops syncing, closes connections and storage, and terminates the worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#call({ method: 'close' }, AbortSignal.timeout(10_000));
    } catch {
      // the worker is terminated below either way
    }
    await (await this.#bridge.catch(() => undefined))?.stop();
    this.#fail(new ClientClosed('the client is closed'));
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#early.close();
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
    if (error.name !== 'ClientClosed') this.#events.emit('error', { error, fatal: true });
    this.#subscriptions.clear();
  }

  #post(m: ToWorker, transfer: Transferable[] = []): void {
    this.#worker.postMessage(m, transfer);
  }

  #call<M extends Call['method']>(call: Extract<Call, { method: M }>, signal: AbortSignal | undefined): Promise<Results[M]> {
    if (this.#closed && call.method !== 'close') return Promise.reject(this.#closed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    return new Promise<Results[M]>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.#pending.delete(id)) return;
        const r = signal!.reason as { name?: string; message?: string } | undefined;
        this.#post({ type: 'abort', id, reason: { name: r?.name ?? 'AbortError', message: r?.message ?? 'aborted' } });
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v as Results[M]);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      this.#post({ type: 'call', id, call });
    });
  }

  #onMessage(m: FromWorker): void {
    if (m.type === 'stored') return this.#early.close();
    if (m.type === 'reply') {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(reviveError(m.error));
      return;
    }
    for (const e of m.events) this.#dispatch(e);
  }

  #dispatch(e: WireEvent): void {
    // rare events, as start-up marks (a performance trace shows when the client got there)
    if (e.type === 'synced' || e.type === 'live') performance.mark?.(`proofsync:${e.type === 'live' ? `live:${e.detail.mode}` : 'synced'}`);
    if (e.type === 'error') this.#events.emit('error', { error: reviveError(e.detail.error), fatal: e.detail.fatal });
    else (this.#events.emit as (t: string, d: unknown) => void)(e.type, e.detail);
  }
}

/**
 * Starts a light client: a worker that dials `bootstrap`, learns the newest head signed by
 * `writer`, and syncs a verified replica into IndexedDB, resuming where a previous page left
 * off. One tab per database syncs; other tabs read the same replica and hear its progress.
 *
 * @example
 * import { createLightClient } from 'proofsync/client';
 *
 * const client = createLightClient({
 *   db: 'inventory',
 *   writer: '12D3KooW...',
 *   bootstrap: ['/dns4/node.example.com/tcp/443/wss/p2p/12D3KooW...'],
 * });
 * client.on('progress', (p) => console.log(p.phase, p.fraction));
 * const early = await client.getVerified(key); // proven by a peer, before the sync ends
 * await client.synced();
 * const value = await client.get(key);          // from the local verified replica
 */
export function createLightClient(options: LightClientOptions): LightClient {
  return new LightClient(options);
}
