/**
 * Live-update deltas (docs/design.md, "live updates"): a writer-signed, content-addressed set of key
 * changes with causal parents, forming a DAG. This module is the canonical encoding, the id, the
 * signature and the strict wire decoder. The DAG itself is `dag.ts`.
 *
 * ## Canonical body encoding (everything but the id and the signature)
 * ```
 * tag        u8 = 0x01                                  (delta, version 1)
 * parents    uvarint(n) || n × 32-byte id               n ≥ 1, ids strictly increasing byte-wise;
 *                                                       the genesis parent (32 zero bytes) only alone
 * actions    uvarint(m) || m × action                   keys strictly increasing byte-wise
 *   action   uvarint(len(key)) || key || op
 *   op       0x00                                       delete
 *          | 0x01 || uvarint(len(value)) || value       put
 * hlc        u64be(wallMs) || u32be(counter) || writer
 *   writer   0x00                                       absent
 *          | 0x01 || 32 bytes                           present
 * stateRoot  32 bytes                                   the root after applying to its causal past
 * logIndex   u64be                                      position in the writer's history log
 * ```
 * `uvarint` is unsigned LEB128 in its shortest form; all u64 fields are at most 2^53 − 1.
 * Parents are a set, so they are sorted: one content, one encoding, one id.
 *
 * - `id = SHA-256(body)`. A receiver re-derives it from the content; a claimed id is never used.
 * - `signature = Ed25519(writerKey, "proofsync/delta/1" || id)`: plain Ed25519 (RFC 8032) over
 *   the context string (17 ASCII bytes) followed by the 32-byte id, as a libp2p Ed25519 peer id
 *   key signs. The context keeps a delta signature from ever verifying as an announcement's.
 * - Wire: `body || signature (64 bytes)`. The decoder is strict: every bound is checked before
 *   allocating, non-canonical bodies are refused, so `encode(decode(bytes))` equals `bytes`.
 *
 * One file: the delta's encoder, strict decoder, id and signature are one format (the table
 * above), kept side by side so each field's bound is checked in both directions; the byte
 * reader and writer (`WireReader`, `WireWriter`) and the HLC codec are that format's, and
 * announcement.ts reuses them.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from './sha256.ts';
import { compareBytes, concatBytes, equalBytes } from './bytes.ts';
import {
  DecodeError,
  InvalidVarint,
  MessageTooLarge,
  ProofsyncError,
  TooManyItems,
  TrailingBytes,
  TruncatedInput,
  errorClass,
  registerError,
} from './errors.ts';
import { assertHlc, type Hlc } from './hlc.ts';
import { EMPTY_ROOT, type KeyChange } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Errors

const decodeError = (name: string) => errorClass(DecodeError, name);
/** A structurally valid but non-canonical encoding: unknown tag or flag, unsorted or repeated items. */
export const NonCanonicalEncoding = decodeError('NonCanonicalEncoding');
/** A key, value or name longer than the decoder's limit. */
export const FieldTooLarge = decodeError('FieldTooLarge');
/** A u64 above 2^53 − 1, or a u32 field out of range. */
export const IntegerOutOfRange = decodeError('IntegerOutOfRange');

/** A signed object failed verification. */
export class VerificationError extends ProofsyncError {
  /** `'VerificationError'`; each subclass sets its own. */
  override readonly name: string = 'VerificationError';
}
registerError(VerificationError, 'VerificationError');
const verificationError = (name: string) => errorClass(VerificationError, name);
/** The id claimed for a delta is not the SHA-256 of its content. */
export const DeltaIdMismatch = verificationError('DeltaIdMismatch');
/** The Ed25519 signature does not verify under the writer's public key. */
export const InvalidSignature = verificationError('InvalidSignature');

// ---------------------------------------------------------------------------------------------
// Byte writer and strict reader, shared with announcement.ts

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Appends fields to a growing list of parts. */
export class WireWriter {
  private readonly parts: Uint8Array[] = [];

  u8(v: number): void {
    this.parts.push(Uint8Array.of(v));
  }

  raw(b: Uint8Array): void {
    this.parts.push(b);
  }

  uvarint(v: number): void {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    this.parts.push(Uint8Array.from(out));
  }

  u32be(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    this.parts.push(b);
  }

