/**
 * Wire codecs of the proof protocols (docs/wire.md#proof-messages; messages in proofsync.proto, with
 * AvalancheGo's field numbers). Built on the strict reader/writer of pb.ts.
 *
 * Decoding is strict: a key whose byte length does not fit its bit length, or whose bit length
 * is not a multiple of 4 → `InvalidKeyLength`; non-zero padding → `NonZeroPaddingBits`; a child
 * index ≥ 16 → `InvalidChildIndex`; a child id that is not 32 bytes → `InvalidChildId`; the same
 * child index twice → `DuplicateChildIndex`; a proof node without a key → `MissingField`; more
 * proof nodes or key-values than the limits → `TooManyItems`; plus everything pb.ts checks.
 * It does not check what only the verifier can (order of keys, proof paths: §3).
 *
 * Encoding is deterministic: children in ascending index order, map entries always carrying
 * both key and value, proto3 defaults omitted. Size functions give the encoded length without
 * encoding (the server's halving rule, §4).
 */
import { DecodeError, InvalidChildId, InvalidChildIndex, InvalidKeyLength, MissingField, errorClass } from '../core/errors.ts';
import { BRANCH_FACTOR, packPath, unpackPath } from '../core/path.ts';
import type {
  ChangeProof,
  ChangeProofRequest,
  KeyChange,
  KeyValue,
  Path,
  ProofNode,
  RangeProof,
  RangeProofRequest,
} from '../core/types.ts';
import {
  DuplicateField,
  Reader,
  WIRE_LEN,
  WIRE_VARINT,
  Writer,
  bytesFieldSize,
  checkCount,
  fieldOf,
  lenFieldSize,
  once,
  stringFieldSize,
  uintFieldSize,
} from './pb.ts';

/** The same child index occurs twice in one proof node. */
export const DuplicateChildIndex = errorClass(DecodeError, 'DuplicateChildIndex');

/** Bytes of a node id. */
export const ID_LENGTH = 32;
const MAX_UINT32 = 0xffffffff;

/**
 * Bounds applied while decoding. Every field is optional; defaults are `DEFAULT_DECODE_LIMITS`.
 *
 * @example
 * // no more key-values than were asked for
 * const proof = decodeRangeProof(bytes, { maxKeyValues: req.keyLimit, maxBytes: req.bytesLimit + 4096 });
 */
export interface DecodeLimits {
  /** Largest accepted message, in bytes. */
  maxBytes?: number;
  /** Most proof nodes in one start or end proof. */
  maxProofNodes?: number;
  /** Most key-values (range proof) or key changes (change proof). */
  maxKeyValues?: number;
}

/**
 * Default bounds: 2 MiB per message (a served proof is below 2 MiB − 4 KiB, docs/proofs.md#serving, plus a few
 * bytes of envelope), 2048 key-values (the serving key limit, §4), 2048 proof nodes per proof
 * (a path has at most one node per token of the key plus the root: keys up to 1 KiB).
 */
export const DEFAULT_DECODE_LIMITS: Readonly<Required<DecodeLimits>> = Object.freeze({
  maxBytes: 2 * 1024 * 1024,
  maxProofNodes: 2048,
  maxKeyValues: 2048,
});

interface Limits {
  maxProofNodes: number;
  maxKeyValues: number;
}

function limitsOf(l: DecodeLimits | undefined): Required<DecodeLimits> {
  if (l === undefined) return DEFAULT_DECODE_LIMITS;
  return {
    maxBytes: l.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes,
    maxProofNodes: l.maxProofNodes ?? DEFAULT_DECODE_LIMITS.maxProofNodes,
    maxKeyValues: l.maxKeyValues ?? DEFAULT_DECODE_LIMITS.maxKeyValues,
  };
}

/** The error carried by a response: a stable error `name` and a human-readable message. */
export interface WireError {
  /** Marks the error variant of a response. */
  type: 'error';
  /** The error's stable name (`RootNotFound`, `InvalidRequest`, ...): the class the requester rebuilds. */
  name: string;
  /** What went wrong, for people. */
  message: string;
}

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

