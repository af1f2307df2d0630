/**
 * The client's side of peer discovery (docs/sync.md#discovery): it asks each full node it
 * connects to for the other full nodes of the database (`/proofsync/1/peers`), dials some of
 * them, and every node that connects becomes a source of the running sync, which spreads its
 * requests by each node's measured throughput (src/sync/peers.ts). The bootstrap node is then one
 * source among several: when it goes away, the sync goes on with the others.
 *
 * The answer is untrusted. The decoder bounds it (peers-codec.ts); here an entry is dropped
 * unless its id parses, is neither this client nor a peer already known, and one of its
 * addresses ends in `/p2p/<that id>` and passes the dial policy (`allowed`: the browser's gater,
 * no private or plain `ws://` addresses unless loopback was allowed, and only transports this
 * thread can dial). At most `maxPeers` discovered nodes are connected at once and at most
 * `maxDials` dials are ever made from answers, `maxConcurrentDials` at a time, each on at most
 * `MAX_ADDRS_TRIED` addresses: a node that lies wastes at most `maxDials` dials and never
 * points the client at anything it could not have been told to dial by its own options.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { remoteError } from '../protocol/client.ts';
import { PEERS_PROTOCOL } from '../protocol/ids.ts';
import { decodePeersResponse, encodePeersRequest, MAX_PEERS_RESPONSE_BYTES, type PeerInfo } from '../protocol/peers-codec.ts';
import type { RemotePeer } from './worker/peer-calls.ts';

/**
 * How far the client follows discovered full nodes. `LightClientOptions.discovery` takes it;
 * `false` there turns discovery off.
 *
 * @example
 * const client = createLightClient({ db, writer, bootstrap: [oneNode], discovery: { maxPeers: 4 } });
 */
export interface DiscoveryOptions {
  /** Discovered full nodes connected at once (default 8). */
  maxPeers?: number;
  /** Dials ever made to discovered addresses, failed ones included (default 32). */
  maxDials?: number;
}

/** Addresses tried per discovered node: its first two the policy allows. */
export const MAX_ADDRS_TRIED = 2;

export interface DiscoveryDeps {
  /** This client's peer id (never dialed). */
  self: string;
  /** Whether `id` is connected or being dialed by other means (a bootstrap address). */
  known(id: string): boolean;
  /** The dial policy: whether this client may dial `ma` (gater and transports). */
  allowed(ma: Multiaddr): boolean;
  /** Dials `ma` (of peer `id`); resolves true once it is connected and handed to the sync. */
  dial(ma: Multiaddr, id: string): Promise<boolean>;
  /** A node's answer could not be used (for `peer` events). */
  onError?(from: string, err: unknown): void;
}

/** One usable entry of an answer: the peer and the addresses the policy lets us dial. */
export interface DialTarget {
  id: string;
  addrs: Multiaddr[];
}

/**
 * The entries of an answer from `from` that this client may dial, in the answer's order: the
 * checks of this file's header, with at most `MAX_ADDRS_TRIED` addresses each.
 */
export function dialTargets(peers: readonly PeerInfo[], from: string, deps: Pick<DiscoveryDeps, 'self' | 'known' | 'allowed'>): DialTarget[] {
  const out: DialTarget[] = [];
  const seen = new Set<string>();
  for (const p of peers) {
    let id: string;
    try {
      id = peerIdFromString(p.id).toString();
    } catch {
      continue;
    }
    if (id === deps.self || id === from || seen.has(id) || deps.known(id)) continue;
    const addrs: Multiaddr[] = [];
    for (const text of p.addrs) {
      if (addrs.length >= MAX_ADDRS_TRIED) break;
      let ma: Multiaddr;
      try {
        ma = multiaddr(text);
      } catch {
        continue;
      }
      const ids = ma.getComponents().filter((c) => c.name === 'p2p');
      if (ids.length !== 1 || ids[0].value !== id) continue;
      if (deps.allowed(ma)) addrs.push(ma);
    }
    if (addrs.length === 0) continue;
    seen.add(id);
    out.push({ id, addrs });
  }
  return out;
}

export class PeerDiscovery {
  readonly #deps: DiscoveryDeps;
  readonly #maxPeers: number;
  #dialsLeft: number;
  readonly #maxConcurrent: number;
  /** Discovered peers connected now, or being dialed. */
  readonly #held = new Set<string>();
  #dialing = 0;
  readonly #queue: DialTarget[] = [];
  readonly #asked = new Set<string>();

  constructor(options: DiscoveryOptions & { maxConcurrentDials?: number }, deps: DiscoveryDeps) {
    this.#deps = deps;
    this.#maxPeers = options.maxPeers ?? 8;
    this.#dialsLeft = options.maxDials ?? 32;
    this.#maxConcurrent = options.maxConcurrentDials ?? 4;
  }

  /** Dials left in the budget. */
  get dialsLeft(): number {
    return this.#dialsLeft;
  }

  /** Discovered peers connected or being dialed. */
  get held(): number {
    return this.#held.size;
  }

  /** Asks `peer` once for the full nodes it knows, and dials what the answer allows. Never throws. */
  async ask(peer: Pick<RemotePeer, 'id' | 'request'>, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.#asked.has(peer.id)) return;
    this.#asked.add(peer.id);
    try {
      const bytes = await peer.request(PEERS_PROTOCOL, encodePeersRequest({}), { maxResponseBytes: MAX_PEERS_RESPONSE_BYTES, timeoutMs: o.timeoutMs ?? 10_000, signal: o.signal });
      const res = decodePeersResponse(bytes);
      if (res.type === 'error') throw remoteError(res);
      this.offer(peer.id, res.peers);
    } catch (err) {
      // a node that does not serve discovery (an older one) is still a source
      this.#deps.onError?.(peer.id, err);
    }
  }

  /** Takes an answer from `from`: queues its dialable entries and starts dials within the bounds. */
  offer(from: string, peers: readonly PeerInfo[]): void {
    const queued = new Set(this.#queue.map((t) => t.id));
    for (const t of dialTargets(peers, from, { ...this.#deps, known: (id) => this.#deps.known(id) || this.#held.has(id) || queued.has(id) })) {
      this.#queue.push(t);
      queued.add(t.id);
    }
    // the queue never holds more than one budget of dials
    if (this.#queue.length > this.#dialsLeft) this.#queue.length = this.#dialsLeft;
    this.#pump();
  }

  /** A discovered peer disconnected: its slot is free again (it may be discovered anew). */
  disconnected(id: string): void {
    if (this.#held.delete(id)) this.#pump();
  }

  #pump(): void {
    while (this.#queue.length && this.#dialing < this.#maxConcurrent && this.#held.size < this.#maxPeers && this.#dialsLeft > 0) {
      const t = this.#queue.shift()!;
      if (this.#deps.known(t.id) || this.#held.has(t.id)) continue;
      this.#dialsLeft--;
      this.#dialing++;
      this.#held.add(t.id);
      void this.#dial(t).then((ok) => {
        this.#dialing--;
        if (!ok) this.#held.delete(t.id);
        this.#pump();
      });
    }
  }

  async #dial(t: DialTarget): Promise<boolean> {
    for (const ma of t.addrs) {
      try {
        if (await this.#deps.dial(ma, t.id)) return true;
      } catch (err) {
        this.#deps.onError?.(t.id, err);
      }
    }
    return false;
  }
}