  u64be(v: number): void {
    const b = new Uint8Array(8);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, Math.floor(v / 2 ** 32));
    dv.setUint32(4, v >>> 0);
    this.parts.push(b);
  }

  bytesWithLength(b: Uint8Array): void {
    this.uvarint(b.length);
    this.raw(b);
  }

  finish(): Uint8Array {
    return concatBytes(...this.parts);
  }
}

/** Length in bytes of `uvarint(v)`. */
export function uvarintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Reads fields from hostile bytes; every failure is a typed `DecodeError`. */
export class WireReader {
  private readonly buf: Uint8Array;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new TruncatedInput(`truncated input: ${what} needs ${n} bytes, ${this.remaining} left`, {
        offset: this.pos,
      });
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  /** A copy (decoded objects never alias the input buffer). */
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Shortest-form LEB128, at most 2^53 − 1. */
  uvarint(what: string): number {
    let v = 0;
    let scale = 1;
    const start = this.pos;
    for (let i = 0; ; i++) {
      if (i >= 8) throw new InvalidVarint(`varint for ${what} is longer than 8 bytes`, { offset: start });
      const b = this.u8(what);
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new InvalidVarint(`varint for ${what} is not in shortest form`, { offset: start });
        break;
      }
      scale *= 0x80;
    }
    if (v > MAX_SAFE) throw new IntegerOutOfRange(`${what} exceeds 2^53 - 1`, { offset: start });
    return v;
  }

  u32be(what: string): number {
    this.need(4, what);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getUint32(0);
    this.pos += 4;
    return v;
  }

  u64be(what: string): number {
    this.need(8, what);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8);
    const hi = dv.getUint32(0);
    const lo = dv.getUint32(4);
    if (hi > 0x1f_ffff) throw new IntegerOutOfRange(`${what} exceeds 2^53 - 1`, { offset: this.pos });
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }

  /** A count that must not exceed `max`, nor claim more items than the bytes left could hold. */
  count(what: string, max: number, minItemBytes: number): number {
    const n = this.uvarint(`${what} count`);
    if (n > max) throw new TooManyItems(`${n} ${what} exceed the limit of ${max}`, { count: n, max });
    this.need(n * minItemBytes, `${n} ${what}`);
    return n;
  }

  /** `uvarint(len) || bytes`, with len at most `max`. */
  bytesWithLength(what: string, max: number): Uint8Array {
    const len = this.uvarint(`${what} length`);
    if (len > max) throw new FieldTooLarge(`${what} of ${len} bytes exceeds the limit of ${max}`, { length: len, max });
    return this.bytes(len, what);
  }

  end(): void {
    if (this.remaining !== 0) {
      throw new TrailingBytes(`${this.remaining} trailing bytes after the message`, { offset: this.pos });
    }
  }
}

// HLC field, shared with announcement.ts.
export function writeHlc(w: WireWriter, t: Hlc): void {
  w.u64be(t.wallMs);
  w.u32be(t.counter);
  if (t.writer === undefined) w.u8(0);
  else {
    w.u8(1);
    w.raw(t.writer);
  }
}

export function readHlc(r: WireReader): Hlc {
  const wallMs = r.u64be('hlc wallMs');
  const counter = r.u32be('hlc counter');
  const flag = r.u8('hlc writer flag');
  if (flag === 0) return { wallMs, counter };
  if (flag === 1) return { wallMs, counter, writer: r.bytes(32, 'hlc writer') };
  throw new NonCanonicalEncoding(`hlc writer flag must be 0 or 1, got ${flag}`, { offset: r.pos - 1 });
}

export const HLC_ENCODED_MIN = 13;

/** Reads `uvarint(n) || n × 32-byte ids`, strictly increasing. */
export function readSortedIds(r: WireReader, what: string, max: number, min: number): Uint8Array[] {
  const n = r.count(what, max, 32);
  if (n < min) throw new NonCanonicalEncoding(`expected at least ${min} ${what}, got ${n}`, { offset: r.pos });
  const ids: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.bytes(32, what);
    if (i > 0 && compareBytes(ids[i - 1], id) >= 0) {
      throw new NonCanonicalEncoding(`${what} must be strictly increasing (item ${i})`, { offset: r.pos - 32 });
    }
    ids.push(id);
  }
  return ids;
}