/**
 * What `/proofsync/1/change` answers: a change proof, a range proof at the end root (§4), or an error.
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

// =============================================================================================
// Sizes (proto3: scalar defaults omitted; message fields always written)

function keySize(path: Path): number {
  return uintFieldSize(1, path.length * 4) + bytesFieldSize(2, (path.length + 1) >> 1, true);
}

function maybeBytesSize(value: Uint8Array): number {
  return bytesFieldSize(1, value.length, true);
}

// A child entry is always `08 <index> 12 20 <32-byte id>`: the key is written even when it is 0
// (as protobuf-go does), and every index is below 128, so every entry is 36 bytes.
const CHILD_ENTRY_SIZE = 2 + bytesFieldSize(2, ID_LENGTH);
const CHILD_FIELD_SIZE = lenFieldSize(3, CHILD_ENTRY_SIZE);

function proofNodeSize(node: ProofNode): number {
  let n = lenFieldSize(1, keySize(node.key));
  if (node.valueOrHash !== undefined) n += lenFieldSize(2, maybeBytesSize(node.valueOrHash));
  n += node.children.size * CHILD_FIELD_SIZE;
  return n;
}

function proofSize(field: number, nodes: ProofNode[]): number {
  let n = 0;
  for (let i = 0; i < nodes.length; i++) n += lenFieldSize(field, proofNodeSize(nodes[i]));
  return n;
}

function keyValueSize(kv: KeyValue): number {
  return bytesFieldSize(1, kv.key.length, true) + bytesFieldSize(2, kv.value.length, true);
}

function keyChangeSize(kc: KeyChange): number {
  let n = bytesFieldSize(1, kc.key.length, true);
  if (kc.value !== undefined) n += lenFieldSize(2, maybeBytesSize(kc.value));
  return n;
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

function maybeFieldSize(field: number, value: Uint8Array | undefined): number {
  return value === undefined ? 0 : lenFieldSize(field, maybeBytesSize(value));
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

function errorSize(e: WireError): number {
  return stringFieldSize(1, e.name) + stringFieldSize(2, e.message);
}

// =============================================================================================
// Writing

function writeKey(w: Writer, path: Path): void {
  for (let i = 0; i < path.length; i++) {
    if (path[i] >= BRANCH_FACTOR) throw new RangeError(`expected path tokens below ${BRANCH_FACTOR}, got ${path[i]} at ${i}`);
  }
  w.uintField(1, path.length * 4).bytesField(2, packPath(path), true);
}

function writeMaybeField(w: Writer, field: number, value: Uint8Array | undefined): void {
  if (value === undefined) return;
  w.lenField(field, maybeBytesSize(value)).bytesField(1, value, true);
}

function writeProofNode(w: Writer, node: ProofNode): void {
  w.lenField(1, keySize(node.key));
  writeKey(w, node.key);
  writeMaybeField(w, 2, node.valueOrHash);
  const indices = [...node.children.keys()].sort((a, b) => a - b);
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= BRANCH_FACTOR) {
      throw new RangeError(`expected child index in [0, ${BRANCH_FACTOR - 1}], got ${index}`);
    }
    const id = node.children.get(index)!;
    if (id.length !== ID_LENGTH) throw new RangeError(`expected ${ID_LENGTH}-byte child id, got ${id.length}`);
    w.lenField(3, CHILD_ENTRY_SIZE).tag(1, WIRE_VARINT).varint(index).bytesField(2, id);
  }
}

function writeProof(w: Writer, field: number, nodes: ProofNode[]): void {
  for (let i = 0; i < nodes.length; i++) {
    w.lenField(field, proofNodeSize(nodes[i]));
    writeProofNode(w, nodes[i]);
  }
}

function writeRangeProof(w: Writer, p: RangeProof): void {
  writeProof(w, 1, p.startProof);
  writeProof(w, 2, p.endProof);
  for (const kv of p.keyValues) {
    w.lenField(3, keyValueSize(kv)).bytesField(1, kv.key, true).bytesField(2, kv.value, true);
  }
}

function writeChangeProof(w: Writer, p: ChangeProof): void {
  writeProof(w, 1, p.startProof);
  writeProof(w, 2, p.endProof);
  for (const kc of p.keyChanges) {
    w.lenField(3, keyChangeSize(kc)).bytesField(1, kc.key, true);
    writeMaybeField(w, 2, kc.value);
  }
}

function writeError(w: Writer, field: number, e: WireError): void {
  w.lenField(field, errorSize(e)).stringField(1, e.name).stringField(2, e.message);
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

/**
 * Encoded length of a range proof response carrying `proof` (the envelope adds a few bytes).
 *
 * @example
 * rangeProofResponseSize(proof) === encodeRangeProofResponse({ type: 'rangeProof', proof }).length; // true
 */
export function rangeProofResponseSize(proof: RangeProof): number {
  return lenFieldSize(1, rangeProofSize(proof));
}

// =============================================================================================
// Reading

