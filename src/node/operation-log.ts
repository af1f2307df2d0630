/**
 * The node's operation log (docs/mmr.md): operation `i` is the wire-encoded delta with
 * `logIndex = i`, stored in LevelDB; the MMR over the operations is kept in memory and rebuilt
 * from the stored operations when the node opens (two hashes per operation: a million
 * operations take about two seconds at the measured SHA-256 speed). Appends are staged: the
 * caller writes `stage(...).ops` in its commit batch, then calls `applyStaged`, so the
 * in-memory MMR only moves once the batch is on disk; the staged nodes are hashed once, and
 * the root after the append only when asked for.
 */
import { toHex } from '../core/bytes.ts';
import { InvalidRequest } from '../core/errors.ts';
import { Mmr, mmrSize, pinnedNodes, popcount, rangeProof, rootFromPeaks, type Digest, type MmrRangeProof } from '../core/mmr.ts';
import type { BatchOp, KVStore } from '../core/store.ts';
import { readU64be, u64be } from './node-store.ts';

export interface StagedAppend {
  /** Store ops in the log's and the delta index's keyspaces. */
  logOps: BatchOp[];
  deltaOps: BatchOp[];
  /** Index and size after the append. */
  index: number;
  size: number;
  /** The root after the append (computed on first read). */
  readonly root: Digest;
  /** The MMR nodes the append adds. */
  nodes: Digest[];
}

/** Several appends staged at once (`stageMany`). */
export interface StagedAppends {
  logOps: BatchOp[];
  deltaOps: BatchOp[];
  /** First index, and the size after the appends. */
  index: number;
  size: number;
  /** The MMR nodes each append adds. */
  nodes: Digest[][];
}

export interface LogBatchLimits {
  maxOps: number;
  /** Operation bytes per batch; the first operation is always included. */
  maxBytes: number;
}

export class OperationLog {
  private readonly log: KVStore;
  private readonly deltas: KVStore;
  private mmr: Mmr;

  private constructor(log: KVStore, deltas: KVStore, mmr: Mmr) {
    this.log = log;
    this.deltas = deltas;
    this.mmr = mmr;
  }

  /** Reads every stored operation and rebuilds the MMR; `onProgress(done)` every 65,536. */
  static async open(log: KVStore, deltas: KVStore, onProgress?: (done: number) => void): Promise<OperationLog> {
    const mmr = new Mmr();
    for await (const [k, v] of log.iterate({})) {
      const i = readU64be(k);
      if (i !== mmr.leafCount) throw new Error(`operation log has a gap: found ${i}, expected ${mmr.leafCount}`);
      mmr.append(v);
      if (onProgress && mmr.leafCount % 65_536 === 0) onProgress(mmr.leafCount);
    }
    return new OperationLog(log, deltas, mmr);
  }

  get size(): number {
    return this.mmr.leafCount;
  }

  root(size = this.mmr.leafCount): Digest {
    return this.mmr.root(size);
  }

  /**
   * What appending `element` (the encoded delta with id `id`) would write, and the root after
   * it, without changing the log.
   */
  stage(id: Uint8Array, element: Uint8Array): StagedAppend {
    const index = this.mmr.leafCount;
    const nodes = this.mmr.nodesForAppend(element);
    let root: Digest | undefined;
    const peaksBefore = (): Digest[] => this.mmr.peakDigests(index);
    return {
      logOps: [{ type: 'put', key: u64be(index), value: element }],
      deltaOps: [{ type: 'put', key: id, value: u64be(index) }],
      index,
      size: index + 1,
      nodes,
      get root(): Digest {
        // the new leaf's subtree replaces the peaks it merged (one per node past the leaf)
        root ??= rootFromPeaks(index + 1, [...peaksBefore().slice(0, popcount(index) - (nodes.length - 1)), nodes[nodes.length - 1]]);
        return root;
      },
    };
  }

