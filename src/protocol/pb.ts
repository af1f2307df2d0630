/**
 * A small, strict protobuf reader and writer for hostile input (docs/wire.md#decoding-rules:
 * every bound is checked while decoding). Every failure is a typed
 * `DecodeError` from src/core/errors.ts (or one of the three defined here), never a
 * `RangeError` from an allocation or an out-of-bounds read.
 *
 * Rules the reader enforces:
 * - the whole message is at most `maxBytes` (checked before parsing: `MessageTooLarge`);
 * - a length prefix is checked against the bytes that remain *before* anything is allocated
 *   (`TruncatedInput`), so a 2^60-byte length costs nothing;
 * - varints are at most 10 bytes and at most `Number.MAX_SAFE_INTEGER` (`InvalidVarint`);
 *   uint32 fields at most 2^32 − 1;
 * - wire types 3 and 4 (groups), 6 and 7 are rejected (`InvalidWireType`), as is a known field
 *   sent with the wrong wire type; unknown fields of valid wire types are skipped (protobuf's
 *   forward compatibility) without being parsed, so garbage nested inside them costs nothing;
 * - a singular field seen twice is rejected (`DuplicateField`; protobuf would merge or let the
 *   last one win, which only an attacker needs);
 * - repeated fields are bounded by the caller's `maxItems` (`TooManyItems`, see `checkCount`).
 *
 * How to write a codec for a new message with it (codec.ts is the worked example):
 *
 * ```ts
 * // message Head { uint64 seq = 1; bytes root = 2; repeated bytes parents = 3; }
 * export function decodeHead(bytes: Uint8Array, maxBytes = 64 * 1024): Head {
 *   return readHead(Reader.of(bytes, maxBytes));
 * }
 * function readHead(r: Reader): Head {
 *   let seq = 0, root = EMPTY, seen = 0;
 *   const parents: Uint8Array[] = [];
 *   while (!r.done) {
 *     const tag = r.tag();
 *     switch (fieldOf(tag)) {
 *       case 1: seen = once(seen, tag, 'Head'); r.expect(tag, WIRE_VARINT); seq = r.uint64(); break;
 *       case 2: seen = once(seen, tag, 'Head'); r.expect(tag, WIRE_LEN); root = r.bytes(); break;
 *       case 3: r.expect(tag, WIRE_LEN); checkCount(parents.length, 64, 'Head.parents'); parents.push(r.bytes()); break;
 *       default: r.skip(tag);
 *     }
 *   }
 *   return { seq, root, parents };
 * }
 * // Sub-messages: `readX(r.sub())` reads a length-delimited field as its own bounded Reader.
 *
 * // Encoding is two passes with no intermediate buffers: a pure size function (proto3: fields
 * // holding their default value are omitted) and a writer into a buffer of exactly that size.
 * function headSize(h: Head): number {
 *   let n = uintFieldSize(1, h.seq) + bytesFieldSize(2, h.root.length, true);
 *   for (const p of h.parents) n += bytesFieldSize(3, p.length);
 *   return n;
 * }
 * export function encodeHead(h: Head): Uint8Array {
 *   const w = new Writer(headSize(h));
 *   w.uintField(1, h.seq).bytesField(2, h.root, true);
 *   for (const p of h.parents) w.bytesField(3, p);
 *   return w.finish();
 * }
 * // Sub-messages: `w.lenField(n, xSize(x)); writeX(w, x)`, and `lenFieldSize(n, xSize(x))`.
 * ```
 *
 * One file: the reader and the writer of one wire format, side by side so each field's encoding
 * and its bound read in both directions; the example above, for both, is the guide to writing a
 * codec with it.
 */
import { DecodeError, InvalidVarint, InvalidWireType, MessageTooLarge, TooManyItems, TrailingBytes, TruncatedInput, errorClass } from '../core/errors.ts';

const decodeError = (name: string) => errorClass(DecodeError, name);
/** A singular field (or a oneof) occurred more than once in one message. */
export const DuplicateField = decodeError('DuplicateField');
/** Field number 0 (protobuf field numbers start at 1). */
export const InvalidFieldNumber = decodeError('InvalidFieldNumber');
/** A `string` field that is not valid UTF-8. */
export const InvalidUtf8 = decodeError('InvalidUtf8');

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

const MAX_UINT32 = 0xffffffff;
const EMPTY = new Uint8Array(0);
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** The field number of a tag returned by `Reader.tag()`. */
export function fieldOf(tag: number): number {
  return tag >>> 3;
}

/** The wire type of a tag returned by `Reader.tag()`. */
export function wireOf(tag: number): number {
  return tag & 7;
}

/**
 * Marks a singular field as seen in `seen` (a bit set, fields 1..30) and returns the new set;
 * throws `DuplicateField` if it was already seen.
 */
export function once(seen: number, tag: number, message: string): number {
  const field = tag >>> 3;
  const bit = field < 31 ? 1 << field : 0;
  if ((seen & bit) !== 0) {
    throw new DuplicateField(`${message}: field ${field} occurs more than once`, { message, field });
  }
  return seen | bit;
}