function readKey(r: Reader): Path {
  let bitLength = 0;
  let packed: Uint8Array = new Uint8Array(0);
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'Key');
        r.expect(tag, WIRE_VARINT);
        bitLength = r.uint64();
        break;
      case 2:
        seen = once(seen, tag, 'Key');
        r.expect(tag, WIRE_LEN);
        packed = r.view();
        break;
      default:
        r.skip(tag);
    }
  }
  // Checked here before unpackPath: its byte count uses 32-bit `>>`, which wraps for bit
  // lengths of 2^33 and more and would then allocate a path of `bitLength / 4` tokens.
  if (bitLength % 4 !== 0 || packed.length !== Math.ceil(bitLength / 8)) {
    throw new InvalidKeyLength(`key of ${bitLength} bits cannot be ${packed.length} bytes`, {
      bitLength,
      byteLength: packed.length,
    });
  }
  return unpackPath(bitLength, packed);
}

/** A MaybeBytes message: its value (empty when the field is absent inside it). */
function readMaybeBytes(r: Reader): Uint8Array {
  let value: Uint8Array | undefined;
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    if (fieldOf(tag) === 1) {
      seen = once(seen, tag, 'MaybeBytes');
      r.expect(tag, WIRE_LEN);
      value = r.bytes();
    } else r.skip(tag);
  }
  return value ?? new Uint8Array(0);
}

function readChildEntry(r: Reader, children: Map<number, Uint8Array>): void {
  const start = r.pos;
  let index = 0;
  let id: Uint8Array | undefined;
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'ProofNode.children entry');
        r.expect(tag, WIRE_VARINT);
        index = r.uint32();
        break;
      case 2:
        seen = once(seen, tag, 'ProofNode.children entry');
        r.expect(tag, WIRE_LEN);
        id = r.view();
        break;
      default:
        r.skip(tag);
    }
  }
  // protobuf map entries may omit a default key (protons does for index 0).
  if (index >= BRANCH_FACTOR) {
    throw new InvalidChildIndex(`child index ${index} is not below ${BRANCH_FACTOR}`, { offset: start, index });
  }
  const length = id === undefined ? 0 : id.length;
  if (length !== ID_LENGTH) {
    throw new InvalidChildId(`child ${index} has a ${length}-byte id, expected ${ID_LENGTH}`, { offset: start, index, length });
  }
  if (children.has(index)) {
    throw new DuplicateChildIndex(`child index ${index} occurs more than once`, { offset: start, index });
  }
  children.set(index, id!.slice());
}

function readProofNode(r: Reader): ProofNode {
  const start = r.pos;
  let key: Path | undefined;
  let valueOrHash: Uint8Array | undefined;
  const children = new Map<number, Uint8Array>();
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'ProofNode');
        r.expect(tag, WIRE_LEN);
        key = readKey(r.sub());
        break;
      case 2:
        seen = once(seen, tag, 'ProofNode');
        r.expect(tag, WIRE_LEN);
        valueOrHash = readMaybeBytes(r.sub());
        break;
      case 3:
        r.expect(tag, WIRE_LEN);
        // At most BRANCH_FACTOR distinct indices pass the checks, so no count limit is needed.
        readChildEntry(r.sub(), children);
        break;
      default:
        r.skip(tag);
    }
  }
  if (key === undefined) throw new MissingField('proof node has no key', { offset: start, field: 'key' });
  return { key, valueOrHash, children };
}

function readProofNodeInto(r: Reader, tag: number, list: ProofNode[], limits: Limits, what: string): void {
  r.expect(tag, WIRE_LEN);
  checkCount(list.length, limits.maxProofNodes, what);
  list.push(readProofNode(r.sub()));
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

function readRangeProof(r: Reader, limits: Limits, views = false): RangeProof {
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
 * Reads an `Error { name = 1; message = 2 }` message (shared by every response envelope).
 *
 * @internal Takes the codec's own `Reader`; callers decode whole responses instead.
 */
export function readError(r: Reader): WireError {
  let name = '';
  let message = '';
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'Error');
        r.expect(tag, WIRE_LEN);
        name = r.string();
        break;
      case 2:
        seen = once(seen, tag, 'Error');
        r.expect(tag, WIRE_LEN);
        message = r.string();
        break;
      default:
        r.skip(tag);
    }
  }
  return { type: 'error', name, message };
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

function oneofTwice(message: string, start: number): never {
  throw new DuplicateField(`${message}: more than one field of oneof result`, { offset: start, field: 'result' });
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
