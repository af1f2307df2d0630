/**
 * SHA-256 (FIPS 180-4) for the hot path: trie node ids and value digests are millions of short
 * messages, where a general-purpose hasher's per-call allocations dominate (measured: noble's
 * one-shot sha256 spends as much time creating its state and views as compressing). This one
 * keeps its state, schedule and padding buffer in module scope and allocates only the digest.
 * It is checked against @noble/hashes on random inputs of every length class in its tests.
 */

import { MEMORY_BYTES, MSG, ROUND_CONSTANTS, SAVE, SAVE_MAX, sha256Wasm, type Sha256Wasm } from './sha256-wasm.ts';

const K = Uint32Array.from(ROUND_CONSTANTS);
const W = new Int32Array(64);
const H = new Int32Array(8);
const tail = new Uint8Array(128);

function compress(m: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) W[i] = (m[off] << 24) | (m[off + 1] << 16) | (m[off + 2] << 8) | m[off + 3];
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15];
    const w2 = W[i - 2];
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = H[0];
  let b = H[1];
  let c = H[2];
  let d = H[3];
  let e = H[4];
  let f = H[5];
  let g = H[6];
  let h = H[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = (H[0] + a) | 0;
  H[1] = (H[1] + b) | 0;
  H[2] = (H[2] + c) | 0;
  H[3] = (H[3] + d) | 0;
  H[4] = (H[4] + e) | 0;
  H[5] = (H[5] + f) | 0;
  H[6] = (H[6] + g) | 0;
  H[7] = (H[7] + h) | 0;
}

const IV = new Int32Array([0x6a09e667, 0xbb67ae85 | 0, 0x3c6ef372, 0xa54ff53a | 0, 0x510e527f, 0x9b05688c | 0, 0x1f83d9ab, 0x5be0cd19]);

// The block function in WebAssembly where it runs (sha256-wasm.ts), for messages that fit its
// memory; the JavaScript one above otherwise. Instantiated at the first hash (or `warmSha256`),
// not at import: emitting the module runs cold and took ~45 ms of a Chromium page's module
// evaluation (performance marks around it in the built e2e test page), paid by every page and
// worker that imports this, hashing or not. undefined: not tried yet; null: cannot run here.
let wasm: Sha256Wasm | null | undefined;
let mem8: Uint8Array | undefined;
let mem32: Int32Array | undefined;

function instantiate(): Sha256Wasm | null {
  wasm = sha256Wasm() ?? null;
  if (wasm) {
    mem8 = new Uint8Array(wasm.memory.buffer);
    mem32 = new Int32Array(wasm.memory.buffer);
  }
  return wasm;
}

/** Instantiates the block function now, off the way to the first hash (a worker while it waits on the network). */
export function warmSha256(): void {
  if (wasm === undefined) instantiate();
}
/** Longest message hashed in the module's memory (room left for two blocks of padding). */
const WASM_MAX = MEMORY_BYTES - MSG - 128;

/**
 * A buffer to build messages in before hashing them (hash.ts's node preimages): the module's
 * message area, so `sha256(buffer, length)` copies nothing; a plain array without WebAssembly.
 */
export function messageBuffer(): Uint8Array {
  if (wasm === undefined) instantiate();
  return mem8 ? mem8.subarray(MSG, MSG + WASM_MAX) : new Uint8Array(4096);
}

/** Puts `msg[0..length)` at the module's message area (nothing to do when it is already there). */
function toModule(msg: Uint8Array, length: number): void {
  // byteOffset first: `buffer` of a small array V8 keeps on its heap moves it off the heap
  // (200,000 fresh 64-byte arrays, Node 24: `.buffer` 33-198 ms, `.byteOffset` 4-66 ms; a
  // scratch loop). Values copied out of answers are such arrays, each hashed once.
  if (msg.byteOffset === MSG && msg.buffer === mem8!.buffer) return;
  mem8!.set(length === msg.length ? msg : msg.subarray(0, length), MSG);
}

/** Pads the message at the module's message area and compresses its last block(s) onto the state there; returns the digest. */
function finishWasm(full: number, len: number): Uint8Array {
  const m = mem8!;
  const rest = len - full;
  const blocks = rest + 9 > 64 ? 2 : 1;
  const at = MSG + full;
  const end = at + blocks * 64;
  m[MSG + len] = 0x80;
  m.fill(0, MSG + len + 1, end - 5);
  const bits = len * 8;
  m[end - 5] = Math.floor(len / 0x20000000);
  m[end - 4] = bits >>> 24;
  m[end - 3] = bits >>> 16;
  m[end - 2] = bits >>> 8;
  m[end - 1] = bits;
  wasm!.compress(at, blocks, 0);
  return digestOf(mem32!);
}

/** The digest of the state in `h[0..8)`: its words big-endian. */
function digestOf(h: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const x = h[i];
    out[4 * i] = x >>> 24;
    out[4 * i + 1] = x >>> 16;
    out[4 * i + 2] = x >>> 8;
    out[4 * i + 3] = x;
  }
  return out;
}

/** SHA-256 of `msg` (up to 2^32 bytes), or of its first `length` bytes. */
export function sha256(msg: Uint8Array, length: number = msg.length): Uint8Array {
  const full = length - (length % 64);
  const w = wasm === undefined ? instantiate() : wasm;
  if (w && length <= WASM_MAX) {
    toModule(msg, length);
    mem32!.set(IV);
    if (full > 0) w.compress(MSG, full / 64, 0);
    return finishWasm(full, length);
  }
  return sha256Js(msg, length);
}

