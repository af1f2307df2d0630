/**
 * The page's reads, answered in the worker (engine-host.ts): `get` and `list` from the local
 * state, `prove` with a proof from the local trie, and `getVerified` with a proof asked of a
 * peer against the newest signed root. Every answer is verified before it leaves the worker.
 */
import type { VerifiedAnnouncement } from '../../core/announcement.ts';
import { compareBytes, equalBytes, inKeyRange } from '../../core/bytes.ts';
import { ProofError } from '../../core/errors.ts';
import { keyProof, verifyKeyProof } from '../../core/proof.ts';
import { MerkleTrie } from '../../core/trie.ts';
import { valueKey } from '../../core/node-record.ts';
import { EMPTY_ROOT } from '../../core/types.ts';
import { InvalidRemoteProof, KeyOutOfScope, NoPeers, ProofUnavailable } from '../errors.ts';
import type { PeerEvent, SyncedEvent } from '../events.ts';
import type { LiveHost } from '../live/host.ts';
import { singleKeyRequest, verifySingleKey } from '../single-key.ts';
import { isAnswerFault } from '../../sync/faults.ts';
import type { LocalStore } from './host-deps.ts';
import { delay } from '../../sync/abort.ts';
import { requestRangeProof, type RemotePeer } from './peer-calls.ts';
import type { GetResult, KeyRangeOption, ProveResult, VerifiedResult } from './worker-messages.ts';
import { isError, isLoadRefusal } from './sync-retry.ts';

const VERIFIED_TIMEOUT_MS = 10_000;

/** What the reads need of the host. */
export interface HostReadDeps {
  /** The ranges this client syncs (undefined: all keys). */
  ranges: KeyRangeOption[] | undefined;
  synced(signal?: AbortSignal): Promise<SyncedEvent>;
  store(signal?: AbortSignal): Promise<LocalStore>;
  live(): LiveHost | undefined;
  announcement(signal?: AbortSignal): Promise<VerifiedAnnouncement>;
  peers(): RemotePeer[];
  seqOf(root: Uint8Array): number | undefined;
  /** The host's one builder of `peer` events. */
  peerEvent(peer: string, status: PeerEvent['status'], reason: string, known: RemotePeer): void;
}

export class HostReads {
  readonly #deps: HostReadDeps;
  /** `getVerified` starts with a different peer each time, to spread the questions. */
  #verifiedRound = 0;

  /** Throws `RangeError` on a range whose start is after its end. */
  constructor(deps: HostReadDeps) {
    for (const r of deps.ranges ?? []) {
      if (r.start && r.end && compareBytes(r.start, r.end) > 0) throw new RangeError('range start is after its end');
    }
    this.#deps = deps;
  }

  #inScope(key: Uint8Array): boolean {
    const ranges = this.#deps.ranges;
    if (!ranges) return true;
    return ranges.some((r) => inKeyRange(key, r.start, r.end));
  }

  async get(key: Uint8Array, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<GetResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    if (!this.#inScope(key)) throw new KeyOutOfScope('the key lies outside the ranges this client syncs; use getVerified', { key });
    if (consistency === 'synced') await this.#deps.synced(signal);
    const store = await this.#deps.store(signal);
    // live: the applied state, which may be ahead of the store (the follower's journal)
    const live = this.#deps.live();
    const value = live ? await live.read(key) : null;
    return { key, value: value !== null ? value : await store.get(valueKey(key)) };
  }

  async list(start: Uint8Array | undefined, end: Uint8Array | undefined, limit: number, consistency: 'synced' | 'local', signal?: AbortSignal): Promise<{ key: Uint8Array; value: Uint8Array }[]> {
    if (consistency === 'synced') await this.#deps.synced(signal);
    const store = await this.#deps.store(signal);
    await this.#deps.live()?.stored();
    const trie = await MerkleTrie.open(store);
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for await (const kv of trie.entries(start, end, limit)) {
      signal?.throwIfAborted();
      out.push({ key: kv.key, value: kv.value });
    }
    return out;
  }

  /** A single-key proof from the local trie, verified before it is returned. */
  async prove(key: Uint8Array, signal?: AbortSignal): Promise<ProveResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    for (let attempt = 0; attempt < 3; attempt++) {
      signal?.throwIfAborted();
      const store = await this.#deps.store(signal);
      await this.#deps.live()?.stored();
      const trie = await MerkleTrie.open(store);
      if (equalBytes(trie.root, EMPTY_ROOT)) throw new ProofUnavailable('the local state is empty: nothing is synced yet');
      const { value, proof } = await keyProof(trie.view(), key);
      try {
        // a commit between reading the root and the nodes gives a proof that does not verify
        verifyKeyProof(trie.root, key, value, proof);
      } catch (err) {
        // `instanceof`: any of the proof rules' classes (a family, no one name)
        if (err instanceof ProofError) continue;
        throw err;
      }
      return { key, value, root: trie.root, proof, seq: this.#deps.seqOf(trie.root) };
    }
    throw new ProofUnavailable('the local state changed under the proof three times; try again');
  }

  /** The key's value proven by a peer against the newest signed root. */
  async getVerified(key: Uint8Array, signal?: AbortSignal): Promise<VerifiedResult> {
    if (!(key instanceof Uint8Array)) throw new TypeError('expected Uint8Array key');
    const ann = await this.#deps.announcement(signal);
    const root = ann.stateRoot;
    const request = singleKeyRequest(root, key);
    const peers = this.#deps.peers();
    if (peers.length === 0) throw new NoPeers('no connected peer to ask');
    // spread the questions: start with a different peer each time
    const first = this.#verifiedRound++ % peers.length;
    const rejected: string[] = [];
    const failed: string[] = [];
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[(first + i) % peers.length];
      let proof;
      try {
        proof = await this.#askKey(peer, request, signal);
      } catch (err) {
        signal?.throwIfAborted();
        // a malformed or oversized answer is an invalid one, as a proof that does not verify
        if (isAnswerFault(err)) {
          rejected.push(`${peer.id}: ${err.name}`);
          this.#deps.peerEvent(peer.id, 'penalised', `single-key proof: ${err.name}: ${err.message}`, peer);
        } else if (!isError(err, 'RootNotFound')) failed.push(`${peer.id}: ${(err as Error).name}`);
        continue;
      }
      try {
        return { key, value: verifySingleKey(root, key, proof), root, seq: ann.seq, peer: peer.id };
      } catch (err) {
        if (!(err instanceof ProofError)) throw err;
        rejected.push(`${peer.id}: ${err.name}`);
        this.#deps.peerEvent(peer.id, 'penalised', `single-key proof: ${err.name}: ${err.message}`, peer);
      }
    }
    if (rejected.length) throw new InvalidRemoteProof(`no valid proof of the key at seq ${ann.seq}: ${rejected.join(', ')}`, { rejected: rejected.length });
    throw new NoPeers(`no peer answered for the key at seq ${ann.seq}: ${failed.join(', ') || 'none has that root'}`);
  }

  /** One peer's answer; a peer that refuses for load (its per-peer limits) is asked again shortly. */
  async #askKey(peer: RemotePeer, request: ReturnType<typeof singleKeyRequest>, signal: AbortSignal | undefined) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await requestRangeProof(peer, request, { timeoutMs: VERIFIED_TIMEOUT_MS, signal });
      } catch (err) {
        if (attempt >= 4 || !isLoadRefusal(err)) throw err;
        await delay(25 * 2 ** attempt, signal);
      }
    }
  }
}
