/**
 * Wire messages of `/proofsync/1/heads`, `/proofsync/1/delta` and `/proofsync/1/log`
 * (docs/design.md "Wire protocols"; the log batch is docs/mmr.md), with the same typed error
 * envelope as the proof protocols (codec.ts). Built on the strict reader/writer of pb.ts.
 *
 * ```proto
 * message Error { string name = 1; string message = 2; }
 *
 * // /proofsync/1/heads: the newest signed head announcement (announcement.ts wire bytes).
 * message HeadsRequest  { bytes db = 1; }              // empty: the node's database
 * message HeadsResponse { oneof result { bytes announcement = 1; Error error = 2; } }
 *
 * // /proofsync/1/delta: deltas by id (delta.ts wire bytes), in request order.
 * message DeltaRequest  { repeated bytes ids = 1; }    // 1..MAX_DELTA_IDS ids of 32 bytes
 * message DeltaBatch    { repeated bytes deltas = 1;   // those the node holds, in request order
 *                         repeated bytes missing = 2;  // ids it does not hold
 *                         bool truncated = 3; }        // the byte budget cut the batch short:
 *                                                      // ids in neither list were not examined
 * message DeltaResponse { oneof result { DeltaBatch batch = 1; Error error = 2; } }
 *
 * // /proofsync/1/log: operations [start, end) of the log of `log_size` operations, with an
 * // MMR range proof against the root over `log_size` leaves (mmr.ts digest order), and with
 * // `pinned`, the pinned nodes at `start` (the peaks over [0, start), left to right).
 * message LogRequest    { uint64 start = 1; uint64 end = 2; uint64 log_size = 3; bool pinned = 4; }
 * message LogBatch      { repeated bytes operations = 1; repeated bytes proof = 2; repeated bytes pinned = 3; }
 * message LogResponse   { oneof result { LogBatch batch = 1; Error error = 2; } }
 * ```
 * A server may answer fewer operations than asked (`[start, start + k)`, `k ≥ 1`: its batch
 * and byte limits); never more, never none. Decoders bound every count and check digest sizes;
 * what only a verifier can check (signatures, proofs) is left to the core.
 *
 * One file: the three protocols' messages share the error envelope and its checks
 * (`decodeEnvelope`, `digest`), and each encoder sits beside its decoder so every bound reads
 * in both directions.
 */
import { DecodeError, errorClass, MissingField, RequestError } from '../core/errors.ts';
import { readError, type WireError } from './codec.ts';
import {
  bytesFieldSize,
  checkCount,
  DuplicateField,
  fieldOf,
  lenFieldSize,
  once,
  Reader,
  stringFieldSize,
  uintFieldSize,
  WIRE_LEN,
  WIRE_VARINT,
  Writer,
} from './pb.ts';

export type { WireError };

/** A digest or id that is not 32 bytes. */
export const InvalidDigestLength = errorClass(DecodeError, 'InvalidDigestLength');

/** The server does not hold what was asked for (no announcement yet, another database). */
export const NotFound = errorClass(RequestError, 'NotFound');

/** Ids per delta request (gap filling asks up to 3000 per round). */
export const MAX_DELTA_IDS = 4096;
/** Operations per log batch. */
export const MAX_LOG_OPS = 4096;
/** Digests in one MMR range proof: at most two per tree level over 2^53 leaves, with margin. */
export const MAX_PROOF_DIGESTS = 256;
/** Pinned nodes: one per set bit of a 53-bit leaf count. */
export const MAX_PINNED = 64;
/** Bytes of delta or log payload a server puts in one response (one item may exceed it alone). */
export const RESPONSE_BYTE_BUDGET = 4 * 1024 * 1024;
/** Largest delta/log response accepted: the budget plus one maximal delta (4 MiB) and framing. */
export const MAX_BATCH_RESPONSE_BYTES = 9 * 1024 * 1024;
/** Largest heads response accepted (an announcement is at most 64 KiB). */
export const MAX_HEADS_RESPONSE_BYTES = 80 * 1024;
/** Largest request accepted on heads, delta and log. */
export const MAX_HEADS_REQUEST_BYTES = 256;
export const MAX_DELTA_REQUEST_BYTES = MAX_DELTA_IDS * 35 + 16;
export const MAX_LOG_REQUEST_BYTES = 64;

