/**
 * In-memory state sources: `MemoryStateSource`, an honest server over a `MerkleDatabase`
 * (docs/proofs.md#serving: key limit clamped to 2048, range proof at the end root when the start
 * root is outside the history window), and scripted doubles for tests (commonware's
 * `SequenceSource`/`FailSource`): a source that rewrites answers, one that fails on a schedule,
 * and one that counts what it served.
 */
import { InvalidRequest } from '../../core/errors.ts';
import type { MerkleDatabase } from '../../core/database.ts';
import type { ChangeProofRequest, RangeProofRequest } from '../../core/types.ts';
import { estimateResponseSize, type StateResponse, type StateSource } from './source.ts';

const MAX_KEY_LIMIT = 2048;

function checkLimit(keyLimit: number): number {
  if (!Number.isSafeInteger(keyLimit) || keyLimit < 1) throw new InvalidRequest(`key limit must be a positive integer, got ${keyLimit}`);
  return Math.min(keyLimit, MAX_KEY_LIMIT);
}

/**
 * One at a time: `MerkleDatabase` reads are not isolated from a concurrent `commit` (a proof
 * built while the writer commits can mix both states), so a writer and the sources serving
 * from the same database share one of these.
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(f: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(f, f);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** An honest source answering from `db` (at any root in its history window). */
export class MemoryStateSource implements StateSource {
  readonly id: string;
  readonly db: MerkleDatabase;
  readonly #lock: Mutex | undefined;

  /** With `lock`, every answer is built under it (share it with the writer). */
  constructor(id: string, db: MerkleDatabase, options: { lock?: Mutex } = {}) {
    this.id = id;
    this.db = db;
    this.#lock = options.lock;
  }

  #locked<T>(f: () => Promise<T>): Promise<T> {
    return this.#lock ? this.#lock.run(f) : f();
  }

  async rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    options.signal?.throwIfAborted();
    const keyLimit = checkLimit(request.keyLimit);
    const proof = await this.#locked(() => this.db.rangeProof(request.rootHash, { start: request.startKey, end: request.endKey, keyLimit }));
    return { type: 'range', proof };
  }

  async changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    options.signal?.throwIfAborted();
    const keyLimit = checkLimit(request.keyLimit);
    return this.#locked(() => this.db.changeProof(request.startRootHash, request.endRootHash, { start: request.startKey, end: request.endKey, keyLimit }));
  }
}

/** Answers through `inner` after `delayMs` of the injected clock (a peer's latency). */
export class DelayedSource implements StateSource {
  readonly id: string;
  readonly inner: StateSource;
  readonly delayMs: number;
  readonly clock: { sleep(ms: number, signal?: AbortSignal): Promise<void> };
  calls = 0;

  constructor(inner: StateSource, delayMs: number, clock: { sleep(ms: number, signal?: AbortSignal): Promise<void> }, id = inner.id) {
    this.id = id;
    this.inner = inner;
    this.delayMs = delayMs;
    this.clock = clock;
  }

  async rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    this.calls++;
    await this.clock.sleep(this.delayMs, options.signal);
    return this.inner.rangeProof(request, options);
  }

  async changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    this.calls++;
    await this.clock.sleep(this.delayMs, options.signal);
    return this.inner.changeProof(request, options);
  }
}

export type RequestKind = 'range' | 'change';

/** What a scripted source may do to call number `call` (0-based, counted over both kinds). */
export type Tamper = (response: StateResponse, call: number, kind: RequestKind) => StateResponse;

/** Wraps `inner`, rewriting its answers with `tamper` (the answer is deep-copied first). */
export class TamperingSource implements StateSource {
  readonly id: string;
  readonly inner: StateSource;
  readonly tamper: Tamper;
  calls = 0;

  constructor(id: string, inner: StateSource, tamper: Tamper) {
    this.id = id;
    this.inner = inner;
    this.tamper = tamper;
  }

  async rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    const call = this.calls++;
    return this.tamper(cloneResponse(await this.inner.rangeProof(request, options)), call, 'range');
  }

  async changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    const call = this.calls++;
    return this.tamper(cloneResponse(await this.inner.changeProof(request, options)), call, 'change');
  }
}

