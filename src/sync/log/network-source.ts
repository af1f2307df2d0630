/**
 * The log sync's {@link LogSource} over the network (docs/mmr.md#syncing-a-log: each invalid
 * response is reported so the sending peer is penalised): `/proofsync/1/log` against
 * a set of peers. Each batch goes to the peer with the smallest expected finish time
 * (`PeerBook`, shared with the state sync); a peer that fails (timeout, refusal, a log shorter
 * than the requested size) is backed off and the batch is asked of another one; a peer whose
 * answer the engine rejects (feedback `false`) is penalised and banned after `banAfter` strikes.
 *
 * A peer is a {@link LogPeer}: one call that moves a `LogRequest` and returns the decoded batch.
 * Two adapters: {@link dialerLogPeer} (a libp2p node in Node: `fetchLog` of the protocol client)
 * and {@link requesterLogPeer} (the browser worker's `Requester`, which reaches a peer whose
 * connection lives in the worker or on the main thread). Nothing here verifies: the engine
 * checks every batch against the signed root and answers through `feedback`.
 */
import { fetchLog, remoteError, type FetchedLog, type FetchLogRequest, type Peer } from '../../protocol/client.ts';
import { LOG_PROTOCOL } from '../../protocol/ids.ts';
import { decodeLogResponse, encodeLogRequest, MAX_BATCH_RESPONSE_BYTES } from '../../protocol/messages.ts';
import type { Dialer } from '../../protocol/stream.ts';
import { delay } from '../abort.ts';
import { NoPeers } from '../errors.ts';
import { isAnswerFault, isNotServed, isTimeout } from '../faults.ts';
import { PeerBook, type PeerStats } from '../peers.ts';
import type { LogFetchRequest, LogFetchResponse, LogSource } from './source.ts';

/** One peer that serves `/proofsync/1/log`. */
export interface LogPeer {
  readonly id: string;
  fetch(req: FetchLogRequest, o: { timeoutMs: number; signal?: AbortSignal }): Promise<FetchedLog>;
}

/** A request/response exchange as the worker has it (client/worker/peer-calls.ts `Requester`). */
export type LogRequester = (
  protocol: string,
  body: Uint8Array,
  o: { maxResponseBytes: number; timeoutMs: number; signal?: AbortSignal },
) => Promise<Uint8Array>;

/**
 * A peer reached through a libp2p node (Node: a replica, a tool).
 *
 * @example
 * const peer = dialerLogPeer(libp2p, peerIdFromString(id));
 */
export function dialerLogPeer(node: Dialer, peer: Peer, id: string = String(peer)): LogPeer {
  return { id, fetch: (req, o) => fetchLog(node, peer, req, o) };
}

/**
 * A peer reached through a `Requester` (the browser worker). The batch is decoded with the
 * protocol's bounds; its count is left to the engine, which penalises an empty or oversized one.
 */
export function requesterLogPeer(id: string, request: LogRequester): LogPeer {
  return {
    id,
    async fetch(req, o) {
      const body = encodeLogRequest({ start: req.start, end: req.end, logSize: req.logSize, pinned: req.pinned ?? false });
      const res = decodeLogResponse(await request(LOG_PROTOCOL, body, { maxResponseBytes: MAX_BATCH_RESPONSE_BYTES, ...o }));
      if (res.type === 'error') throw remoteError(res);
      return { operations: res.operations, proof: { digests: res.proof }, pinned: res.pinned };
    },
  };
}

export interface NetworkLogSourceOptions {
  /** Deadline per request, dial included (default 30,000 ms). */
  timeoutMs?: number;
  /** Invalid answers before a peer is banned for this source (default 3). */
  banAfter?: number;
  /** Peers tried per batch before the failure goes back to the engine (default: 2 × peers, at least 3). */
  attemptsPerBatch?: number;
  /** Called when a peer's answer was invalid; `banned` once it reached `banAfter`. */
  onPenalise?: (peer: string, banned: boolean, reason: unknown) => void;
  /** Milliseconds clock (injected in tests). */
  now?: () => number;
}

