/**
 * A deliberately naive, independent computation of the merkledb root (docs/hashing.md),
 * used only by tests to cross-check the real trie and builder. It shares no code with them:
 * its own nibble split, its own varint and pre-image layout, recursion over a plain key list.
 */
import { sha256 } from '@noble/hashes/sha2.js';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

const nibbles = (b: Uint8Array): number[] => [...b].flatMap((x) => [x >> 4, x & 15]);

function pack(ns: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ns.length; i += 2) out.push((ns[i] << 4) | (ns[i + 1] ?? 0));
  return out;
}

function nodeId(key: number[], value: Uint8Array | undefined, kids: [number, Uint8Array][]): Uint8Array {
  const pre: number[] = [...varint(kids.length)];
  for (const [i, id] of kids) pre.push(...varint(i), ...id);
  if (value === undefined) pre.push(0);
  else {
    const d = value.length < 32 ? [...value] : [...sha256(value)];
    pre.push(1, ...varint(d.length), ...d);
  }
  pre.push(...varint(key.length * 4), ...pack(key));
  return sha256(Uint8Array.from(pre));
}

/** Root of the trie holding `kvs` (keys as hex strings, for an independent representation). */
export function naiveRoot(kvs: Map<string, Uint8Array>): Uint8Array {
  const entries = [...kvs.entries()].map(([k, v]) => ({ p: nibbles(Uint8Array.from(Buffer.from(k, 'hex'))), v }));
  if (entries.length === 0) return new Uint8Array(32);
  return sub(entries, []).id;
}

function sub(entries: { p: number[]; v: Uint8Array }[], prefix: number[]): { id: Uint8Array } {
  // extend prefix while every entry shares the next token and none ends here
  let pre = prefix;
  for (;;) {
    if (entries.some((e) => e.p.length === pre.length)) break;
    const t = entries[0].p[pre.length];
    if (entries.length > 1 && entries.every((e) => e.p[pre.length] === t)) pre = [...pre, t];
    else if (entries.length === 1) {
      pre = entries[0].p;
      break;
    } else break;
  }
  const here = entries.find((e) => e.p.length === pre.length);
  const kids: [number, Uint8Array][] = [];
  for (let i = 0; i < 16; i++) {
    const group = entries.filter((e) => e.p.length > pre.length && e.p[pre.length] === i);
    if (group.length) kids.push([i, sub(group, [...pre, i]).id]);
  }
  return { id: nodeId(pre, here?.v, kids) };
}
