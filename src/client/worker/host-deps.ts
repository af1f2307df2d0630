/**
 * What the engine host (engine-host.ts) takes from its runtime: the store, the sync lock, the
 * channel to other tabs of the same database, and the event sink. The worker (entry.ts) gives
 * IndexedDB, Web Locks and a BroadcastChannel; tests give a memory store and doubles.
 */
import type { KVStore } from '../../core/store.ts';
import type { WireEvent } from '../events.ts';
import type { PendingDeltaStore } from '../live/pending-store.ts';
import type { WorkerConfig } from './worker-messages.ts';
import type { TabMessage } from './tab-messages.ts';

export type { TabMessage } from './tab-messages.ts';

/** The store the host needs: the core's seam plus lifecycle. */
export interface LocalStore extends KVStore {
  close(): Promise<void>;
  estimate?(): Promise<{ available: number | undefined }>;
}

export interface HostLock {
  release(): void;
}

export interface HostDeps {
  config: WorkerConfig;
  /** Events for the page. */
  emit(event: WireEvent): void;
  openStore(name: string): Promise<LocalStore>;
  deleteStore(name: string): Promise<void>;
  /** The sync lock: `tryAcquire` returns null when another tab holds it. */
  lock: { tryAcquire(): Promise<HostLock | null>; wait(signal: AbortSignal): Promise<HostLock> };
  /** Other tabs of this database; absent in tests with one tab. */
  channel?: { post(m: TabMessage): void; subscribe(listener: (m: TabMessage) => void): () => void; close(): void };
  heapUsed?(): number | undefined;
  /** The pending-delta store of live updates (default: in memory, lost on reload). */
  openPending?(name: string): Promise<PendingDeltaStore>;
}