/** `sha256` with the JavaScript block function only (tests compare the two). */
export function sha256Js(msg: Uint8Array, length: number = msg.length): Uint8Array {
  H.set(IV);
  const full = length - (length % 64);
  for (let off = 0; off < full; off += 64) compress(msg, off);
  return finish(msg, full, length);
}

/** Pads and compresses the last partial block (`msg[full..len)`) and returns the digest of H. */
function finish(msg: Uint8Array, full: number, len: number): Uint8Array {
  const rest = len - full;
  const blocks = rest + 9 > 64 ? 2 : 1;
  const end = blocks * 64;
  for (let i = 0; i < rest; i++) tail[i] = msg[full + i];
  tail[rest] = 0x80;
  for (let i = rest + 1; i < end - 8; i++) tail[i] = 0;
  tail[end - 8] = 0;
  tail[end - 7] = 0;
  tail[end - 6] = 0;
  const bits = len * 8;
  tail[end - 4] = bits >>> 24;
  tail[end - 3] = bits >>> 16;
  tail[end - 2] = bits >>> 8;
  tail[end - 1] = bits;
  tail[end - 5] = Math.floor(len / 0x20000000); // high bits of the 64-bit length
  compress(tail, 0);
  if (blocks === 2) compress(tail, 64);
  return digestOf(H);
}

/**
 * What `sha256Again` keeps of one message hashed again and again with small changes: its bytes
 * as last hashed and the state after each of its whole blocks. A trie node high in the tree is
 * such a message: each update changes one child id in it, and the blocks before that id need
 * not be compressed again.
 */
export class Sha256Midstates {
  bytes = new Uint8Array(0);
  length = 0;
  /** The state after block k (k = 1..`blocks`) at words 8(k-1)..8k-1. */
  states = new Int32Array(0);
  blocks = 0;
}

/**
 * `sha256(msg, length)`, compressing only the whole blocks from the first byte that differs from
 * the message `m` last saw (and updating `m`).
 */
export function sha256Again(msg: Uint8Array, length: number, m: Sha256Midstates): Uint8Array {
  const full = length - (length % 64);
  const blocks = full / 64;
  const limit = Math.min(length, m.length);
  const old = m.bytes;
  let same = 0;
  while (same < limit && msg[same] === old[same]) same++;
  const reuse = Math.min(Math.floor(same / 64), blocks, m.blocks);
  if (m.states.length < blocks * 8) {
    const grown = new Int32Array(blocks * 8);
    grown.set(m.states.subarray(0, reuse * 8));
    m.states = grown;
  }
  const inModule = (wasm === undefined ? instantiate() : wasm) !== null && length <= WASM_MAX && blocks <= SAVE_MAX;
  if (inModule) toModule(msg, length);
  compressBlocks(msg, reuse, blocks, m, inModule);
  if (m.bytes.length < length) {
    const grown = new Uint8Array(length + 64);
    grown.set(old.subarray(0, same));
    m.bytes = grown;
  }
  const bytes = m.bytes;
  for (let i = same; i < length; i++) bytes[i] = msg[i];
  m.length = length;
  return inModule ? finishWasm(full, length) : finish(msg, full, length);
}

/**
 * The digest of the message `m.bytes[0..m.length)` (as `sha256Again` left it, then edited in
 * place by the caller from byte `from` on), compressing only the whole blocks from `from`.
 */
export function sha256Resume(m: Sha256Midstates, from: number): Uint8Array {
  const length = m.length;
  const full = length - (length % 64);
  const blocks = full / 64;
  const reuse = Math.min(Math.floor(from / 64), blocks, m.blocks);
  const bytes = m.bytes;
  const inModule = (wasm === undefined ? instantiate() : wasm) !== null && length <= WASM_MAX && blocks <= SAVE_MAX;
  // the blocks before `reuse` are not needed again: the module gets the rest only
  if (inModule) mem8!.set(bytes.subarray(reuse * 64, length), MSG + reuse * 64);
  compressBlocks(bytes, reuse, blocks, m, inModule);
  return inModule ? finishWasm(full, length) : finish(bytes, full, length);
}

/**
 * Compresses whole blocks `reuse..blocks` of a message (at the module's message area when
 * `inModule`, else `msg`) from the state `m` saved after block `reuse`, saving the state after
 * each block in `m`.
 */
function compressBlocks(msg: Uint8Array, reuse: number, blocks: number, m: Sha256Midstates, inModule: boolean): void {
  if (inModule) {
    if (reuse === 0) mem32!.set(IV);
    else mem32!.set(m.states.subarray(8 * (reuse - 1), 8 * reuse));
    if (blocks > reuse) {
      wasm!.compress(MSG + reuse * 64, blocks - reuse, SAVE);
      m.states.set(mem32!.subarray(SAVE / 4, SAVE / 4 + 8 * (blocks - reuse)), 8 * reuse);
    }
  } else {
    if (reuse === 0) H.set(IV);
    else for (let i = 0; i < 8; i++) H[i] = m.states[8 * (reuse - 1) + i];
    for (let b = reuse; b < blocks; b++) {
      compress(msg, b * 64);
      for (let i = 0; i < 8; i++) m.states[8 * b + i] = H[i];
    }
  }
  m.blocks = blocks;
}