/** Throws `RangeError` unless every id is 32 bytes and the list is strictly increasing. */
export function assertSortedIds(ids: Uint8Array[], what: string): void {
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] instanceof Uint8Array)) throw new TypeError(`expected ${what}[${i}] to be a Uint8Array`);
    if (ids[i].length !== 32) throw new RangeError(`expected 32-byte ${what}[${i}], got ${ids[i].length}`);
    if (i > 0 && compareBytes(ids[i - 1], ids[i]) >= 0) {
      throw new RangeError(`expected ${what} strictly increasing, item ${i} is not`);
    }
  }
}

/** Sorted, de-duplicated copy of a list of ids: the canonical form of a set. */
export function canonicalIds(ids: Uint8Array[]): Uint8Array[] {
  const sorted = [...ids].sort(compareBytes);
  return sorted.filter((id, i) => i === 0 || !equalBytes(sorted[i - 1], id));
}

// ---------------------------------------------------------------------------------------------
// Deltas

export interface UnsignedDelta {
  /** 32-byte ids; sorted strictly increasing. `[EMPTY_ROOT]` for the first delta. */
  parents: Uint8Array[];
  /** Puts (`value` set) and deletes (`value` undefined), keys strictly increasing. */
  actions: KeyChange[];
  hlc: Hlc;
  /** 32-byte state root after applying this delta to the state of its causal past. */
  stateRoot: Uint8Array;
  /** Position of this delta in the writer's history log (docs/mmr.md). */
  logIndex: number;
}

export interface Delta extends UnsignedDelta {
  /** SHA-256 of the canonical body. Only trust it on a `VerifiedDelta`. */
  id: Uint8Array;
  /** 64-byte Ed25519 signature over `"proofsync/delta/1" || id`. */
  signature: Uint8Array;
}

declare const verifiedBrand: unique symbol;
/** A delta whose id was re-derived from its content and whose signature verified. */
export type VerifiedDelta = Delta & { readonly [verifiedBrand]: true };

export interface DeltaLimits {
  /** Whole wire message. */
  maxBytes: number;
  maxParents: number;
  maxActions: number;
  maxKeyBytes: number;
  maxValueBytes: number;
}

export const DEFAULT_DELTA_LIMITS: Readonly<DeltaLimits> = Object.freeze({
  maxBytes: 4 * 1024 * 1024,
  maxParents: 64,
  maxActions: 16_384,
  maxKeyBytes: 4096,
  maxValueBytes: 1024 * 1024,
});

export const DELTA_TAG = 0x01;
export const SIGNATURE_BYTES = 64;
export const DELTA_SIGNING_CONTEXT: Uint8Array = new TextEncoder().encode('proofsync/delta/1');

function assertUnsignedDelta(d: UnsignedDelta): void {
  if (!Array.isArray(d.parents) || d.parents.length === 0) {
    throw new RangeError('expected at least one parent (use [EMPTY_ROOT] for the first delta)');
  }
  assertSortedIds(d.parents, 'parents');
  if (d.parents.length > 1 && d.parents.some((p) => equalBytes(p, EMPTY_ROOT))) {
    throw new RangeError('the genesis parent may only appear alone');
  }
  for (let i = 0; i < d.actions.length; i++) {
    const a = d.actions[i];
    if (!(a.key instanceof Uint8Array)) throw new TypeError(`expected actions[${i}].key to be a Uint8Array`);
    if (a.value !== undefined && !(a.value instanceof Uint8Array)) {
      throw new TypeError(`expected actions[${i}].value to be a Uint8Array or undefined`);
    }
    if (i > 0 && compareBytes(d.actions[i - 1].key, a.key) >= 0) {
      throw new RangeError(`expected action keys strictly increasing, actions[${i}] is not`);
    }
  }
  assertHlc(d.hlc);
  if (!(d.stateRoot instanceof Uint8Array) || d.stateRoot.length !== 32) {
    throw new RangeError(`expected 32-byte stateRoot, got ${d.stateRoot?.length}`);
  }
  if (!Number.isSafeInteger(d.logIndex) || d.logIndex < 0) {
    throw new RangeError(`expected logIndex to be a safe non-negative integer, got ${d.logIndex}`);
  }
}

/**
 * The canonical body (module comment). Throws `RangeError`/`TypeError` on a malformed delta.
 * @example const body = encodeDeltaBody({ parents: [EMPTY_ROOT], actions: [], hlc, stateRoot, logIndex: 0 });
 */
