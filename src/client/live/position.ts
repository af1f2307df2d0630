/**
 * Where the local state stands in the delta DAG (so a reload knows where it stopped), persisted
 * in the state store beside the trie and the sync progress, and written in the same atomic
 * batch as every live commit, together with the progress records moved to the new root.
 *
 * Layout (prefix 'd', beside the trie's 'n', 'v', 'm' and progress's 'p'):
 *   'd' 00 → version 1 || root (32) || logSize u64be || seq+1 u64be (0: unknown)
 *            || u16be head count || heads (32 each)
 *
 * A position is only believed when the sync progress agrees that every synced segment stands at
 * its root (`positionHolds`): a sync that moved the state afterwards (and was killed before it
 * wrote a new position) makes it stale, and the client syncs instead.
 */
import { concatBytes, equalBytes } from '../../core/bytes.ts';
import type { BatchOp, KVStore } from '../../core/store.ts';
import { progressOps, type StoredProgress } from '../../sync/state/stored-progress.ts';

export interface LivePosition {
  /** The writer's state root the local state is at (for a partial sync: within its ranges). */
  root: Uint8Array;
  /** The DAG heads of that state (empty: no delta yet). */
  heads: Uint8Array[];
  /** Every delta with a smaller `logIndex` is reflected in the state. */
  logSize: number;
  /** The announcement `seq` of that root, when known. */
  seq: number | undefined;
}

const KEY = new Uint8Array([0x64, 0]);
const VERSION = 1;

export function encodePosition(p: LivePosition): Uint8Array {
  if (p.heads.length > 0xffff) throw new RangeError(`too many heads: ${p.heads.length}`);
  const head = new Uint8Array(1 + 32 + 8 + 8 + 2);
  const dv = new DataView(head.buffer);
  head[0] = VERSION;
  head.set(p.root, 1);
  dv.setUint32(33, Math.floor(p.logSize / 2 ** 32));
  dv.setUint32(37, p.logSize >>> 0);
  const seq = p.seq === undefined ? 0 : p.seq + 1;
  dv.setUint32(41, Math.floor(seq / 2 ** 32));
  dv.setUint32(45, seq >>> 0);
  dv.setUint16(49, p.heads.length);
  return concatBytes(head, ...p.heads);
}

/** Throws `TypeError` on a malformed record (a corrupted store is not silently believed). */
export function decodePosition(b: Uint8Array): LivePosition {
  if (b.length < 51 || b[0] !== VERSION) throw new TypeError('malformed live position record');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint16(49);
  if (b.length !== 51 + 32 * n) throw new TypeError('malformed live position record: head count');
  const seq = dv.getUint32(41) * 2 ** 32 + dv.getUint32(45);
  const heads: Uint8Array[] = [];
  for (let i = 0; i < n; i++) heads.push(b.slice(51 + 32 * i, 83 + 32 * i));
  return { root: b.slice(1, 33), logSize: dv.getUint32(33) * 2 ** 32 + dv.getUint32(37), seq: seq === 0 ? undefined : seq - 1, heads };
}

export async function loadPosition(store: KVStore): Promise<LivePosition | undefined> {
  const b = await store.get(KEY);
  return b ? decodePosition(b) : undefined;
}

export function positionOps(p: LivePosition): BatchOp[] {
  return [{ type: 'put', key: KEY, value: encodePosition(p) }];
}

/** Whether the stored progress says every synced segment stands at `position.root`. */
export function positionHolds(position: LivePosition | undefined, progress: StoredProgress): position is LivePosition {
  if (!position || !progress.target || !equalBytes(progress.target, position.root)) return false;
  return progress.segments.length > 0 && progress.segments.every((s) => s.root !== undefined && equalBytes(s.root, position.root));
}

/**
 * The progress records moved from `progress` (every segment at its target) to `root`: what a
 * live commit writes so a later change-proof sync starts from the root the state is really at.
 */
export function advanceProgress(progress: StoredProgress, root: Uint8Array): { ops: BatchOp[]; next: StoredProgress } {
  const segments = progress.segments.map((s) => ({ start: s.start, end: s.end, root }));
  return { ops: progressOps(progress.segments, segments, root, progress.target), next: { target: root, segments } };
}