/**
 * A {@link LogSource} that spreads batches over `peers`, retries a failed batch on another
 * peer, and penalises the peer behind every answer the engine rejects.
 *
 * @example
 * const source = new NetworkLogSource([dialerLogPeer(node, a), dialerLogPeer(node, b)]);
 * await runLogSync({ source, target: { root: ann.logRoot, lower: 0, upper: ann.logSize } });
 * source.stats(); // per peer: successes, failures, invalid answers, banned
 */
export class NetworkLogSource implements LogSource {
  readonly #peers = new Map<string, LogPeer>();
  readonly #book: PeerBook;
  readonly #timeoutMs: number;
  readonly #attempts: number | undefined;
  readonly #onPenalise: NetworkLogSourceOptions['onPenalise'];
  readonly #now: () => number;
  /** Bytes of operations and digests received (answers that arrived, valid or not). */
  bytesReceived = 0;

  constructor(peers: Iterable<LogPeer>, o: NetworkLogSourceOptions = {}) {
    this.#book = new PeerBook([], { banAfter: o.banAfter });
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#attempts = o.attemptsPerBatch;
    this.#onPenalise = o.onPenalise;
    this.#now = o.now ?? (() => performance.now());
    for (const p of peers) this.addPeer(p);
  }

  /** A peer that connected later; a known id is replaced (its score is kept). */
  addPeer(peer: LogPeer): void {
    this.#peers.set(peer.id, peer);
    this.#book.add(peer.id);
  }

  stats(): PeerStats[] {
    return this.#book.all();
  }

  async fetch(request: LogFetchRequest): Promise<LogFetchResponse> {
    const { start, maxOps, leafCount, withPinned, signal } = request;
    const req: FetchLogRequest = { start, end: Math.min(start + maxOps, leafCount), logSize: leafCount, pinned: withPinned };
    const attempts = this.#attempts ?? Math.max(3, 2 * this.#peers.size);
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      signal?.throwIfAborted();
      const id = this.#book.choose(this.#now());
      if (id === undefined) {
        const at = this.#book.nextAvailable(this.#now());
        if (at === undefined) throw new NoPeers(`no peer left to serve the log (${this.#peers.size} known, ${this.#peers.size - this.#book.active} banned or not serving it)`, undefined, { cause: lastError });
        await delay(Math.max(0, at - this.#now()), signal);
        attempt--; // waiting for a backoff is not an attempt
        continue;
      }
      const peer = this.#peers.get(id)!;
      const t0 = this.#now();
      this.#book.started(id, t0);
      let res: FetchedLog;
      try {
        res = await peer.fetch(req, { timeoutMs: this.#timeoutMs, signal });
      } catch (err) {
        if (signal?.aborted) {
          this.#book.released(id, t0);
          throw signal.reason;
        }
        lastError = err;
        // a malformed or oversized answer (a count outside [1, end - start], a decode error) is
        // an invalid answer, not a failure to answer
        if (isAnswerFault(err)) this.#penalise(id, err, t0);
        // a peer without the log protocol (gossip only) is not asked again, as in the state sync
        else if (isNotServed(err)) this.#book.retire(id, t0);
        else this.#book.failed(id, this.#now(), this.#now() - t0, { timedOut: isTimeout(err), startedAt: t0 });
        continue;
      }
      let bytes = 0;
      for (const op of res.operations) bytes += op.length;
      bytes += 32 * (res.proof.digests.length + res.pinned.length);
      this.bytesReceived += bytes;
      // The timing sample is taken on arrival, so a response the engine drops (cancelled, root
      // evicted) does not leave the peer counted as busy.
      this.#book.succeeded(id, this.#now() - t0, bytes, t0);
      let judged = false;
      return {
        ops: res.operations,
        proof: res.proof,
        pinned: withPinned ? res.pinned : undefined,
        feedback: (valid) => {
          if (judged || valid) return;
          judged = true;
          this.#penalise(id, new Error('the engine rejected the batch'));
        },
      };
    }
    throw lastError ?? new NoPeers('no peer answered');
  }

  #penalise(id: string, reason: unknown, startedAt?: number): void {
    if (startedAt === undefined) this.#book.started(id); // `penalise` ends a request: balance the one already ended
    const banned = this.#book.penalise(id, this.#now(), startedAt);
    this.#onPenalise?.(id, banned, reason);
  }
}
