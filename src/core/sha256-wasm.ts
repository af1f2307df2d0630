/**
 * The SHA-256 block function (FIPS 180-4 §6.2.2) as a small WebAssembly module, emitted here
 * byte by byte: no toolchain, no binary blob in the repository. Trie node ids are millions of
 * ~500-byte messages (every live delta rehashes ~50 nodes, ~314 blocks), and a block function
 * in JavaScript is the largest share of the browser worker's CPU time. The
 * module's code is the 64 rounds unrolled with the working variables renamed instead of moved,
 * and the schedule in locals, which JavaScript cannot express (its typed-array reads are
 * bounds-checked and its 32-bit additions go through `| 0`).
 *
 * Memory (one 64 KiB page, exported as `m`): the state (8 words, native order) at 0, the states
 * saved after each block (`sha256Again`'s midstates) from `SAVE`, and the message from `MSG`.
 * `c(ptr, n, save)` compresses `n` blocks at `ptr` into the state, and when `save` is not 0
 * writes the state after each block there, 32 bytes apart.
 *
 * `sha256Wasm()` returns undefined where WebAssembly is missing or refused (a Content Security
 * Policy without 'wasm-unsafe-eval'): callers keep the JavaScript block function then.
 */

export const SAVE = 64;
/** Saved states at most (blocks of one message compressed with `save`). */
export const SAVE_MAX = 120;
export const MSG = SAVE + 32 * SAVE_MAX;
export const MEMORY_BYTES = 65536;

/** The round constants (FIPS 180-4 §4.2.2). */
export const ROUND_CONSTANTS = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

// opcodes (WebAssembly core specification §5.4)
const BLOCK = 0x02;
const LOOP = 0x03;
const IF = 0x04;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const EMPTY = 0x40;
const GET = 0x20;
const SET = 0x21;
const TEE = 0x22;
const LOAD = 0x28;
const STORE = 0x36;
const CONST = 0x41;
const EQZ = 0x45;
const ADD = 0x6a;
const SUB = 0x6b;
const AND = 0x71;
const OR = 0x72;
const XOR = 0x73;
const SHR_U = 0x76;
const ROTL = 0x77;
const ROTR = 0x78;
const I32 = 0x7f;

/** Unsigned LEB128 of `n`, appended to `out`. */
function uleb(out: number[], n: number): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

