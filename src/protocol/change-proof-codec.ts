/**
 * Codecs of `/proofsync/1/change` (docs/wire.md#proof-messages): the change proof, its request
 * and its response envelope, which carries a range proof at the end root when the start root is
 * outside the server's history (docs/proofs.md#serving). Decoding rules and errors: codec.ts.
 */
import { MissingField } from '../core/errors.ts';
import type { ChangeProof, ChangeProofRequest, KeyChange, RangeProof } from '../core/types.ts';
import { Reader, WIRE_LEN, WIRE_VARINT, Writer, bytesFieldSize, checkCount, fieldOf, lenFieldSize, once, uintFieldSize } from './pb.ts';
import {
  DEFAULT_DECODE_LIMITS,
  MAX_UINT32,
  limitsOf,
  maybeBytesSize,
  maybeFieldSize,
  proofSize,
  readMaybeBytes,
  readProofNodeInto,
  writeMaybeField,
  writeProof,
  type DecodeLimits,
  type Limits,
} from './proof-node-codec.ts';
import { rangeProofSize, readRangeProof, writeRangeProof } from './range-proof-codec.ts';
import { errorSize, oneofTwice, readError, writeError, type WireError } from './wire-error-codec.ts';

/**
 * What `/proofsync/1/change` answers: a change proof, a range proof at the end root
 * (docs/proofs.md#serving), or an error.
 *
 * @example
 * const res = decodeChangeProofResponse(frame);
 * if (res.type === 'changeProof') await verifyChangeProof(res.proof, { root: req.endRootHash, keyLimit: req.keyLimit, localTrie });
 * else if (res.type === 'rangeProof') verifyRangeProof(res.proof, { root: req.endRootHash, keyLimit: req.keyLimit });
 */
export type ChangeProofResponse =
  | {
      /** Marks the change proof variant. */
      type: 'changeProof';
      /** The changes from the start root to the end root. */
      proof: ChangeProof;
    }
  | {
      /** The start root is outside the server's history: a range proof at the end root instead. */
      type: 'rangeProof';
      /** The range proof at the end root. */
      proof: RangeProof;
    }
  | WireError;

function keyChangeSize(kc: KeyChange): number {
  let n = bytesFieldSize(1, kc.key.length, true);
  if (kc.value !== undefined) n += lenFieldSize(2, maybeBytesSize(kc.value));
  return n;
}

/**
 * The encoded length of a change proof, computed without encoding it (the server's halving rule,
 * docs/proofs.md#serving).
 *
 * @example
 * changeProofSize(proof) === encodeChangeProof(proof).length; // true
 */
export function changeProofSize(p: ChangeProof): number {
  let n = proofSize(1, p.startProof) + proofSize(2, p.endProof);
  for (let i = 0; i < p.keyChanges.length; i++) n += lenFieldSize(3, keyChangeSize(p.keyChanges[i]));
  return n;
}

function changeProofRequestSize(q: ChangeProofRequest): number {
  return (
    bytesFieldSize(1, q.startRootHash.length, true) +
    bytesFieldSize(2, q.endRootHash.length, true) +
    maybeFieldSize(3, q.startKey) +
    maybeFieldSize(4, q.endKey) +
    uintFieldSize(5, q.keyLimit) +
    uintFieldSize(6, q.bytesLimit)
  );
}

function writeChangeProof(w: Writer, p: ChangeProof): void {
  writeProof(w, 1, p.startProof);
  writeProof(w, 2, p.endProof);
  for (const kc of p.keyChanges) {
    w.lenField(3, keyChangeSize(kc)).bytesField(1, kc.key, true);
    writeMaybeField(w, 2, kc.value);
  }
}

/**
 * Encodes a change proof (docs/wire.md#proof-messages).
 *
 * @example
 * const bytes = encodeChangeProof(proof);
 * decodeChangeProof(bytes); // an equal proof
 */
export function encodeChangeProof(p: ChangeProof): Uint8Array {
  const w = new Writer(changeProofSize(p));
  writeChangeProof(w, p);
  return w.finish();
}

/**
 * Encodes a change proof request; `keyLimit` and `bytesLimit` must be uint32.
 *
 * @example
 * const bytes = encodeChangeProofRequest({ startRootHash: local, endRootHash: target, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 1 << 20 });
 */
export function encodeChangeProofRequest(q: ChangeProofRequest): Uint8Array {
  const w = new Writer(changeProofRequestSize(q));
  w.bytesField(1, q.startRootHash, true).bytesField(2, q.endRootHash, true);
  writeMaybeField(w, 3, q.startKey);
  writeMaybeField(w, 4, q.endKey);
  w.uintField(5, q.keyLimit, MAX_UINT32).uintField(6, q.bytesLimit, MAX_UINT32);
  return w.finish();
}

/**
 * Encodes the answer on `/proofsync/1/change`.
 *
 * @example
 * const served = await serveChangeProof(db, req);
 * const bytes = encodeChangeProofResponse(served);
 */