const DIGEST = 32;

export interface HeadsRequest {
  /** Database id; empty or absent: the node's database. */
  db?: Uint8Array;
}
export type HeadsResponse = { type: 'announcement'; announcement: Uint8Array } | WireError;

export interface DeltaRequest {
  ids: Uint8Array[];
}
export interface DeltaBatch {
  /** Wire-encoded deltas (delta.ts), in request order. */
  deltas: Uint8Array[];
  missing: Uint8Array[];
  truncated: boolean;
}
export type DeltaResponse = ({ type: 'batch' } & DeltaBatch) | WireError;

export interface LogRequest {
  start: number;
  end: number;
  logSize: number;
  pinned: boolean;
}
export interface LogBatch {
  /** Operations `start .. start + operations.length - 1` (each a wire-encoded delta). */
  operations: Uint8Array[];
  /** MMR range proof digests (mmr.ts `MmrRangeProof.digests`). */
  proof: Uint8Array[];
  /** Pinned nodes at `start`, when asked (empty for start 0). */
  pinned: Uint8Array[];
}
export type LogResponse = ({ type: 'batch' } & LogBatch) | WireError;

// ---------------------------------------------------------------------------------------------
// Error envelope

function errorSize(e: WireError): number {
  return stringFieldSize(1, e.name) + stringFieldSize(2, e.message);
}

function writeErrorField(field: number, e: WireError): Uint8Array {
  const size = errorSize(e);
  const w = new Writer(lenFieldSize(field, size));
  w.lenField(field, size).stringField(1, e.name).stringField(2, e.message);
  return w.finish();
}

function oneofTwice(message: string, start: number): never {
  throw new DuplicateField(`${message}: more than one field of oneof result`, { offset: start, field: 'result' });
}

function digest(r: Reader, what: string): Uint8Array {
  const start = r.pos;
  const d = r.bytes();
  if (d.length !== DIGEST) throw new InvalidDigestLength(`${what} at offset ${start} is ${d.length} bytes, expected ${DIGEST}`, { offset: start });
  return d;
}

/**
 * A response carrying one result field (1) or an error (2): decodes the oneof and hands the
 * result's reader to `read`.
 */
