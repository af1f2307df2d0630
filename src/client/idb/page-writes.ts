/**
 * The packed store's two kinds of commit (packed-store.ts decides which a batch takes): ops
 * rewritten into their pages, or appended as one write-log record. Each is ONE readwrite
 * transaction with `meta`, so a batch and the `seq` naming it commit together or not at all;
 * in-memory state (index, cache, overlay) changes only after the transaction commits, so a
 * failed write (e.g. `StorageQuotaExceeded`) leaves the connection at its last committed state.
 * Nothing inside a transaction awaits anything but IndexedDB.
 */
import type { BatchOp } from '../../core/store.ts';
import { errorClass, ProofsyncError } from '../../core/errors.ts';
import { StorageCorrupted } from './errors.ts';
import { encodePage, Page } from './page.ts';
import { type Draft, groupByPage, isSlot, rebuildPages, type Slot, slotOf } from './page-index.ts';
import { PAGE_META_KEY, toBinaryKey } from './schema.ts';
import type { StoreConnection } from './store-connection.ts';
import { encodeLogRecord } from './write-log.ts';

/** A compaction met another connection's commit (it stops; its records stay). */
export const CompactionInterrupted = errorClass(ProofsyncError, 'CompactionInterrupted');

export interface PageWriteOptions {
  pageBytes: number;
  durability: IDBTransactionDurability;
  /**
   * Set for a compaction chunk: `ops` are overlay values, and the last chunk (`through`)
   * deletes the records up to `through`.
   */
  compaction?: { through: number | undefined };
}

const copyOp = (op: BatchOp): BatchOp => (op.type === 'put' ? { type: 'put', key: op.key.slice(), value: op.value.slice() } : { type: 'del', key: op.key.slice() });

/**
 * Writes sorted ops into the pages in one transaction. With a write log, ops on logged keys
 * are logged too in the same transaction (the log must not shadow them).
 */
export async function writePages(conn: StoreConnection, ops: readonly BatchOp[], o: PageWriteOptions): Promise<void> {
  conn.assertOpen();
  const { pageBytes, compaction } = o;
  const tx = conn.db.transaction(['pages', 'meta', 'log'], 'readwrite', { durability: o.durability });
  const pages = tx.objectStore('pages');
  const metaStore = tx.objectStore('meta');
  let attemptedBytes = 0;
  const load = async (slot: Slot): Promise<Page> => {
    const cached = conn.cache.peek(slot);
    if (cached) return cached;
    const bytes = await pages.get(slot.key);
    if (!bytes) throw new StorageCorrupted(`page record missing for a live index entry in "${conn.name}"`);
    return new Page(bytes);
  };
  try {
    // 0. Another connection may have written since this store last looked: take its commits.
    const meta = await metaStore.get(PAGE_META_KEY);
    if (meta?.seq !== conn.seq) {
      if (compaction) throw new CompactionInterrupted(`another connection wrote "${conn.name}" during a compaction`);
      await conn.catchUp(tx, meta);
    }
    const index = conn.index;
    const seq = conn.seq + 1;
    let logBase = conn.log.base;

    // 1. Rebuild the pages the ops touch (page-index.ts), reading them in this transaction.
    const groups = groupByPage(index, ops);
    const loaded = await Promise.all(groups.map((g) => load(index[g.at])));
    const { next, replaced } = await rebuildPages(index, ops, groups, loaded, pageBytes, load);

    // 2. Write: delete the records of pages that no longer exist, put every rebuilt page.
    const drafts = next.filter((x): x is Draft => !isSlot(x));
    const keptFences = new Set(drafts.map((d) => d.fence));
    const requests: Promise<unknown>[] = [];
    for (const slot of replaced.keys()) if (!keptFences.has(slot.fence)) requests.push(pages.delete(slot.key));
    const encoded = new Map<Draft, Uint8Array>();
    for (const d of drafts) {
      const bytes = encodePage(d.entries);
      attemptedBytes += bytes.length;
      encoded.set(d, bytes);
      requests.push(pages.put(bytes, toBinaryKey(d.fence)));
    }
    // ops on logged keys: logged too, or replaying the older records would undo them
    // copies: the overlay keeps them, and the batch's ops are views of its whole record
    const overlay = conn.log.overlay;
    const shadowed = compaction ? [] : overlay.held(ops).map(copyOp);
    let shadowBytes = 0;
    if (shadowed.length) {
      const bytes = encodeLogRecord(shadowed);
      shadowBytes = bytes.length;
      attemptedBytes += bytes.length;
      requests.push(tx.objectStore('log').put(bytes, seq));
    }
    const through = compaction?.through;
    if (through !== undefined) {
      requests.push(tx.objectStore('log').delete(IDBKeyRange.upperBound(through)));
      logBase = through + 1;
    }
    // `pageBytes`: a store opened later without the option writes pages of the same size
    requests.push(metaStore.put({ ...meta!, pageBytes, seq, pageSeq: seq, logBase }, PAGE_META_KEY));
    await Promise.all([...requests, tx.done]);

    // 3. Committed: swap the index, pin replaced pages for live iterators, cache new pages.
    const newIndex: Slot[] = [];
    for (const x of next) {
      if (isSlot(x)) {
        newIndex.push(x);
      } else {
        const slot = slotOf(x.fence);
        conn.cache.set(slot, new Page(encoded.get(x)!));
        newIndex.push(slot);
      }
    }
    for (const [slot, page] of replaced) {
      slot.dead = true;
      conn.cache.delete(slot);
      for (const snap of conn.snapshots) if (!snap.pinned.has(slot)) snap.pinned.set(slot, page);
    }
    conn.index = newIndex;
    conn.pageSeq = seq;
    if (shadowed.length) conn.log.add(shadowed, seq, shadowBytes);
    if (through !== undefined) conn.log.forgetBelow(logBase);
    conn.committed(seq);
  } catch (err) {
    throw await conn.failed(tx, err, attemptedBytes);
  }
}

/** Appends `ops` as one log record (`record`: their encoding; the ops are views of it), with `meta`, in one transaction. */
export async function appendLog(conn: StoreConnection, ops: readonly BatchOp[], record: Uint8Array, durability: IDBTransactionDurability): Promise<void> {
  for (;;) {
    conn.assertOpen();
    const tx = conn.db.transaction(['meta', 'log'], 'readwrite', { durability });
    let attemptedBytes = 0;
    try {
      const meta = await tx.objectStore('meta').get(PAGE_META_KEY);
      if (meta?.seq !== conn.seq) {
        // another connection committed: take its state, then append on top of it
        tx.abort();
        await tx.done.catch(() => undefined);
        await conn.refresh();
        continue;
      }
      const rec = conn.seq + 1;
      attemptedBytes = record.length;
      await Promise.all([tx.objectStore('log').put(record, rec), tx.objectStore('meta').put({ ...meta, seq: rec }, PAGE_META_KEY), tx.done]);
      conn.log.add(ops, rec, record.length);
      conn.committed(rec);
      return;
    } catch (err) {
      throw await conn.failed(tx, err, attemptedBytes);
    }
  }
}