export function encodeChangeProofResponse(r: ChangeProofResponse): Uint8Array {
  switch (r.type) {
    case 'changeProof': {
      const size = changeProofSize(r.proof);
      const w = new Writer(lenFieldSize(1, size));
      w.lenField(1, size);
      writeChangeProof(w, r.proof);
      return w.finish();
    }
    case 'rangeProof': {
      const size = rangeProofSize(r.proof);
      const w = new Writer(lenFieldSize(2, size));
      w.lenField(2, size);
      writeRangeProof(w, r.proof);
      return w.finish();
    }
    default: {
      const w = new Writer(lenFieldSize(3, errorSize(r)));
      writeError(w, 3, r);
      return w.finish();
    }
  }
}

function readKeyChange(r: Reader): KeyChange {
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'KeyChange');
        r.expect(tag, WIRE_LEN);
        key = r.bytes();
        break;
      case 2:
        seen = once(seen, tag, 'KeyChange');
        r.expect(tag, WIRE_LEN);
        value = readMaybeBytes(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  return { key: key ?? new Uint8Array(0), value };
}

function readChangeProof(r: Reader, limits: Limits): ChangeProof {
  const p: ChangeProof = { startProof: [], endProof: [], keyChanges: [] };
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        readProofNodeInto(r, tag, p.startProof, limits, 'ChangeProof.start_proof');
        break;
      case 2:
        readProofNodeInto(r, tag, p.endProof, limits, 'ChangeProof.end_proof');
        break;
      case 3:
        r.expect(tag, WIRE_LEN);
        checkCount(p.keyChanges.length, limits.maxKeyValues, 'ChangeProof.key_changes');
        p.keyChanges.push(readKeyChange(r.sub()));
        break;
      default:
        r.skip(tag);
    }
  }
  return p;
}

/**
 * Decodes a change proof, checking every bound; throws a `DecodeError` subclass on hostile bytes.
 *
 * @example
 * const proof = decodeChangeProof(bytes, { maxKeyValues: request.keyLimit });
 */
export function decodeChangeProof(bytes: Uint8Array, limits?: DecodeLimits): ChangeProof {
  const l = limitsOf(limits);
  return readChangeProof(Reader.of(bytes, l.maxBytes), l);
}

/**
 * Decodes a change proof request (proto3 defaults for absent fields; see `decodeRangeProofRequest`).
 *
 * @example
 * const req = decodeChangeProofRequest(frame);
 * const served = await serveChangeProof(db, req);
 */
export function decodeChangeProofRequest(bytes: Uint8Array, limits?: Pick<DecodeLimits, 'maxBytes'>): ChangeProofRequest {
  const r = Reader.of(bytes, limits?.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes);
  const q: ChangeProofRequest = {
    startRootHash: new Uint8Array(0),
    endRootHash: new Uint8Array(0),
    startKey: undefined,
    endKey: undefined,
    keyLimit: 0,
    bytesLimit: 0,
  };
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'ChangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.startRootHash = r.bytes();
        break;
      case 2:
        seen = once(seen, tag, 'ChangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.endRootHash = r.bytes();
        break;
      case 3:
        seen = once(seen, tag, 'ChangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.startKey = readMaybeBytes(r.sub());
        break;
      case 4:
        seen = once(seen, tag, 'ChangeProofRequest');
        r.expect(tag, WIRE_LEN);
        q.endKey = readMaybeBytes(r.sub());
        break;
      case 5:
        seen = once(seen, tag, 'ChangeProofRequest');
        r.expect(tag, WIRE_VARINT);
        q.keyLimit = r.uint32();
        break;
      case 6:
        seen = once(seen, tag, 'ChangeProofRequest');
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
 * Decodes the answer on `/proofsync/1/change`; exactly one of its three results must be present.
 *
 * @example
 * const res = decodeChangeProofResponse(frame, { maxKeyValues: req.keyLimit });
 * if (res.type === 'error') throw new Error(`${res.name}: ${res.message}`);
 */
export function decodeChangeProofResponse(bytes: Uint8Array, limits?: DecodeLimits): ChangeProofResponse {
  const l = limitsOf(limits);
  const r = Reader.of(bytes, l.maxBytes);
  let result: ChangeProofResponse | undefined;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        if (result !== undefined) oneofTwice('ChangeProofResponse', start);
        r.expect(tag, WIRE_LEN);
        result = { type: 'changeProof', proof: readChangeProof(r.sub(), l) };
        break;
      case 2:
        if (result !== undefined) oneofTwice('ChangeProofResponse', start);
        r.expect(tag, WIRE_LEN);
        result = { type: 'rangeProof', proof: readRangeProof(r.sub(), l) };
        break;
      case 3:
        if (result !== undefined) oneofTwice('ChangeProofResponse', start);
        r.expect(tag, WIRE_LEN);
        result = readError(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  if (result === undefined) throw new MissingField('ChangeProofResponse has neither a proof nor an error', { field: 'result' });
  return result;
}
