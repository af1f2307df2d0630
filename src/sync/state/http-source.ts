/**
 * Static proofs (docs/static-proofs.md): a `StateSource` over plain HTTP GETs of files a
 * snapshot wrote (`proofsync snapshot`, node/snapshot.ts), so any static server or CDN serves
 * the state at a checkpoint root. Layout under a base URL:
 *
 * - `<base>/announcement`: the writer's signed announcement naming the checkpoint;
 * - `<base>/<rootHex>/<requestKey>`: the answer to one request of the canonical plan
 *   (plan.ts), exactly the bytes a node sends on `/proofsync/1/range`.
 *
 * A mirror is as untrusted as a peer: its bytes are decoded with the wire decoder's limits and
 * the sync verifies every answer, so a wrong file is a rejected proof (the mirror is penalised
 * and the work goes to another source). A request the mirror has no file for (a 404, a root it
 * does not hold, any change proof) is `NotServedStatically`: the sync retires the mirror
 * (faults.ts `isNotServed`) without blame. Bodies are read with a byte bound, never whole.
 */
import { errorClass, MessageTooLarge, RequestError, UnexpectedResponse } from '../../core/errors.ts';
import { concatBytes, toHex } from '../../core/bytes.ts';
import type { ChangeProofRequest, RangeProofRequest } from '../../core/types.ts';
import { decodeRangeProofResponse, DEFAULT_DECODE_LIMITS } from '../../protocol/codec.ts';
import { MAX_HEADS_RESPONSE_BYTES } from '../../protocol/messages.ts';
import { requestKey } from './plan.ts';
import { snapshotBase } from './snapshot-url.ts';
import type { StateResponse, StateSource } from './source.ts';

/** A static mirror has no file for this request (404/410, or a change proof): it is retired, not blamed. */
export const NotServedStatically = errorClass<RequestError, { url: string; status?: number }>(RequestError, 'NotServedStatically');
/** A static mirror answered with an HTTP status other than 200 and 404/410 (a 5xx, a 403, ...): no answer, backed off. */
export const MirrorHttpError = errorClass<RequestError, { url: string; status: number }>(RequestError, 'MirrorHttpError');

export { snapshotBase };

/** The file name of the announcement under a snapshot's base URL. */
export const ANNOUNCEMENT_FILE = 'announcement';

export interface HttpSourceOptions {
  /** Deadline per request, headers and body (default 30,000 ms). */
  timeoutMs?: number;
  /** Largest body read (default the wire decoder's 2 MiB: the largest answer a node sends). */
  maxResponseBytes?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** The source's id in the sync's peer book (default `static:<base>`). */
  id?: string;
}

/** The URL of the answer to `request` under `base` (the static layout). */
export function staticProofUrl(base: string, request: RangeProofRequest): string {
  return `${snapshotBase(base)}/${toHex(request.rootHash)}/${requestKey(request)}`;
}

/**
 * GETs `url` and reads at most `maxBytes` of its body: a declared `Content-Length` above it
 * fails before reading, a body that grows past it fails as soon as it does (`MessageTooLarge`).
 * 404/410 → `NotServedStatically`; another non-200 → `MirrorHttpError`. A timeout rejects with
 * a `TimeoutError` DOMException, the signal's abort with its reason.
 */
export async function fetchBounded(url: string, o: { maxBytes: number; timeoutMs: number; signal?: AbortSignal; fetch?: typeof fetch }): Promise<Uint8Array> {
  o.signal?.throwIfAborted();
  // `mine` ends the exchange when the body is not read to its end (a refused answer): the
  // connection is dropped rather than drained
  const mine = new AbortController();
  const signals = [AbortSignal.timeout(o.timeoutMs), mine.signal];
  if (o.signal) signals.push(o.signal);
  const signal = AbortSignal.any(signals);
  const res = await (o.fetch ?? fetch)(url, { signal, redirect: 'follow', credentials: 'omit' });
  const body = res.body;
  let complete = false;
  try {
    if (res.status === 404 || res.status === 410) throw new NotServedStatically(`${url}: not on the mirror (HTTP ${res.status})`, { url, status: res.status });
    if (res.status !== 200) throw new MirrorHttpError(`${url}: HTTP ${res.status}`, { url, status: res.status });
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > o.maxBytes) throw new MessageTooLarge(`${url}: Content-Length ${declared} exceeds ${o.maxBytes} bytes`, { url, limit: o.maxBytes, declared });
    if (!body) {
      complete = true;
      return new Uint8Array(0);
    }
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > o.maxBytes) throw new MessageTooLarge(`${url}: body exceeds ${o.maxBytes} bytes`, { url, limit: o.maxBytes });
      chunks.push(value);
    }
    complete = true;
    return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
  } finally {
    if (!complete) mine.abort(new DOMException('answer refused', 'AbortError'));
  }
}

/**
 * A state source over a static mirror at `base` (see the module header).
 *
 * @example
 * const mirror = httpStateSource('https://cdn.example.com/mydb');
 * await syncState({ store, sources: [mirror, ...peers], target: checkpointRoot });
 */
export function httpStateSource(base: string, o: HttpSourceOptions = {}): StateSource {
  const root = snapshotBase(base);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxBytes = o.maxResponseBytes ?? DEFAULT_DECODE_LIMITS.maxBytes;
  return {
    id: o.id ?? `static:${root}`,
    async rangeProof(request: RangeProofRequest, { signal }: { signal?: AbortSignal }): Promise<StateResponse> {
      const url = `${root}/${toHex(request.rootHash)}/${requestKey(request)}`;
      const bytes = await fetchBounded(url, { maxBytes, timeoutMs, signal, fetch: o.fetch });
      const res = decodeRangeProofResponse(bytes, { maxBytes, maxKeyValues: Math.min(Math.max(request.keyLimit, 1), DEFAULT_DECODE_LIMITS.maxKeyValues) }, { views: true });
      // a snapshot holds answers only: an error envelope in a file is a wrong file
      if (res.type === 'error') throw new UnexpectedResponse(`${url}: the file holds an error (${res.name}), not a proof`, { url });
      return { type: 'range', proof: res.proof };
    },
    async changeProof(request: ChangeProofRequest): Promise<StateResponse> {
      throw new NotServedStatically(`${root}: a static mirror serves range proofs at its checkpoint only, not change proofs`, { url: root });
    },
  };
}

/**
 * The announcement bytes a mirror publishes at `<base>/announcement` (at most 80 KiB, as
 * `/heads`). Not verified here: decode it and verify it against the writer's key like any
 * announcement before trusting the checkpoint it names.
 *
 * @example
 * const ann = await verifyAnnouncementAsync(decodeAnnouncement(await fetchSnapshotAnnouncement(base)), writerKey);
 */
export async function fetchSnapshotAnnouncement(base: string, o: { timeoutMs?: number; signal?: AbortSignal; fetch?: typeof fetch } = {}): Promise<Uint8Array> {
  const url = `${snapshotBase(base)}/${ANNOUNCEMENT_FILE}`;
  return fetchBounded(url, { maxBytes: MAX_HEADS_RESPONSE_BYTES, timeoutMs: o.timeoutMs ?? 10_000, signal: o.signal, fetch: o.fetch });
}
