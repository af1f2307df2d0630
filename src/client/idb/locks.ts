/**
 * One tab syncs a database at a time; the others read it and follow progress (docs/design.md
 * "Storage in the browser"). The sync lock is a Web Lock (`navigator.locks`, available in
 * windows and workers), held until released or until its holder's tab/worker goes away; the
 * browser then grants it to the next waiter. Progress travels on a BroadcastChannel per database.
 */

/** The Web Lock name guarding the sync of database `db`. */
export const syncLockName = (db: string): string => `proofsync:sync:${db}`;
/** The BroadcastChannel name carrying events about database `db`. */
export const syncChannelName = (db: string): string => `proofsync:events:${db}`;

export interface SyncLock {
  readonly name: string;
  /** Releases the lock (idempotent). */
  release(): void;
  /** Resolves once the lock is released. */
  readonly released: Promise<void>;
}

export interface SyncLockOptions {
  /** Defaults to `navigator.locks`. */
  locks?: LockManager;
  signal?: AbortSignal;
}

function lockManager(options: SyncLockOptions): LockManager {
  const locks = options.locks ?? (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) throw new TypeError('Web Locks (navigator.locks) are not available in this context');
  return locks;
}

function request(db: string, options: SyncLockOptions, ifAvailable: boolean): Promise<SyncLock | null> {
  const locks = lockManager(options);
  const name = syncLockName(db);
  return new Promise<SyncLock | null>((resolve, reject) => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // ifAvailable and signal cannot be combined (Web Locks spec)
    const lockOptions: LockOptions = ifAvailable ? { ifAvailable: true } : { signal: options.signal };
    locks
      .request(name, lockOptions, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        resolve({ name, release, released });
        return released; // the lock is held until this promise settles
      })
      .catch(reject);
  });
}

/**
 * Takes the sync lock of database `db` if no other tab or worker holds it; `null` otherwise.
 *
 * @example
 * const lock = await acquireSyncLock('mydb');
 * if (lock) { await sync(); lock.release(); } else readOnly();
 */
export function acquireSyncLock(db: string, options: Omit<SyncLockOptions, 'signal'> = {}): Promise<SyncLock | null> {
  return request(db, options, true);
}

/**
 * Waits for the sync lock of database `db` (for a reading tab to take over when the syncing
 * tab closes). Rejects with the signal's reason if aborted while waiting.
 */
export async function waitForSyncLock(db: string, options: SyncLockOptions = {}): Promise<SyncLock> {
  return (await request(db, options, false))!;
}

/** What a syncing tab tells the others about a database. */
export type SyncEvent =
  | { type: 'progress'; completed: number; total: number }
  | { type: 'synced'; root: Uint8Array }
  | { type: 'updated'; root: Uint8Array; keys: number };

/**
 * A typed BroadcastChannel for one database's events. A channel does not receive its own
 * messages; other tabs and workers of the origin do.
 *
 * @example
 * const channel = new SyncChannel('mydb');
 * const stop = channel.subscribe((e) => { if (e.type === 'progress') show(e.completed / e.total); });
 */
export class SyncChannel<E extends { type: string } = SyncEvent> {
  readonly name: string;
  private readonly channel: BroadcastChannel;

  constructor(db: string) {
    this.name = syncChannelName(db);
    this.channel = new BroadcastChannel(this.name);
  }

  post(event: E): void {
    this.channel.postMessage(event);
  }

  /** Calls `listener` for each event from other contexts; returns the unsubscribe function. */
  subscribe(listener: (event: E) => void): () => void {
    const handler = (m: MessageEvent<E>) => listener(m.data);
    this.channel.addEventListener('message', handler);
    return () => this.channel.removeEventListener('message', handler);
  }

  close(): void {
    this.channel.close();
  }
}