export function encodeDeltaBody(d: UnsignedDelta): Uint8Array {
  assertUnsignedDelta(d);
  const w = new WireWriter();
  w.u8(DELTA_TAG);
  w.uvarint(d.parents.length);
  for (const p of d.parents) w.raw(p);
  w.uvarint(d.actions.length);
  for (const a of d.actions) {
    w.bytesWithLength(a.key);
    if (a.value === undefined) w.u8(0);
    else {
      w.u8(1);
      w.bytesWithLength(a.value);
    }
  }
  writeHlc(w, d.hlc);
  w.raw(d.stateRoot);
  w.u64be(d.logIndex);
  return w.finish();
}

/** `SHA-256(encodeDeltaBody(d))`: the delta's content address. */
export function deltaId(d: UnsignedDelta): Uint8Array {
  return sha256(encodeDeltaBody(d));
}

/** Length of the wire encoding, without encoding (for pending-store byte accounting). */
export function deltaWireLength(d: UnsignedDelta): number {
  let n = 1 + uvarintLength(d.parents.length) + 32 * d.parents.length + uvarintLength(d.actions.length);
  for (const a of d.actions) {
    n += uvarintLength(a.key.length) + a.key.length + 1;
    if (a.value !== undefined) n += uvarintLength(a.value.length) + a.value.length;
  }
  n += HLC_ENCODED_MIN + (d.hlc.writer === undefined ? 0 : 32);
  return n + 32 + 8 + SIGNATURE_BYTES;
}

function signingMessage(context: Uint8Array, digest: Uint8Array): Uint8Array {
  return concatBytes(context, digest);
}

/** Ed25519 over `context || digest`; a malformed key or signature verifies as false. */
export function verifySignature(
  context: Uint8Array,
  digest: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return ed25519.verify(signature, signingMessage(context, digest), publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * `verifySignature` through the runtime's WebCrypto Ed25519 where it has one (browsers since
 * 2024, Node): native code, where a first noble verify on a cold page costs JIT warm-up and
 * table building on the critical path (≈20 ms of the light client worker's first `getVerified`,
 * measured). Where WebCrypto lacks Ed25519 or will not decide (a key it refuses to import),
 * noble's answer stands.
 *
 * @example
 * if (!(await verifySignatureAsync(ANNOUNCEMENT_SIGNING_CONTEXT, digest, sig, writerKey))) throw ...;
 */
export async function verifySignatureAsync(
  context: Uint8Array,
  digest: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    try {
      const key = await subtle.importKey('raw', publicKey.slice(), { name: 'Ed25519' }, false, ['verify']);
      return await subtle.verify({ name: 'Ed25519' }, key, signature.slice(), signingMessage(context, digest).slice());
    } catch {
      // no Ed25519 in this WebCrypto, or a key it refuses: noble decides
    }
  }
  return verifySignature(context, digest, signature, publicKey);
}

export function signDigest(context: Uint8Array, digest: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new RangeError(`expected 32-byte Ed25519 secret key, got ${secretKey?.length}`);
  }
  return ed25519.sign(signingMessage(context, digest), secretKey);
}

/** Signs `context || digest` with the writer key: the portable `signDigest`, or a native one (src/node/signer.ts). */
export type DigestSigner = (context: Uint8Array, digest: Uint8Array) => Uint8Array;

/**
 * Signs a delta with `sign` and returns it with its wire encoding (`encodeDelta`), encoding the
 * body once: parents in canonical order (sorted, de-duplicated), id = SHA-256 of the body;
 * actions must already be sorted by key.
 * @example
 * const { delta, bytes } = signDeltaWith(unsigned, (c, d) => signDigest(c, d, sk));
 */
export function signDeltaWith(unsigned: UnsignedDelta, sign: DigestSigner): { delta: VerifiedDelta; bytes: Uint8Array } {
  const d: UnsignedDelta = {
    parents: canonicalIds(unsigned.parents),
    actions: unsigned.actions,
    hlc: unsigned.hlc,
    stateRoot: unsigned.stateRoot,
    logIndex: unsigned.logIndex,
  };
  const body = encodeDeltaBody(d);
  const id = sha256(body);
  const signature = sign(DELTA_SIGNING_CONTEXT, id);
  return { delta: { ...d, id, signature } as VerifiedDelta, bytes: concatBytes(body, signature) };
}

