/** Messages between the test page and the store worker (e2e/idb/worker.ts). */
import type { BatchOp, IterateOptions } from '../../src/core/store.ts';

export type Query = { get: Uint8Array } | { iterate: IterateOptions };
export type QueryResult = Uint8Array | null | [Uint8Array, Uint8Array][];

export type Request =
  | { op: 'open'; name: string; pageBytes?: number; cacheBytes?: number; logBytes?: number; compactPages?: number; logAmplification?: number }
  | { op: 'write'; ops: BatchOp[]; handOver?: boolean }
  | { op: 'query'; queries: Query[] }
  | { op: 'iterOpen'; options: IterateOptions }
  | { op: 'iterNext'; iter: number; n: number }
  | { op: 'stats' }
  | { op: 'compact' }
  | { op: 'prefetch'; ranges: { gte: Uint8Array; lt: Uint8Array }[] }
  | { op: 'close' }
  | { op: 'deleteDatabase'; name: string }
  | { op: 'stream'; seed: number; count: number }
  | { op: 'shimQuota'; failOnCall: number }
  | { op: 'lock'; db: string }
  | { op: 'waitLock'; db: string }
  | { op: 'unlock' }
  | { op: 'listen'; db: string }
  | { op: 'post'; db: string; completed: number; total: number }
  | { op: 'events'; atLeast: number }
  | { op: 'bench'; kind: 'packed' | 'per-key'; name: string; count: number; batch: number; seed: number; sorted: boolean; gets: number };

export interface Stats {
  pages: number;
  /** The target page size the store writes with. */
  pageBytes: number;
  commits: number;
  cachedPages: number;
  /** Write-log bytes not yet compacted, keys in the overlay, compactions finished since open. */
  logBytes: number;
  overlayKeys: number;
  compactions: number;
  usage?: number;
  quota?: number;
}

export type Response = { id: number; ok: true; value: unknown } | { id: number; ok: false; name: string; message: string; details?: Record<string, unknown> };

/** Posted by the stream op after each committed batch. */
export interface CommittedEvent {
  committed: number;
}