  /** Moves the in-memory MMR past a staged append whose ops are now on disk. */
  applyStaged(staged: StagedAppend): void {
    if (staged.index !== this.mmr.leafCount) throw new Error(`staged append at ${staged.index}, log is at ${this.mmr.leafCount}`);
    this.mmr.appendNodes(staged.nodes);
  }

  /**
   * `stage` for several operations in a row (written in one batch, then `applyStagedMany`).
   * `nodeAt` may supply the new MMR nodes by position, as a verified range proof computed them
   * (`verifyRangeProof`'s `onNode`); the others are hashed here.
   */
  stageMany(entries: readonly { id: Uint8Array; element: Uint8Array }[], nodeAt?: (pos: number) => Digest | undefined): StagedAppends {
    const index = this.mmr.leafCount;
    const scratch = Mmr.fromPinned(index, this.mmr.peakDigests());
    const out: StagedAppends = { logOps: [], deltaOps: [], index, size: index + entries.length, nodes: [] };
    entries.forEach(({ id, element }, k) => {
      let nodes: Digest[] | undefined = [];
      for (let pos = scratch.size, end = mmrSize(index + k + 1); pos < end && nodes; pos++) {
        const d = nodeAt?.(pos);
        if (d) nodes.push(d);
        else nodes = undefined;
      }
      nodes ??= scratch.nodesForAppend(element);
      scratch.appendNodes(nodes);
      out.nodes.push(nodes);
      out.logOps.push({ type: 'put', key: u64be(index + k), value: element });
      out.deltaOps.push({ type: 'put', key: id, value: u64be(index + k) });
    });
    return out;
  }

  /** Moves the in-memory MMR past appends staged by `stageMany` whose ops are now on disk. */
  applyStagedMany(staged: StagedAppends): void {
    if (staged.index !== this.mmr.leafCount) throw new Error(`staged appends at ${staged.index}, log is at ${this.mmr.leafCount}`);
    for (const nodes of staged.nodes) this.mmr.appendNodes(nodes);
  }

  async operation(i: number): Promise<Uint8Array | undefined> {
    return this.log.get(u64be(i));
  }

  /** The wire-encoded delta with this id, if it is in the log. */
  async delta(id: Uint8Array): Promise<Uint8Array | undefined> {
    if (id.length !== 32) return undefined;
    const index = await this.deltas.get(id);
    return index === undefined ? undefined : this.log.get(index);
  }

  /**
   * Operations `[start, start + k)` with `1 ≤ k ≤ end - start` within `limits`, their proof
   * against the log of `logSize` operations, and the pinned nodes at `start` when asked.
   * Throws `InvalidRequest` for an empty range, `end > logSize`, or a `logSize` this log
   * does not have.
   */
  async batch(
    q: { start: number; end: number; logSize: number; pinned: boolean },
    limits: LogBatchLimits,
  ): Promise<{ operations: Uint8Array[]; proof: MmrRangeProof; pinned: Digest[] }> {
    const { start, end, logSize } = q;
    if (logSize > this.size) throw new InvalidRequest(`log size ${logSize} is beyond this node's log (${this.size} operations)`, { logSize, size: this.size });
    if (!(start < end)) throw new InvalidRequest(`empty range [${start}, ${end})`);
    if (end > logSize) throw new InvalidRequest(`range end ${end} is beyond the log size ${logSize}`);
    const stop = Math.min(end, start + limits.maxOps);
    const operations: Uint8Array[] = [];
    let bytes = 0;
    for await (const [, v] of this.log.iterate({ gte: u64be(start), lt: u64be(stop) })) {
      if (operations.length > 0 && bytes + v.length > limits.maxBytes) break;
      operations.push(v);
      bytes += v.length;
    }
    if (operations.length === 0) throw new Error(`operation ${start} is missing from the store (${toHex(u64be(start))})`);
    const proof = rangeProof(this.mmr, start, start + operations.length, logSize);
    return { operations, proof, pinned: q.pinned ? pinnedNodes(this.mmr, start) : [] };
  }
}