/**
 * Signs a delta with the writer's 32-byte Ed25519 secret key (seed) (`signDeltaWith` over the
 * portable signer).
 * @example
 * const d = signDelta({ parents: [EMPTY_ROOT], actions: [{ key, value }], hlc, stateRoot, logIndex: 0 }, sk);
 * verifyDelta(d, ed25519.getPublicKey(sk));
 */
export function signDelta(unsigned: UnsignedDelta, secretKey: Uint8Array): VerifiedDelta {
  return signDeltaWith(unsigned, (context, digest) => signDigest(context, digest, secretKey)).delta;
}

/**
 * Re-derives the id from the content (`DeltaIdMismatch` if the claimed id differs) and checks
 * the signature over it (`InvalidSignature`). A malformed delta object throws `RangeError`.
 * Returns the same delta, branded as verified.
 */
export function verifyDelta(delta: Delta, writerPublicKey: Uint8Array): VerifiedDelta {
  const id = deltaId(delta);
  if (!equalBytes(id, delta.id)) {
    throw new DeltaIdMismatch('the delta id is not the hash of its content', { claimed: delta.id, derived: id });
  }
  if (!verifySignature(DELTA_SIGNING_CONTEXT, id, delta.signature, writerPublicKey)) {
    throw new InvalidSignature('the delta signature does not verify under the writer key', { id });
  }
  return delta as VerifiedDelta;
}

/** Wire encoding: `body || signature`. */
export function encodeDelta(d: Delta): Uint8Array {
  if (!(d.signature instanceof Uint8Array) || d.signature.length !== SIGNATURE_BYTES) {
    throw new RangeError(`expected 64-byte signature, got ${d.signature?.length}`);
  }
  return concatBytes(encodeDeltaBody(d), d.signature);
}

/**
 * Strict, bounded decoder of `encodeDelta` output. The returned id is derived from the bytes
 * (never read from them); the signature is NOT checked here: call `verifyDelta`.
 * Every failure is a `DecodeError` subclass.
 */
export function decodeDelta(bytes: Uint8Array, limits: Partial<DeltaLimits> = {}): Delta {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  const lim = { ...DEFAULT_DELTA_LIMITS, ...limits };
  if (bytes.length > lim.maxBytes) {
    throw new MessageTooLarge(`delta of ${bytes.length} bytes exceeds the limit of ${lim.maxBytes}`, {
      length: bytes.length,
      max: lim.maxBytes,
    });
  }
  const r = new WireReader(bytes);
  const tag = r.u8('tag');
  if (tag !== DELTA_TAG) throw new NonCanonicalEncoding(`expected delta tag 0x01, got 0x${tag.toString(16)}`);
  const parents = readSortedIds(r, 'parents', lim.maxParents, 1);
  if (parents.length > 1 && equalBytes(parents[0], EMPTY_ROOT)) {
    throw new NonCanonicalEncoding('the genesis parent may only appear alone');
  }
  const m = r.count('actions', lim.maxActions, 2);
  const actions: KeyChange[] = [];
  for (let i = 0; i < m; i++) {
    const key = r.bytesWithLength('key', lim.maxKeyBytes);
    if (i > 0 && compareBytes(actions[i - 1].key, key) >= 0) {
      throw new NonCanonicalEncoding(`action keys must be strictly increasing (action ${i})`, { offset: r.pos });
    }
    const op = r.u8('action op');
    if (op === 0) actions.push({ key, value: undefined });
    else if (op === 1) actions.push({ key, value: r.bytesWithLength('value', lim.maxValueBytes) });
    else throw new NonCanonicalEncoding(`action op must be 0 or 1, got ${op}`, { offset: r.pos - 1 });
  }
  const hlc = readHlc(r);
  const stateRoot = r.bytes(32, 'stateRoot');
  const logIndex = r.u64be('logIndex');
  const bodyEnd = r.pos;
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.end();
  // The body was checked to be canonical, so its bytes are exactly encodeDeltaBody's output.
  const id = sha256(bytes.subarray(0, bodyEnd));
  return { id, parents, actions, hlc, stateRoot, logIndex, signature };
}
