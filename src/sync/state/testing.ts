/**
 * Test helpers for the state sync (not used by the library): a seeded random source, random
 * writer changes, and a target channel (an async iterable the test pushes roots into).
 */
import type { MerkleDatabase } from '../../core/database.ts';
import type { KeyChange, KeyValue } from '../../core/types.ts';
import type { Mutex } from './memory-source.ts';

/** mulberry32: a small deterministic PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rnd: () => number, min: number, max: number): Uint8Array {
  const out = new Uint8Array(min + Math.floor(rnd() * (max - min + 1)));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  return out;
}

/** `n` random puts (keys 1–8 bytes, values 0–40 bytes, some ≥ 32 so they are hashed). */
export function randomPuts(rnd: () => number, n: number, keyPrefix?: Uint8Array): KeyChange[] {
  const out: KeyChange[] = [];
  for (let i = 0; i < n; i++) {
    let key = randomBytes(rnd, 1, 8);
    if (keyPrefix) {
      const k = new Uint8Array(keyPrefix.length + key.length);
      k.set(keyPrefix);
      k.set(key, keyPrefix.length);
      key = k;
    }
    out.push({ key, value: randomBytes(rnd, 0, 40) });
  }
  return out;
}

export async function allEntries(db: { entries(start?: Uint8Array, end?: Uint8Array): AsyncIterable<KeyValue> }): Promise<KeyValue[]> {
  const out: KeyValue[] = [];
  for await (const kv of db.entries()) out.push(kv);
  return out;
}

/** Commits `n` random changes to `db`: updates and deletes of existing keys, and new keys. */
export async function mutate(db: MerkleDatabase, rnd: () => number, n: number, lock?: Mutex): Promise<Uint8Array> {
  if (lock) return lock.run(() => mutate(db, rnd, n));
  const existing = await allEntries(db);
  const changes: KeyChange[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (existing.length && r < 0.35) changes.push({ key: existing[Math.floor(rnd() * existing.length)].key, value: undefined });
    else if (existing.length && r < 0.7) changes.push({ key: existing[Math.floor(rnd() * existing.length)].key, value: randomBytes(rnd, 0, 40) });
    else changes.push(...randomPuts(rnd, 1));
  }
  return db.commit(changes);
}

/** An async iterable of roots the test pushes into and closes. */
export class TargetChannel implements AsyncIterable<Uint8Array> {
  readonly #items: Uint8Array[] = [];
  #closed = false;
  #wake: (() => void) | undefined;

  push(root: Uint8Array): void {
    this.#items.push(root);
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  get closed(): boolean {
    return this.#closed;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      while (this.#items.length === 0 && !this.#closed) await new Promise<void>((r) => (this.#wake = r));
      if (this.#items.length) yield this.#items.shift()!;
      else return;
    }
  }
}