/** Signed LEB128 of the 32-bit `n`, appended to `out`. */
function sleb(out: number[], n: number): void {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** `body` appended to `out` as a section (id, byte length, bytes). */
function section(out: number[], id: number, body: readonly number[]): void {
  out.push(id);
  uleb(out, body.length);
  for (const b of body) out.push(b);
}

/** The body of `c(ptr, n, save)`, its byte length first (the code section's one entry). */
function compressBody(): number[] {
  // locals: 0 ptr, 1 n, 2 save (params); 3..10 the working variables; 11..74 the schedule; 75 a temporary
  const PTR = 0;
  const N = 1;
  const SAVED = 2;
  const VAR = 3;
  const W = 11;
  const T = 75;
  // One array, every byte pushed on its own: this runs once, cold (in the interpreter), at a
  // worker's first hash. With spreads and rest parameters it took 18-46 ms in a fresh Node 24
  // process and ~45 ms of a Chromium page's module evaluation; this way 20 ms at load 3 on 2
  // cores against 46 ms for the old one in the same minute (a scratch timing of the first
  // `sha256Module()` call in a fresh `node` process).
  const code: number[] = [1]; // one run of locals: T - 2 of them, i32
  uleb(code, T - 2);
  code.push(I32);
  const op = (b: number): void => void code.push(b);
  const get = (l: number): void => (code.push(GET), uleb(code, l));
  const set = (l: number): void => (code.push(SET), uleb(code, l));
  const tee = (l: number): void => (code.push(TEE), uleb(code, l));
  const konst = (v: number): void => (code.push(CONST), sleb(code, v));
  /** A load or store of the word at `offset`: 4-byte aligned (alignment exponent 2) or not (0). */
  const mem = (opcode: number, align: number, offset: number): void => (code.push(opcode, align), uleb(code, offset));
  // x ROTR a ^ x ROTR b ^ (x ROTR c, or x >>> c when `shift`)
  const sigma = (x: number, a: number, b: number, c: number, shift: boolean): void => {
    get(x), konst(a), op(ROTR);
    get(x), konst(b), op(ROTR), op(XOR);
    get(x), konst(c), op(shift ? SHR_U : ROTR), op(XOR);
  };

  code.push(BLOCK, EMPTY, LOOP, EMPTY);
  get(N), code.push(EQZ, BR_IF, 1);
  // the state into the working variables
  for (let i = 0; i < 8; i++) konst(0), mem(LOAD, 2, 4 * i), set(VAR + i);
  // W0..W15: big-endian words (a byte swap: rotations and masks)
  for (let i = 0; i < 16; i++) {
    get(PTR), mem(LOAD, 0, 4 * i), tee(T);
    konst(8), op(ROTL), konst(0x00ff00ff), op(AND);
    get(T), konst(8), op(ROTR), konst(0xff00ff00 | 0), op(AND), op(OR);
    set(W + i);
  }
  for (let i = 16; i < 64; i++) {
    get(W + i - 16);
    sigma(W + i - 15, 7, 18, 3, true), op(ADD);
    get(W + i - 7), op(ADD);
    sigma(W + i - 2, 17, 19, 10, true), op(ADD);
    set(W + i);
  }
  // rounds: variable r plays a..h at round i as VAR + ((r - i) mod 8); nothing is moved
  const v = (r: number, i: number): number => VAR + ((((r - i) % 8) + 8) % 8);
  for (let i = 0; i < 64; i++) {
    const a = v(0, i), b = v(1, i), c = v(2, i), d = v(3, i), ee = v(4, i), f = v(5, i), g = v(6, i), h = v(7, i);
    // T1 = h + Σ1(e) + Ch(e, f, g) + K[i] + W[i], Ch = g ^ (e & (f ^ g))
    get(h);
    sigma(ee, 6, 11, 25, false), op(ADD);
    get(g), get(ee), get(f), get(g), code.push(XOR, AND, XOR, ADD);
    konst(ROUND_CONSTANTS[i] | 0), op(ADD);
    get(W + i), op(ADD);
    tee(T);
    // d += T1 (the next round's e)
    get(d), op(ADD), set(d);
    // h = T1 + Σ0(a) + Maj(a, b, c) (the next round's a), Maj = (a & b) | (c & (a | b))
    get(T);
    sigma(a, 2, 13, 22, false), op(ADD);
    get(a), get(b), op(AND), get(c), get(a), get(b), code.push(OR, AND, OR, ADD);
    set(h);
  }
  // state += working variables (64 rounds: each variable is back in its own place)
  for (let i = 0; i < 8; i++) {
    konst(0), konst(0), mem(LOAD, 2, 4 * i), get(VAR + i), op(ADD), mem(STORE, 2, 4 * i);
  }
  get(SAVED), code.push(IF, EMPTY);
  for (let i = 0; i < 8; i++) get(SAVED), konst(0), mem(LOAD, 2, 4 * i), mem(STORE, 2, 4 * i);
  get(SAVED), konst(32), op(ADD), set(SAVED);
  op(END);
  get(PTR), konst(64), op(ADD), set(PTR);
  get(N), konst(1), op(SUB), set(N);
  code.push(BR, 0, END, END, END);
  const entry: number[] = [];
  uleb(entry, code.length);
  for (const b of code) entry.push(b);
  return entry;
}

/** The module's bytes. */
export function sha256Module(): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  // types: one, (i32, i32, i32) -> ()
  section(out, 1, [1, 0x60, 3, I32, I32, I32, 0]);
  // functions: one, of type 0
  section(out, 3, [1, 0]);
  // memories: one of MEMORY_BYTES, no maximum
  const memory = [1, 0x00];
  uleb(memory, MEMORY_BYTES / 65536);
  section(out, 5, memory);
  // exports: "c", function 0; "m", memory 0
  section(out, 7, [2, 1, 0x63, 0x00, 0, 1, 0x6d, 0x02, 0]);
  // code: one body
  const code = [1];
  for (const b of compressBody()) code.push(b);
  section(out, 10, code);
  return Uint8Array.from(out);
}

export interface Sha256Wasm {
  /** Compresses `n` blocks at byte `ptr` of `memory` into the state at 0; `save`: see the module comment. */
  compress(ptr: number, n: number, save: number): void;
  memory: WebAssembly.Memory;
}

let instance: Sha256Wasm | null | undefined;

/** The module, instantiated once (synchronously); undefined where WebAssembly cannot run it. */
export function sha256Wasm(): Sha256Wasm | undefined {
  if (instance === undefined) {
    try {
      const inst = new WebAssembly.Instance(new WebAssembly.Module(sha256Module() as Uint8Array<ArrayBuffer>));
      const ex = inst.exports as { c: (ptr: number, n: number, save: number) => void; m: WebAssembly.Memory };
      instance = { compress: ex.c, memory: ex.m };
    } catch {
      instance = null;
    }
  }
  return instance ?? undefined;
}