/** Throws `TooManyItems` when a repeated field already holding `count` items may not take one more. */
export function checkCount(count: number, maxItems: number, what: string): void {
  if (count >= maxItems) {
    throw new TooManyItems(`${what}: more than ${maxItems} items`, { what, maxItems });
  }
}

/**
 * A cursor over `buf[pos, end)`. Sub-messages get their own `Reader` over a sub-range of the
 * same buffer (`sub()`), so nothing is copied until a field's bytes are taken with `bytes()`.
 *
 * @example
 * const r = Reader.of(bytes, 1024);
 * while (!r.done) { const tag = r.tag(); ... }
 */
export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** A reader over a whole message; `MessageTooLarge` if it is longer than `maxBytes`. */
  static of(bytes: Uint8Array, maxBytes: number): Reader {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`expected Uint8Array, got ${typeof bytes}`);
    if (bytes.length > maxBytes) {
      throw new MessageTooLarge(`message of ${bytes.length} bytes exceeds the limit of ${maxBytes}`, {
        size: bytes.length,
        maxBytes,
      });
    }
    return new Reader(bytes);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** An unsigned varint of at most 10 bytes whose value is at most `Number.MAX_SAFE_INTEGER`. */
  uint64(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos < end && buf[pos] < 0x80) {
      this.pos = pos + 1;
      return buf[pos];
    }
    const start = pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new TruncatedInput(`varint at offset ${start} is cut off`, { offset: start });
      const b = buf[pos++];
      if (i === 9 && b > 1) throw new InvalidVarint(`varint at offset ${start} overflows 64 bits`, { offset: start });
      // Every term is exact; rounding of the sum is monotone, so a value above 2^53 − 1 stays above it.
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) {
          throw new InvalidVarint(`varint at offset ${start} exceeds 2^53 - 1`, { offset: start });
        }
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    throw new InvalidVarint(`varint at offset ${start} is longer than 10 bytes`, { offset: start });
  }

  /** An unsigned varint of at most 2^32 − 1. */
  uint32(): number {
    const start = this.pos;
    const v = this.uint64();
    if (v > MAX_UINT32) throw new InvalidVarint(`varint at offset ${start} exceeds 2^32 - 1`, { offset: start });
    return v;
  }

  bool(): boolean {
    const start = this.pos;
    const v = this.uint64();
    if (v > 1) throw new InvalidVarint(`bool at offset ${start} is ${v}`, { offset: start });
    return v === 1;
  }

  /** A field tag: `fieldOf(tag)`, `wireOf(tag)`. Rejects field 0 and wire types 3, 4, 6, 7. */
  tag(): number {
    const start = this.pos;
    const tag = this.uint32();
    const wire = tag & 7;
    if (wire !== WIRE_VARINT && wire !== WIRE_LEN && wire !== WIRE_FIXED64 && wire !== WIRE_FIXED32) {
      throw new InvalidWireType(`wire type ${wire} at offset ${start} is not supported`, { offset: start, wire });
    }
    if (tag >>> 3 === 0) throw new InvalidFieldNumber(`field number 0 at offset ${start}`, { offset: start });
    return tag;
  }

  /** Throws `InvalidWireType` unless the (known) field of `tag` has wire type `wire`. */
  expect(tag: number, wire: number): void {
    if ((tag & 7) !== wire) {
      throw new InvalidWireType(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wire}`, {
        offset: this.pos,
        field: tag >>> 3,
        wire: tag & 7,
        expected: wire,
      });
    }
  }

  /** A length prefix, checked against the bytes that remain. */
  length(): number {
    const start = this.pos;
    const len = this.uint64();
    if (len > this.end - this.pos) {
      throw new TruncatedInput(`length ${len} at offset ${start} exceeds the ${this.end - this.pos} bytes that remain`, {
        offset: start,
        length: len,
        remaining: this.end - this.pos,
      });
    }
    return len;
  }

  /** A length-delimited field's bytes, copied (the result does not alias the input). */
  bytes(): Uint8Array {
    const len = this.length();
    if (len === 0) return new Uint8Array(0);
    const out = this.buf.slice(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** A length-delimited field's bytes as a view into the input (valid while the input is). */
  view(): Uint8Array {
    const len = this.length();
    const out = len === 0 ? EMPTY : this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** A length-delimited UTF-8 string; `InvalidUtf8` if it is not valid UTF-8. */
  string(): string {
    const start = this.pos;
    const v = this.view();
    try {
      return utf8Decoder.decode(v);
    } catch (cause) {
      throw new InvalidUtf8(`string at offset ${start} is not valid UTF-8`, { offset: start }, { cause });
    }
  }

  /** A length-delimited sub-message as its own reader over the same buffer. */
  sub(): Reader {
    const len = this.length();
    const r = new Reader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  /** Skips the value of an unknown field (the tag was already read) without parsing it. */
  skip(tag: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.uint64Skip();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN: {
        const len = this.length(); // not `this.pos += this.length()`: that adds to the old `pos`
        this.pos += len;
        return;
      }
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new InvalidWireType(`wire type ${tag & 7} is not supported`, { offset: this.pos, wire: tag & 7 });
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) {
      throw new TruncatedInput(`${n} bytes needed at offset ${this.pos}, ${this.end - this.pos} remain`, {
        offset: this.pos,
        needed: n,
      });
    }
    this.pos += n;
  }

  // An unknown varint field may hold any 64-bit value, even above 2^53: skip it without converting.
  private uint64Skip(): void {
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new TruncatedInput(`varint at offset ${start} is cut off`, { offset: start });
      const b = this.buf[this.pos++];
      if (i === 9 && b > 1) throw new InvalidVarint(`varint at offset ${start} overflows 64 bits`, { offset: start });
      if (b < 0x80) return;
    }
    throw new InvalidVarint(`varint at offset ${start} is longer than 10 bytes`, { offset: start });
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Bytes of the varint encoding of `n` (a non-negative safe integer). */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let v = Math.floor(n / 0x10000000);
  while (v > 0) {
    size++;
    v = Math.floor(v / 128);
  }
  return size;
}

/** Bytes of a tag for field `field`. */
export function tagSize(field: number): number {
  return varintSize(field * 8);
}

/** Bytes of a varint field; 0 for 0 (proto3 omits defaults). */
export function uintFieldSize(field: number, value: number): number {
  return value === 0 ? 0 : tagSize(field) + varintSize(value);
}

/**
 * Bytes of a length-delimited field of `length` bytes of content. With `omitEmpty` (proto3
 * scalar `bytes`/`string`), an empty value is omitted; message fields are always written.
 */
export function bytesFieldSize(field: number, length: number, omitEmpty = false): number {
  return omitEmpty && length === 0 ? 0 : tagSize(field) + varintSize(length) + length;
}

/** Bytes of a sub-message field whose content is `size` bytes (always present). */
export function lenFieldSize(field: number, size: number): number {
  return tagSize(field) + varintSize(size) + size;
}

/** Bytes of a UTF-8 string field (omitted when empty). */
export function stringFieldSize(field: number, value: string): number {
  return value.length === 0 ? 0 : bytesFieldSize(field, utf8Length(value));
}

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function checkUint(value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`expected an integer in [0, ${max}], got ${value}`);
  }
}

/**
 * Writes into a buffer of a size known in advance (from the size functions above); `finish()`
 * checks that exactly that many bytes were written.
 */
export class Writer {
  readonly buf: Uint8Array;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  /** A raw varint (a non-negative safe integer). */
  varint(n: number): this {
    const buf = this.buf;
    let pos = this.pos;
    while (n >= 0x80000000) {
      buf[pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    this.pos = pos;
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A varint field, omitted when 0 (proto3). `value` must be a safe non-negative integer. */
  uintField(field: number, value: number, max: number = Number.MAX_SAFE_INTEGER): this {
    checkUint(value, max);
    if (value === 0) return this;
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  /** A bytes field; with `omitEmpty`, an empty value is not written (proto3 scalar). */
  bytesField(field: number, value: Uint8Array, omitEmpty = false): this {
    if (omitEmpty && value.length === 0) return this;
    this.tag(field, WIRE_LEN).varint(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  /** A string field, omitted when empty. */
  stringField(field: number, value: string): this {
    if (value.length === 0) return this;
    const bytes = utf8Encoder.encode(value);
    return this.bytesField(field, bytes);
  }

  /** The tag and length prefix of a sub-message of `size` bytes; write its content next. */
  lenField(field: number, size: number): this {
    return this.tag(field, WIRE_LEN).varint(size);
  }

  finish(): Uint8Array {
    if (this.pos !== this.buf.length) {
      throw new Error(`internal: wrote ${this.pos} bytes, sized ${this.buf.length}`);
    }
    return this.buf;
  }
}

// ---------------------------------------------------------------------------------------------
// Framing: one varint length prefix per message (what it-length-prefixed does on a stream).

/** `varint(length) || message`. */
export function frame(message: Uint8Array): Uint8Array {
  const w = new Writer(varintSize(message.length) + message.length);
  w.varint(message.length);
  w.buf.set(message, w.pos);
  w.pos += message.length;
  return w.finish();
}

/**
 * The message inside one complete frame: `MessageTooLarge` if its prefix says more than
 * `maxBytes`, `TruncatedInput` if fewer bytes follow, `TrailingBytes` if more do. Returns a view.
 */
export function unframe(bytes: Uint8Array, maxBytes: number): Uint8Array {
  const r = new Reader(bytes);
  const len = r.uint64();
  if (len > maxBytes) {
    throw new MessageTooLarge(`frame of ${len} bytes exceeds the limit of ${maxBytes}`, { size: len, maxBytes });
  }
  if (len > r.remaining) {
    throw new TruncatedInput(`frame of ${len} bytes, ${r.remaining} present`, { length: len, remaining: r.remaining });
  }
  if (len < r.remaining) {
    throw new TrailingBytes(`${r.remaining - len} bytes after a frame of ${len}`, { length: len, trailing: r.remaining - len });
  }
  return bytes.subarray(r.pos);
}
