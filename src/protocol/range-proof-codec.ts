/**
 * Codecs of `/proofsync/1/range` (docs/wire.md#proof-messages): the range proof, its request and
 * its response envelope, with the size functions the server's halving rule uses
 * (docs/proofs.md#serving). Decoding rules and errors: codec.ts.
 */
import { MissingField } from '../core/errors.ts';
import type { KeyValue, RangeProof, RangeProofRequest } from '../core/types.ts';
import { Reader, WIRE_LEN, WIRE_VARINT, Writer, bytesFieldSize, checkCount, fieldOf, lenFieldSize, once, uintFieldSize } from './pb.ts';
import {
  DEFAULT_DECODE_LIMITS,
  MAX_UINT32,
  limitsOf,
  maybeFieldSize,
  proofSize,
  readMaybeBytes,
  readProofNodeInto,
  writeMaybeField,
  writeProof,
  type DecodeLimits,
  type Limits,
} from './proof-node-codec.ts';
import { errorSize, oneofTwice, readError, writeError, type WireError } from './wire-error-codec.ts';

/**
 * What `/proofsync/1/range` answers: the proof or an error.
 *
 * @example
 * const res = decodeRangeProofResponse(frame, { maxKeyValues: req.keyLimit });
 * if (res.type === 'error') throw new Error(`${res.name}: ${res.message}`);
 * verifyRangeProof(res.proof, { root: req.rootHash, start: req.startKey, end: req.endKey, keyLimit: req.keyLimit });
 */
export type RangeProofResponse =
  | {
      /** Marks the proof variant. */
      type: 'rangeProof';
      /** The range proof at the requested root. */
      proof: RangeProof;
    }
  | WireError;

function keyValueSize(kv: KeyValue): number {
  return bytesFieldSize(1, kv.key.length, true) + bytesFieldSize(2, kv.value.length, true);
}

/**
 * The encoded length of a range proof, computed without encoding it (the server's halving rule,
 * docs/proofs.md#serving: an answer not below the byte limit is rebuilt with half the key limit).
 *
 * @example
 * if (rangeProofSize(proof) >= req.bytesLimit) keyLimit >>= 1;
 */
export function rangeProofSize(p: RangeProof): number {
  let n = proofSize(1, p.startProof) + proofSize(2, p.endProof);
  for (let i = 0; i < p.keyValues.length; i++) n += lenFieldSize(3, keyValueSize(p.keyValues[i]));
  return n;
}

function rangeProofRequestSize(q: RangeProofRequest): number {
  return (
    bytesFieldSize(1, q.rootHash.length, true) +
    maybeFieldSize(2, q.startKey) +
    maybeFieldSize(3, q.endKey) +
    uintFieldSize(4, q.keyLimit) +
    uintFieldSize(5, q.bytesLimit)
  );
}

/** Writes the fields of a range proof (the change codec embeds it in its response too). */
export function writeRangeProof(w: Writer, p: RangeProof): void {
  writeProof(w, 1, p.startProof);
  writeProof(w, 2, p.endProof);
  for (const kv of p.keyValues) {
    w.lenField(3, keyValueSize(kv)).bytesField(1, kv.key, true).bytesField(2, kv.value, true);
  }
}

/**
 * Encodes a range proof.
 *
 * @example
 * const bytes = encodeRangeProof({ startProof: [], endProof: [], keyValues: [] }); // empty bytes
 */
export function encodeRangeProof(p: RangeProof): Uint8Array {
  const w = new Writer(rangeProofSize(p));
  writeRangeProof(w, p);
  return w.finish();
}

/**
 * Encodes a range proof request; `keyLimit` and `bytesLimit` must be uint32.
 *
 * @example
 * const bytes = encodeRangeProofRequest({ rootHash: root, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 1 << 20 });
 */
export function encodeRangeProofRequest(q: RangeProofRequest): Uint8Array {
  const w = new Writer(rangeProofRequestSize(q));
  w.bytesField(1, q.rootHash, true);
  writeMaybeField(w, 2, q.startKey);
  writeMaybeField(w, 3, q.endKey);
  w.uintField(4, q.keyLimit, MAX_UINT32).uintField(5, q.bytesLimit, MAX_UINT32);
  return w.finish();
}

/**
 * Encodes the answer on `/proofsync/1/range`.
 *
 * @example
 * encodeRangeProofResponse({ type: 'error', name: 'RootNotFound', message: 'unknown root' });
 */
export function encodeRangeProofResponse(r: RangeProofResponse): Uint8Array {
  if (r.type === 'rangeProof') {
    const size = rangeProofSize(r.proof);
    const w = new Writer(lenFieldSize(1, size));
    w.lenField(1, size);
    writeRangeProof(w, r.proof);
    return w.finish();
  }
  const w = new Writer(lenFieldSize(2, errorSize(r)));
  writeError(w, 2, r);
  return w.finish();
}

/**
 * Encoded length of a range proof response carrying `proof` (the envelope adds a few bytes).
 *
 * @example
 * rangeProofResponseSize(proof) === encodeRangeProofResponse({ type: 'rangeProof', proof }).length; // true
 */