/** Fails call number `call` when `fails(call)`; otherwise passes through to `inner`. */
export class FlakySource implements StateSource {
  readonly id: string;
  readonly inner: StateSource;
  readonly fails: (call: number) => boolean;
  calls = 0;
  failed = 0;

  constructor(id: string, inner: StateSource, fails: (call: number) => boolean) {
    this.id = id;
    this.inner = inner;
    this.fails = fails;
  }

  async rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    if (this.fails(this.calls++)) {
      this.failed++;
      throw new Error(`${this.id}: scripted failure`);
    }
    return this.inner.rangeProof(request, options);
  }

  async changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    if (this.fails(this.calls++)) {
      this.failed++;
      throw new Error(`${this.id}: scripted failure`);
    }
    return this.inner.changeProof(request, options);
  }
}

/**
 * Hands out the answers of `inner` to every request made in one turn of the event loop
 * together, in call order, once that turn's work is done (`setImmediate`): answers that arrive
 * while the sync is still busy with an earlier one, as from a fast network to a client bound by
 * its CPU. `releases` counts the handovers.
 */
export class GatedSource implements StateSource {
  readonly id: string;
  readonly inner: StateSource;
  releases = 0;
  #held: (() => void)[] = [];

  constructor(inner: StateSource, id = inner.id) {
    this.id = id;
    this.inner = inner;
  }

  async #gate(answer: Promise<StateResponse>): Promise<StateResponse> {
    const r = await answer;
    await new Promise<void>((resolve) => {
      if (this.#held.length === 0) {
        setImmediate(() => {
          const held = this.#held;
          this.#held = [];
          this.releases++;
          for (const release of held) release();
        });
      }
      this.#held.push(resolve);
    });
    return r;
  }

  rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    return this.#gate(this.inner.rangeProof(request, options));
  }

  changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    return this.#gate(this.inner.changeProof(request, options));
  }
}

/** Counts requests, answer kinds, key-values and estimated bytes served by `inner`. */
export class CountingSource implements StateSource {
  readonly id: string;
  readonly inner: StateSource;
  rangeRequests = 0;
  changeRequests = 0;
  rangeAnswers = 0;
  changeAnswers = 0;
  keyValues = 0;
  bytes = 0;

  constructor(inner: StateSource, id = inner.id) {
    this.id = id;
    this.inner = inner;
  }

  #count(r: StateResponse): StateResponse {
    if (r.type === 'range') {
      this.rangeAnswers++;
      this.keyValues += r.proof.keyValues.length;
    } else {
      this.changeAnswers++;
      this.keyValues += r.proof.keyChanges.length;
    }
    this.bytes += estimateResponseSize(r);
    return r;
  }

  async rangeProof(request: RangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    this.rangeRequests++;
    return this.#count(await this.inner.rangeProof(request, options));
  }

  async changeProof(request: ChangeProofRequest, options: { signal?: AbortSignal } = {}): Promise<StateResponse> {
    this.changeRequests++;
    return this.#count(await this.inner.changeProof(request, options));
  }
}

/** A deep copy, so tampering never touches the honest server's objects. */
export function cloneResponse(r: StateResponse): StateResponse {
  const nodes = (ns: { key: Uint8Array; valueOrHash: Uint8Array | undefined; children: Map<number, Uint8Array> }[]) =>
    ns.map((n) => ({ key: n.key.slice(), valueOrHash: n.valueOrHash?.slice(), children: new Map([...n.children].map(([i, id]) => [i, id.slice()])) }));
  if (r.type === 'range') {
    return {
      type: 'range',
      proof: {
        startProof: nodes(r.proof.startProof),
        endProof: nodes(r.proof.endProof),
        keyValues: r.proof.keyValues.map((kv) => ({ key: kv.key.slice(), value: kv.value.slice() })),
      },
    };
  }
  return {
    type: 'change',
    proof: {
      startProof: nodes(r.proof.startProof),
      endProof: nodes(r.proof.endProof),
      keyChanges: r.proof.keyChanges.map((c) => ({ key: c.key.slice(), value: c.value?.slice() })),
    },
  };
}
