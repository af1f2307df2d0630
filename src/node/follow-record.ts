/**
 * The replica's `follow` record: what its synced state is (root, DAG heads, log size), written
 * in the same batch as every applied delta, so that a restart knows where to follow from.
 * Layout: root (32 bytes), log size (u64 big-endian), head count (1 byte), heads (32 bytes each).
 */
import { concatBytes } from '../core/bytes.ts';
import type { AppliedCover } from '../core/dag.ts';
import { readU64be, u64be } from './node-store.ts';

/** Its key under the node store's writer prefix. */
export const FOLLOW_KEY = new TextEncoder().encode('follow');

/** The `follow` record: what the synced state is (root, DAG heads, log size). */
export interface FollowRecord extends AppliedCover {
  root: Uint8Array;
}

export function encodeFollow(r: FollowRecord): Uint8Array {
  if (r.heads.length > 255) throw new RangeError(`expected at most 255 heads, got ${r.heads.length}`);
  return concatBytes(r.root, u64be(r.logSize), Uint8Array.of(r.heads.length), ...r.heads);
}

export function decodeFollow(b: Uint8Array): FollowRecord {
  if (b.length < 41 || b.length !== 41 + b[40] * 32) throw new TypeError('malformed follow record');
  const heads: Uint8Array[] = [];
  for (let i = 0; i < b[40]; i++) heads.push(b.slice(41 + i * 32, 73 + i * 32));
  return { root: b.slice(0, 32), logSize: readU64be(b.subarray(32, 40)), heads };
}