export function rangeProofResponseSize(proof: RangeProof): number {
  return lenFieldSize(1, rangeProofSize(proof));
}

/** `views`: the key and value alias the input (`Reader.view`) instead of being copies. */
function readKeyValue(r: Reader, views: boolean): KeyValue {
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'KeyValue');
        r.expect(tag, WIRE_LEN);
        key = views ? r.view() : r.bytes();
        break;
      case 2:
        seen = once(seen, tag, 'KeyValue');
        r.expect(tag, WIRE_LEN);
        value = views ? r.view() : r.bytes();
        break;
      default:
        r.skip(tag);
    }
  }
  return { key: key ?? new Uint8Array(0), value: value ?? new Uint8Array(0) };
}

/** Reads a range proof's fields; `views` as in `DecodeOptions`. */
export function readRangeProof(r: Reader, limits: Limits, views = false): RangeProof {
  const p: RangeProof = { startProof: [], endProof: [], keyValues: [] };
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        readProofNodeInto(r, tag, p.startProof, limits, 'RangeProof.start_proof');
        break;
      case 2:
        readProofNodeInto(r, tag, p.endProof, limits, 'RangeProof.end_proof');
        break;
      case 3:
        r.expect(tag, WIRE_LEN);
        checkCount(p.keyValues.length, limits.maxKeyValues, 'RangeProof.key_values');
        p.keyValues.push(readKeyValue(r.sub(), views));
        break;
      default:
        r.skip(tag);
    }
  }
  return p;
}

/**
 * Decodes a range proof, checking every bound (see the module comment for the errors).
 *
 * @example
 * const proof = decodeRangeProof(bytes, { maxKeyValues: request.keyLimit });
 */
export function decodeRangeProof(bytes: Uint8Array, limits?: DecodeLimits): RangeProof {
  const l = limitsOf(limits);
  return readRangeProof(Reader.of(bytes, l.maxBytes), l);
}

/**
 * Decodes a range proof request. Absent fields take proto3 defaults (empty root, zero limits);
 * whether the values are acceptable (32-byte root, non-zero limits, start ≤ end) is the
 * server's check (docs/proofs.md#serving, `InvalidRequest`).
 *
 * @example
 * const req = decodeRangeProofRequest(frame);
 * const proof = await serveRangeProof(db, req);
 */
export function decodeRangeProofRequest(bytes: Uint8Array, limits?: Pick<DecodeLimits, 'maxBytes'>): RangeProofRequest {
  const r = Reader.of(bytes, limits?.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes);
  const q: RangeProofRequest = { rootHash: new Uint8Array(0), startKey: undefined, endKey: undefined, keyLimit: 0, bytesLimit: 0 };
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'RangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.rootHash = r.bytes();
        break;
      case 2:
        seen = once(seen, tag, 'RangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.startKey = readMaybeBytes(r.sub());
        break;
      case 3:
        seen = once(seen, tag, 'RangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.endKey = readMaybeBytes(r.sub());
        break;
      case 4:
        seen = once(seen, tag, 'RangeProofRequest');
        r.expect(tag, WIRE_VARINT);
        q.keyLimit = r.uint32();
        break;
      case 5:
        seen = once(seen, tag, 'RangeProofRequest');
        r.expect(tag, WIRE_VARINT);
        q.bytesLimit = r.uint32();
        break;
      default:
        r.skip(tag);
    }
  }
  return q;
}

/**
 * How proofs are decoded.
 *
 * @example
 * const res = decodeRangeProofResponse(frame, undefined, { views: true }); // frame is never reused
 */
export interface DecodeOptions {
  /**
   * Key-values of a range proof as views into `bytes` rather than copies: for a caller that owns
   * `bytes` and never changes it (a received frame). Measured: a 1M-key sync copied each key and
   * value twice more (the decoder, then LevelDB's write of a small heap array) for nothing.
   */
  views?: boolean;
}

/**
 * Decodes the answer on `/proofsync/1/range`; exactly one of proof or error must be present.
 *
 * @example
 * const res = decodeRangeProofResponse(frame, { maxKeyValues: req.keyLimit }, { views: true });
 * if (res.type === 'error') throw new Error(`${res.name}: ${res.message}`);
 */
export function decodeRangeProofResponse(bytes: Uint8Array, limits?: DecodeLimits, options: DecodeOptions = {}): RangeProofResponse {
  const l = limitsOf(limits);
  const r = Reader.of(bytes, l.maxBytes);
  let result: RangeProofResponse | undefined;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        if (result !== undefined) oneofTwice('RangeProofResponse', start);
        r.expect(tag, WIRE_LEN);
        result = { type: 'rangeProof', proof: readRangeProof(r.sub(), l, options.views) };
        break;
      case 2:
        if (result !== undefined) oneofTwice('RangeProofResponse', start);
        r.expect(tag, WIRE_LEN);
        result = readError(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  if (result === undefined) throw new MissingField('RangeProofResponse has neither a proof nor an error', { field: 'result' });
  return result;
}