function decodeEnvelope<T>(bytes: Uint8Array, maxBytes: number, message: string, read: (r: Reader) => T): T | WireError {
  const r = Reader.of(bytes, maxBytes);
  let result: T | WireError | undefined;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        if (result !== undefined) oneofTwice(message, start);
        r.expect(tag, WIRE_LEN);
        result = read(r.sub());
        break;
      case 2:
        if (result !== undefined) oneofTwice(message, start);
        r.expect(tag, WIRE_LEN);
        result = readError(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  if (result === undefined) throw new MissingField(`${message} has neither a result nor an error`, { field: 'result' });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Heads

/** A request whose one field is the database asked about (`bytes db = 1`; empty: the node's own): heads and peers. */
export function encodeDbRequest(q: { db?: Uint8Array }): Uint8Array {
  const db = q.db ?? new Uint8Array(0);
  return new Writer(bytesFieldSize(1, db.length, true)).bytesField(1, db, true).finish();
}

/** Decodes an `encodeDbRequest` message; `message` names it in errors. */
export function decodeDbRequest(bytes: Uint8Array, maxBytes: number, message: string): { db?: Uint8Array } {
  const r = Reader.of(bytes, maxBytes);
  let db: Uint8Array | undefined;
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    if (fieldOf(tag) === 1) {
      seen = once(seen, tag, message);
      r.expect(tag, WIRE_LEN);
      db = r.bytes();
    } else r.skip(tag);
  }
  return db && db.length ? { db } : {};
}

export function encodeHeadsRequest(q: HeadsRequest): Uint8Array {
  return encodeDbRequest(q);
}

export function decodeHeadsRequest(bytes: Uint8Array, maxBytes = MAX_HEADS_REQUEST_BYTES): HeadsRequest {
  return decodeDbRequest(bytes, maxBytes, 'HeadsRequest');
}

/**
 * @example
 * encodeHeadsResponse({ type: 'announcement', announcement: encodeAnnouncement(ann) });
 */
export function encodeHeadsResponse(res: HeadsResponse): Uint8Array {
  if (res.type === 'error') return writeErrorField(2, res);
  const a = res.announcement;
  // bytes field 1 with the announcement as its value (never omitted: presence selects the oneof)
  return new Writer(bytesFieldSize(1, a.length)).bytesField(1, a).finish();
}

export function decodeHeadsResponse(bytes: Uint8Array, maxBytes = MAX_HEADS_RESPONSE_BYTES): HeadsResponse {
  const r = Reader.of(bytes, maxBytes);
  let result: HeadsResponse | undefined;
  while (!r.done) {
    const start = r.pos;
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        if (result !== undefined) oneofTwice('HeadsResponse', start);
        r.expect(tag, WIRE_LEN);
        result = { type: 'announcement', announcement: r.bytes() };
        break;
      case 2:
        if (result !== undefined) oneofTwice('HeadsResponse', start);
        r.expect(tag, WIRE_LEN);
        result = readError(r.sub());
        break;
      default:
        r.skip(tag);
    }
  }
  if (result === undefined) throw new MissingField('HeadsResponse has neither an announcement nor an error', { field: 'result' });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Delta

export function encodeDeltaRequest(q: DeltaRequest): Uint8Array {
  let size = 0;
  for (const id of q.ids) size += bytesFieldSize(1, id.length);
  const w = new Writer(size);
  for (const id of q.ids) w.bytesField(1, id);
  return w.finish();
}

/** Ids must be 32 bytes (`InvalidDigestLength`), at most `MAX_DELTA_IDS` (`TooManyItems`). */
export function decodeDeltaRequest(bytes: Uint8Array, maxBytes = MAX_DELTA_REQUEST_BYTES): DeltaRequest {
  const r = Reader.of(bytes, maxBytes);
  const ids: Uint8Array[] = [];
  while (!r.done) {
    const tag = r.tag();
    if (fieldOf(tag) === 1) {
      r.expect(tag, WIRE_LEN);
      checkCount(ids.length, MAX_DELTA_IDS, 'DeltaRequest.ids');
      ids.push(digest(r, 'delta id'));
    } else r.skip(tag);
  }
  return { ids };
}

function deltaBatchSize(b: DeltaBatch): number {
  let n = uintFieldSize(3, b.truncated ? 1 : 0);
  for (const d of b.deltas) n += bytesFieldSize(1, d.length);
  for (const id of b.missing) n += bytesFieldSize(2, id.length);
  return n;
}

export function encodeDeltaResponse(res: DeltaResponse): Uint8Array {
  if (res.type === 'error') return writeErrorField(2, res);
  const size = deltaBatchSize(res);
  const w = new Writer(lenFieldSize(1, size)).lenField(1, size);
  for (const d of res.deltas) w.bytesField(1, d);
  for (const id of res.missing) w.bytesField(2, id);
  w.uintField(3, res.truncated ? 1 : 0);
  return w.finish();
}

export function decodeDeltaResponse(bytes: Uint8Array, maxBytes = MAX_BATCH_RESPONSE_BYTES): DeltaResponse {
  return decodeEnvelope(bytes, maxBytes, 'DeltaResponse', (r) => {
    const deltas: Uint8Array[] = [];
    const missing: Uint8Array[] = [];
    let truncated = false;
    let seen = 0;
    while (!r.done) {
      const tag = r.tag();
      switch (fieldOf(tag)) {
        case 1:
          r.expect(tag, WIRE_LEN);
          checkCount(deltas.length + missing.length, MAX_DELTA_IDS, 'DeltaBatch.deltas');
          deltas.push(r.bytes());
          break;
        case 2:
          r.expect(tag, WIRE_LEN);
          checkCount(deltas.length + missing.length, MAX_DELTA_IDS, 'DeltaBatch.missing');
          missing.push(digest(r, 'missing id'));
          break;
        case 3:
          seen = once(seen, tag, 'DeltaBatch');
          r.expect(tag, WIRE_VARINT);
          truncated = r.bool();
          break;
        default:
          r.skip(tag);
      }
    }
    return { type: 'batch' as const, deltas, missing, truncated };
  });
}

// ---------------------------------------------------------------------------------------------
// Log

export function encodeLogRequest(q: LogRequest): Uint8Array {
  const size = uintFieldSize(1, q.start) + uintFieldSize(2, q.end) + uintFieldSize(3, q.logSize) + uintFieldSize(4, q.pinned ? 1 : 0);
  return new Writer(size)
    .uintField(1, q.start)
    .uintField(2, q.end)
    .uintField(3, q.logSize)
    .uintField(4, q.pinned ? 1 : 0)
    .finish();
}

/** Absent fields are 0/false; whether the range is acceptable is the server's check. */
export function decodeLogRequest(bytes: Uint8Array, maxBytes = MAX_LOG_REQUEST_BYTES): LogRequest {
  const r = Reader.of(bytes, maxBytes);
  const q: LogRequest = { start: 0, end: 0, logSize: 0, pinned: false };
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    const field = fieldOf(tag);
    if (field >= 1 && field <= 4) {
      seen = once(seen, tag, 'LogRequest');
      r.expect(tag, WIRE_VARINT);
    }
    switch (field) {
      case 1:
        q.start = r.uint64();
        break;
      case 2:
        q.end = r.uint64();
        break;
      case 3:
        q.logSize = r.uint64();
        break;
      case 4:
        q.pinned = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return q;
}

function logBatchSize(b: LogBatch): number {
  let n = 0;
  for (const op of b.operations) n += bytesFieldSize(1, op.length);
  for (const d of b.proof) n += bytesFieldSize(2, d.length);
  for (const d of b.pinned) n += bytesFieldSize(3, d.length);
  return n;
}

export function encodeLogResponse(res: LogResponse): Uint8Array {
  if (res.type === 'error') return writeErrorField(2, res);
  const size = logBatchSize(res);
  const w = new Writer(lenFieldSize(1, size)).lenField(1, size);
  for (const op of res.operations) w.bytesField(1, op);
  for (const d of res.proof) w.bytesField(2, d);
  for (const d of res.pinned) w.bytesField(3, d);
  return w.finish();
}

export function decodeLogResponse(bytes: Uint8Array, maxBytes = MAX_BATCH_RESPONSE_BYTES): LogResponse {
  return decodeEnvelope(bytes, maxBytes, 'LogResponse', (r) => {
    const operations: Uint8Array[] = [];
    const proof: Uint8Array[] = [];
    const pinned: Uint8Array[] = [];
    while (!r.done) {
      const tag = r.tag();
      switch (fieldOf(tag)) {
        case 1:
          r.expect(tag, WIRE_LEN);
          checkCount(operations.length, MAX_LOG_OPS, 'LogBatch.operations');
          operations.push(r.bytes());
          break;
        case 2:
          r.expect(tag, WIRE_LEN);
          checkCount(proof.length, MAX_PROOF_DIGESTS, 'LogBatch.proof');
          proof.push(digest(r, 'proof digest'));
          break;
        case 3:
          r.expect(tag, WIRE_LEN);
          checkCount(pinned.length, MAX_PINNED, 'LogBatch.pinned');
          pinned.push(digest(r, 'pinned node'));
          break;
        default:
          r.skip(tag);
      }
    }
    return { type: 'batch' as const, operations, proof, pinned };
  });
}

// ---------------------------------------------------------------------------------------------
// Error frames for `handle` (stream.ts `encodeError`): each protocol's own envelope.

/** The error envelope of each served protocol, for `handle`'s `encodeError`. */
export const encodeHeadsError = (name: string, message: string): Uint8Array => encodeHeadsResponse({ type: 'error', name, message });
export const encodeDeltaError = (name: string, message: string): Uint8Array => encodeDeltaResponse({ type: 'error', name, message });
export const encodeLogError = (name: string, message: string): Uint8Array => encodeLogResponse({ type: 'error', name, message });
