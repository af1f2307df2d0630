/**
 * The parts every proof message shares (docs/wire.md#proof-messages): decode limits, the
 * `Key`, `MaybeBytes` and `ProofNode` messages, and their sizes, writers and readers. The range
 * and change proof codecs (range-proof-codec.ts, change-proof-codec.ts) are built from these;
 * codec.ts is the one import path for all of them.
 */
import { DecodeError, InvalidChildId, InvalidChildIndex, InvalidKeyLength, MissingField, errorClass } from '../core/errors.ts';
import { BRANCH_FACTOR, packPath, unpackPath } from '../core/path.ts';
import type { Path, ProofNode } from '../core/types.ts';
import { Reader, WIRE_LEN, WIRE_VARINT, Writer, bytesFieldSize, checkCount, fieldOf, lenFieldSize, once, uintFieldSize } from './pb.ts';

/** The same child index occurs twice in one proof node. */
export const DuplicateChildIndex = errorClass(DecodeError, 'DuplicateChildIndex');

/** Bytes of a node id. */
export const ID_LENGTH = 32;
/** The largest value of a uint32 field (request limits). */
export const MAX_UINT32 = 0xffffffff;

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
 * Default bounds: 2 MiB per message (a served proof is below 2 MiB − 4 KiB, docs/proofs.md#serving, plus a
 * few bytes of envelope), 2048 key-values (the serving key limit, same section), 2048 proof nodes per proof
 * (a path has at most one node per token of the key plus the root: keys up to 1 KiB).
 */
export const DEFAULT_DECODE_LIMITS: Readonly<Required<DecodeLimits>> = Object.freeze({
  maxBytes: 2 * 1024 * 1024,
  maxProofNodes: 2048,
  maxKeyValues: 2048,
});

/** The item bounds the proof readers check (`DecodeLimits` with its defaults applied). */
export interface Limits {
  maxProofNodes: number;
  maxKeyValues: number;
}

/** `limits` with `DEFAULT_DECODE_LIMITS` filling what it leaves out. */
export function limitsOf(l: DecodeLimits | undefined): Required<DecodeLimits> {
  if (l === undefined) return DEFAULT_DECODE_LIMITS;
  return {
    maxBytes: l.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes,
    maxProofNodes: l.maxProofNodes ?? DEFAULT_DECODE_LIMITS.maxProofNodes,
    maxKeyValues: l.maxKeyValues ?? DEFAULT_DECODE_LIMITS.maxKeyValues,
  };
}

// =============================================================================================
// Sizes (proto3: scalar defaults omitted; message fields always written)

function keySize(path: Path): number {
  return uintFieldSize(1, path.length * 4) + bytesFieldSize(2, (path.length + 1) >> 1, true);
}

/** Encoded length of a `MaybeBytes` message holding `value`. */
export function maybeBytesSize(value: Uint8Array): number {
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

/** Encoded length of the proof nodes `nodes` written as repeated field `field`. */
export function proofSize(field: number, nodes: ProofNode[]): number {
  let n = 0;
  for (let i = 0; i < nodes.length; i++) n += lenFieldSize(field, proofNodeSize(nodes[i]));
  return n;
}

/** Encoded length of an optional `MaybeBytes` field: 0 when `value` is absent. */
export function maybeFieldSize(field: number, value: Uint8Array | undefined): number {
  return value === undefined ? 0 : lenFieldSize(field, maybeBytesSize(value));
}

// =============================================================================================
// Writing

function writeKey(w: Writer, path: Path): void {
  for (let i = 0; i < path.length; i++) {
    if (path[i] >= BRANCH_FACTOR) throw new RangeError(`expected path tokens below ${BRANCH_FACTOR}, got ${path[i]} at ${i}`);
  }
  w.uintField(1, path.length * 4).bytesField(2, packPath(path), true);
}

/** Writes an optional `MaybeBytes` field; nothing when `value` is absent. */
export function writeMaybeField(w: Writer, field: number, value: Uint8Array | undefined): void {
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

/** Writes `nodes` as repeated proof-node field `field`. */
export function writeProof(w: Writer, field: number, nodes: ProofNode[]): void {
  for (let i = 0; i < nodes.length; i++) {
    w.lenField(field, proofNodeSize(nodes[i]));
    writeProofNode(w, nodes[i]);
  }
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
export function readMaybeBytes(r: Reader): Uint8Array {
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

/** Reads one proof node of field `tag` onto `list`, refusing more than `limits.maxProofNodes`. */
export function readProofNodeInto(r: Reader, tag: number, list: ProofNode[], limits: Limits, what: string): void {
  r.expect(tag, WIRE_LEN);
  checkCount(list.length, limits.maxProofNodes, what);
  list.push(readProofNode(r.sub()));
}
