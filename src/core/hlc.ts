/**
 * A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): a wall-clock
 * millisecond time plus a counter, so timestamps follow causality (a receive is always later than
 * what it received) while staying close to real time. Deltas and announcements carry one
 * (docs/design.md, live updates); the DAG uses it to break ties between concurrent deltas.
 *
 * The wall clock is injected (`WallClock`), so tests are deterministic. Everything here is pure
 * except `HybridClock`, which only remembers the last timestamp it issued.
 */
import { compareBytes } from './bytes.ts';
import { errorClass, ProofsyncError } from './errors.ts';

export interface Hlc {
  /** Milliseconds since the Unix epoch; a safe non-negative integer. */
  wallMs: number;
  /** Logical counter within one `wallMs`; a u32. */
  counter: number;
  /** Optional 32-byte id of the clock's owner (a writer public key); the last tie-breaker. */
  writer?: Uint8Array;
}

/** Returns the current wall time in milliseconds. */
export type WallClock = () => number;

export const MAX_HLC_COUNTER = 0xffff_ffff;

/** A remote timestamp is further ahead of our wall clock than we accept. */
export const HlcDriftExceeded = errorClass(ProofsyncError, 'HlcDriftExceeded');

/** Throws `RangeError`/`TypeError` unless `t` is a well-formed timestamp. */
export function assertHlc(t: Hlc): void {
  if (!Number.isSafeInteger(t.wallMs) || t.wallMs < 0) {
    throw new RangeError(`expected hlc.wallMs to be a safe non-negative integer, got ${t.wallMs}`);
  }
  if (!Number.isInteger(t.counter) || t.counter < 0 || t.counter > MAX_HLC_COUNTER) {
    throw new RangeError(`expected hlc.counter to be a u32, got ${t.counter}`);
  }
  if (t.writer !== undefined) {
    if (!(t.writer instanceof Uint8Array)) throw new TypeError('expected hlc.writer to be a Uint8Array');
    if (t.writer.length !== 32) throw new RangeError(`expected 32-byte hlc.writer, got ${t.writer.length}`);
  }
}

/**
 * Total order: by `wallMs`, then `counter`, then `writer` bytes (absent first).
 * @example compareHlc({ wallMs: 1, counter: 0 }, { wallMs: 1, counter: 1 }) // < 0
 */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.writer === undefined) return b.writer === undefined ? 0 : -1;
  if (b.writer === undefined) return 1;
  return Math.sign(compareBytes(a.writer, b.writer));
}

/** The successor of (wallMs, counter): counter + 1, or the next millisecond when it would overflow. */
function bump(wallMs: number, counter: number): [number, number] {
  return counter >= MAX_HLC_COUNTER ? [wallMs + 1, 0] : [wallMs, counter + 1];
}

/**
 * The timestamp for a local event (a send), given the last one issued and the wall time now.
 * Always strictly greater than `last` in (wallMs, counter).
 * @example tickHlc({ wallMs: 5, counter: 0 }, 3) // { wallMs: 5, counter: 1 }
 */
export function tickHlc(last: Hlc, nowMs: number): Hlc {
  const now = Math.floor(nowMs);
  let wallMs: number;
  let counter: number;
  if (now > last.wallMs) [wallMs, counter] = [now, 0];
  else [wallMs, counter] = bump(last.wallMs, last.counter);
  return last.writer === undefined ? { wallMs, counter } : { wallMs, counter, writer: last.writer };
}

/**
 * The timestamp after receiving `remote`: strictly greater than both `last` and `remote` in
 * (wallMs, counter). With `maxDriftMs`, a remote time further than that ahead of `nowMs` is
 * refused with `HlcDriftExceeded` (a peer cannot push our clock arbitrarily far forward).
 */
export function receiveHlc(last: Hlc, remote: Hlc, nowMs: number, maxDriftMs = Infinity): Hlc {
  const now = Math.floor(nowMs);
  if (remote.wallMs - now > maxDriftMs) {
    throw new HlcDriftExceeded(
      `remote clock is ${remote.wallMs - now} ms ahead of ours (limit ${maxDriftMs} ms)`,
      { remoteWallMs: remote.wallMs, nowMs: now, maxDriftMs },
    );
  }
  let wallMs: number;
  let counter: number;
  const top = Math.max(last.wallMs, remote.wallMs);
  if (now > top) [wallMs, counter] = [now, 0];
  else if (last.wallMs === remote.wallMs) [wallMs, counter] = bump(top, Math.max(last.counter, remote.counter));
  else if (last.wallMs > remote.wallMs) [wallMs, counter] = bump(top, last.counter);
  else [wallMs, counter] = bump(top, remote.counter);
  return last.writer === undefined ? { wallMs, counter } : { wallMs, counter, writer: last.writer };
}

/**
 * A clock that remembers its last timestamp.
 * @example
 * const clock = new HybridClock(() => Date.now());
 * const t = clock.tick();
 */
export class HybridClock {
  private readonly wall: WallClock;
  private readonly maxDriftMs: number;
  private last: Hlc;

  constructor(wall: WallClock, options: { writer?: Uint8Array; maxDriftMs?: number; last?: Hlc } = {}) {
    this.wall = wall;
    this.maxDriftMs = options.maxDriftMs ?? Infinity;
    const start = options.last ?? { wallMs: 0, counter: 0 };
    this.last = options.writer === undefined ? { ...start } : { ...start, writer: options.writer };
    assertHlc(this.last);
  }

  /** The last timestamp issued. */
  now(): Hlc {
    return { ...this.last };
  }

  tick(): Hlc {
    this.last = tickHlc(this.last, this.wall());
    return { ...this.last };
  }

  receive(remote: Hlc): Hlc {
    this.last = receiveHlc(this.last, remote, this.wall(), this.maxDriftMs);
    return { ...this.last };
  }
}
