/**
 * The first half of a full node's start: the LevelDB store in `DIR/db`, the database's name,
 * the operation log, and on the writer the `DatabaseWriter`, with the seeded data `--generate`
 * and `--generate-log` ask for written into an empty store first.
 */
import { join } from 'node:path';
import { checkpointDatabaseOptions, checkpointSchedule } from './checkpoints.ts';
import type { PrivateKey } from '@libp2p/interface';
import { equalBytes, toHex } from '../core/bytes.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import type { FullNodeOptions } from './full-node-options.ts';
import { generateKeyValues } from './generate.ts';
import { assertNotHalfGenerated, generateOperationLog, isEmptyStore } from './generate-log.ts';
import { openNodeStore, type NodeStore } from './node-store.ts';
import { OperationLog } from './operation-log.ts';
import { databaseName, DatabaseWriter } from './writer.ts';

/** The LevelDB store's directory in the data directory (`DIR/db`). */
export const STORE_DIR = 'db';

/** The Ed25519 key pair a writer signs deltas and announcements with. */
export interface WriterKeys {
  /** The 32-byte seed. */
  secretKey: Uint8Array;
  /** The 32-byte public key. */
  publicKey: Uint8Array;
}

/** The node's libp2p key as the writer's signing key pair: the same key signs and identifies. */
export function writerKeys(key: PrivateKey): WriterKeys {
  if (key.type !== 'Ed25519') throw new TypeError(`the writer key must be Ed25519, got ${key.type}`);
  // libp2p's Ed25519 raw private key is seed (32) || public key (32)
  return { secretKey: key.raw.subarray(0, 32), publicKey: key.publicKey.raw };
}

/** What `openDatabase` opened; the caller closes `store` when the node stops. */
export interface OpenedDatabase {
  /** The LevelDB store: trie, history, deltas. */
  store: NodeStore;
  /** The database's name (announcement `db`), as kept in the store. */
  db: string;
  /** The operation log over the store's deltas. */
  opLog: OperationLog;
  /** The writer; undefined on a replica or a serve-only node. */
  writer: DatabaseWriter | undefined;
}

/**
 * Opens the store in `o.dataDir`, generating the data `o.generate` and `o.generateLog` ask for
 * when it is empty, then the log and (when `isWriter`) the writer. Closes the store if any step
 * fails.
 *
 * @example
 * const { store, db, opLog, writer } = await openDatabase(o, writerKeys(privateKey), { isWriter: true, defaultDb: peerId, log });
 */
export async function openDatabase(
  o: FullNodeOptions,
  keys: WriterKeys,
  how: { isWriter: boolean; defaultDb: string; log: (line: string) => void; onCheckpointDropped?: () => void },
): Promise<OpenedDatabase> {
  const { secretKey, publicKey } = keys;
  const { isWriter, log } = how;
  const dbOptions = checkpointDatabaseOptions(o.checkpoints, o.historySize, how.onCheckpointDropped);
  let store = await openNodeStore(join(o.dataDir, STORE_DIR), dbOptions);
  try {
    const db = await databaseName(store, o.db, how.defaultDb);
    await assertNotHalfGenerated(store, join(o.dataDir, STORE_DIR));
    if (isWriter && o.generateLog && o.generateLog.commits > 0) {
      if (await isEmptyStore(store)) {
        const initial = o.generate ? generateKeyValues(o.generate, o.seed ?? 1, (done, total) => o.onProgress?.({ phase: 'generate', done, total })) : undefined;
        await generateOperationLog({
          store,
          count: o.generateLog.commits,
          keySpace: o.generateLog.keys,
          seed: (o.seed ?? 1) + 2,
          initial,
          secretKey,
          publicKey,
          db,
          wallClock: o.wallClock,
          onProgress: (p) => o.onProgress?.(p),
        });
        // the database was opened empty: open it again over what was copied in
        await store.close();
        store = await openNodeStore(join(o.dataDir, STORE_DIR), dbOptions);
      } else log(`--generate-log ignored: the database is not empty (root ${toHex(store.db.root)})`);
    }
    const opLog = await OperationLog.open(store.log, store.deltas, (done) => o.onProgress?.({ phase: 'log', done }));
    let writer: DatabaseWriter | undefined;
    if (isWriter) {
      writer = await DatabaseWriter.open({ store, log: opLog, secretKey, publicKey, db, wallClock: o.wallClock, checkpoints: checkpointSchedule(o.checkpoints) });
      if (o.generate && o.generate > 0 && !o.generateLog?.commits) {
        if (equalBytes(store.db.root, EMPTY_ROOT) && opLog.size === 0) {
          const kvs = generateKeyValues(o.generate, o.seed ?? 1, (done, total) => o.onProgress?.({ phase: 'generate', done, total }));
          // the bulk load writes trie nodes and values in chunks: report records written
          let records = 0;
          store.state.observer = (ops) => o.onProgress?.({ phase: 'load', done: (records += ops) });
          try {
            await writer.bulkLoad(kvs);
          } finally {
            store.state.observer = undefined;
          }
        } else log(`--generate ignored: the database is not empty (root ${toHex(store.db.root)})`);
      }
    }
    return { store, db, opLog, writer };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
