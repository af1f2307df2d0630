/**
 * `proofsync snapshot --data DIR --out DIR2`: the static proofs of the newest checkpoint the
 * stored announcement names (node/snapshot.ts), for any HTTP server or CDN to serve
 * (docs/static-proofs.md). Run it on a stopped node's data directory (LevelDB is one
 * process's); a running node keeps a directory current itself with `--snapshot-dir`.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { toHex } from '../core/bytes.ts';
import { decodeAnnouncement } from '../core/announcement.ts';
import { openNodeStore } from '../node/node-store.ts';
import { STORE_DIR } from '../node/open-database.ts';
import { DEFAULT_SNAPSHOT_KEEP, writeSnapshot } from '../node/snapshot.ts';
import { storedAnnouncement } from '../node/writer.ts';
import { registerCommands } from './main.ts';
import { intArg, printJson, UsageError } from './io.ts';

const USAGE = 'snapshot --data DIR --out DIR [--keep N] [--history N]   static proofs of the newest checkpoint (docs/static-proofs.md)';

async function runSnapshot(argv: string[]): Promise<number> {
  let o;
  try {
    o = parseArgs({ args: argv, options: { data: { type: 'string' }, out: { type: 'string' }, keep: { type: 'string' }, history: { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (o.help) {
    process.stdout.write(`usage: proofsync ${USAGE}\n`);
    return 0;
  }
  if (!o.data) throw new UsageError('--data DIR is required');
  if (!o.out) throw new UsageError('--out DIR is required');
  const keep = intArg(o.keep, 'keep', DEFAULT_SNAPSHOT_KEEP);
  const store = await openNodeStore(join(o.data, STORE_DIR), { historySize: intArg(o.history, 'history', 300) });
  try {
    const announcement = await storedAnnouncement(store);
    if (!announcement) throw new UsageError(`${o.data} holds no signed announcement: snapshot a writer's data directory, or run a node with --snapshot-dir`);
    const named = decodeAnnouncement(announcement).checkpoint !== undefined;
    if (!named) process.stderr.write('the announcement names no checkpoint yet: writing the snapshot at its state root\n');
    const r = await writeSnapshot({ db: store.db, announcement, out: o.out, keep });
    printJson({ root: toHex(r.root), seq: r.seq, checkpoint: named, files: r.files, bytes: r.bytes, written: r.written, pruned: r.pruned });
    return 0;
  } finally {
    await store.close();
  }
}

registerCommands({ snapshot: runSnapshot }, { snapshot: USAGE });
