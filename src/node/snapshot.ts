/**
 * Static proofs, the writing side (docs/static-proofs.md): the answers of the canonical
 * plan (sync/state/plan.ts) at a checkpoint root, as immutable files any HTTP server or CDN
 * serves, read back by sync/state/http-source.ts. Layout under the output directory:
 *
 * - `announcement`: the signed announcement naming the checkpoint (replaced atomically);
 * - `<rootHex>/<requestKey>`: one answer per request, the bytes a node sends on
 *   `/proofsync/1/range` (`serveRangeProof` then `encodeRangeProofResponse`).
 *
 * The plan is walked as the client's engine walks it in canonical mode: each part's first
 * request, then `canonicalResume` after each answer until the part is done. The files of one
 * checkpoint go into a temporary directory renamed to `<rootHex>` when complete, then the
 * announcement is replaced; so a reader that sees an announcement finds every file it names.
 * Older checkpoint directories stay until a newer one is complete; the newest `keep` (default
 * 2) are kept, so a client that read the previous announcement can finish.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAnnouncement, type Announcement } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import type { MerkleDatabase } from '../core/database.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { encodeRangeProofResponse } from '../protocol/codec.ts';
import { serveRangeProof } from '../protocol/serve.ts';
import { canonicalParts, canonicalRangeRequest, canonicalResume, requestKey } from '../sync/state/plan.ts';
import { ANNOUNCEMENT_FILE } from '../sync/state/http-source.ts';

/** Checkpoint directories kept by default: the newest and the one before. */
export const DEFAULT_SNAPSHOT_KEEP = 2;
/** Least time between two snapshots a node writes (`--snapshot-interval`). */
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 60_000;

const ROOT_DIR = /^[0-9a-f]{64}$/;

export interface SnapshotOptions {
  /** The database to read the checkpoint from (the root must be in its history or kept checkpoints). */
  db: MerkleDatabase;
  /** The signed announcement bytes naming the checkpoint (written as `<out>/announcement`). */
  announcement: Uint8Array;
  /** The output directory (created when missing). */
  out: string;
  /** Checkpoint directories to keep (default 2). */
  keep?: number;
  /** Runs each proof read (a running node passes its shared read lock, so no proof mixes two commits). */
  read?: <T>(f: () => Promise<T>) => Promise<T>;
  signal?: AbortSignal;
  /** After each file: files and bytes written so far. */
  onProgress?: (files: number, bytes: number) => void;
}

export interface SnapshotResult {
  /** The checkpoint written. */
  root: Uint8Array;
  seq: number;
  /** Answer files of the checkpoint (0 when it was already on disk). */
  files: number;
  bytes: number;
  /** False when the checkpoint's directory was already complete (only the announcement was replaced). */
  written: boolean;
  /** Older checkpoint directories removed. */
  pruned: string[];
}

/** The checkpoint an announcement names: its `checkpoint`, or its own state when it names none. */
export function announcedCheckpoint(a: Announcement & { checkpoint?: { seq: number; root: Uint8Array } }): { seq: number; root: Uint8Array } {
  return a.checkpoint ?? { seq: a.seq, root: a.stateRoot };
}

/**
 * Writes the static proofs of the checkpoint `o.announcement` names into `o.out` (see the module
 * header); skips the answers when that checkpoint's directory is already complete.
 *
 * @example
 * const store = await openNodeStore(join(dataDir, 'db'));
 * const r = await writeSnapshot({ db: store.db, announcement: (await storedAnnouncement(store))!, out: 'public/snap' });
 * console.log(`${r.files} files at ${toHex(r.root)}`);
 */
export async function writeSnapshot(o: SnapshotOptions): Promise<SnapshotResult> {
  const keep = o.keep ?? DEFAULT_SNAPSHOT_KEEP;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`expected keep to be a positive integer, got ${keep}`);
  const read = o.read ?? (<T>(f: () => Promise<T>) => f());
  const { seq, root } = announcedCheckpoint(decodeAnnouncement(o.announcement));
  const rootHex = toHex(root);
  await mkdir(o.out, { recursive: true });
  const final = join(o.out, rootHex);
  let files = 0;
  let bytes = 0;
  const written = !(await exists(final));
  if (written) {
    const tmp = join(o.out, `.tmp-${rootHex}-${process.pid}-${Date.now().toString(36)}`);
    await mkdir(tmp, { recursive: true });
    try {
      if (!equalBytes(root, EMPTY_ROOT)) {
        for (const part of canonicalParts()) {
          let request: ReturnType<typeof canonicalRangeRequest> | undefined = canonicalRangeRequest(root, part.start, part.end);
          while (request) {
            o.signal?.throwIfAborted();
            const req = request;
            const proof = await read(() => serveRangeProof(o.db, req));
            const body = encodeRangeProofResponse({ type: 'rangeProof', proof });
            await writeFile(join(tmp, requestKey(req)), body);
            files++;
            bytes += body.length;
            o.onProgress?.(files, bytes);
            request = canonicalResume(req, proof);
          }
        }
      }
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }
  const annTmp = join(o.out, `.${ANNOUNCEMENT_FILE}-${process.pid}-${Date.now().toString(36)}`);
  await writeFile(annTmp, o.announcement);
  await rename(annTmp, join(o.out, ANNOUNCEMENT_FILE));
  const pruned = await prune(o.out, rootHex, keep);
  return { root, seq, files, bytes, written, pruned };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes checkpoint directories beyond the newest `keep` (by modification time), never `current`. */
async function prune(out: string, current: string, keep: number): Promise<string[]> {
  const dirs: { name: string; mtime: number }[] = [];
  for (const e of await readdir(out, { withFileTypes: true })) {
    if (!e.isDirectory() || !ROOT_DIR.test(e.name) || e.name === current) continue;
    dirs.push({ name: e.name, mtime: (await stat(join(out, e.name))).mtimeMs });
  }
  dirs.sort((a, b) => b.mtime - a.mtime);
  const gone = dirs.slice(keep - 1).map((d) => d.name);
  for (const name of gone) await rm(join(out, name), { recursive: true, force: true });
  return gone;
}

export interface SnapshotKeeperOptions {
  /** The directory served (`--snapshot-dir`). */
  out: string;
  /** The database served now. */
  db(): MerkleDatabase;
  /** The newest signed announcement bytes the node has, if any. */
  announcement(): Uint8Array | undefined;
  read?: <T>(f: () => Promise<T>) => Promise<T>;
  keep?: number;
  /** How often to look for a newly named checkpoint (default 1,000 ms). */
  pollMs?: number;
  /**
   * Least time from one snapshot's start to the next's (default 60,000 ms). A writer that names
   * no checkpoints has a new state root every commit, and a snapshot reads the whole state: at
   * 2 commits/s it would never stop. A newer checkpoint waits, the newest is written.
   */
  minIntervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
  log: (line: string) => void;
  /** A snapshot finished (for metrics and tests). */
  onWritten?: (r: SnapshotResult) => void;
}

/**
 * Keeps `out` at the newest checkpoint the node's announcement names (`proofsync node
 * --snapshot-dir DIR`): looks every `pollMs` (and on `check()`), writes one snapshot at a time,
 * and a checkpoint named while one is written is written next. A failed write is logged and
 * tried again at the next look.
 *
 * @example
 * const keeper = new SnapshotKeeper({ out, db: () => store.db, announcement: () => writer.announcementBytes, read: (f) => lock.read(f), log });
 * keeper.start();
 * await keeper.stop();
 */
export class SnapshotKeeper {
  readonly #o: SnapshotKeeperOptions;
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #done: string | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastStart = -Infinity;

  constructor(o: SnapshotKeeperOptions) {
    this.#o = o;
  }

  start(): void {
    this.check();
    this.#timer = setInterval(() => this.check(), this.#o.pollMs ?? 1_000);
    this.#timer.unref?.();
  }

  /** Looks for a newly named checkpoint now. */
  check(): void {
    if (this.#controller.signal.aborted) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const bytes = this.#o.announcement();
    if (!bytes) return;
    const root = toHex(announcedCheckpoint(decodeAnnouncement(bytes)).root);
    if (root === this.#done) return;
    const now = (this.#o.now ?? Date.now)();
    // the first one at once; then at most one per interval (the timer looks again)
    if (this.#done !== undefined && now - this.#lastStart < (this.#o.minIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS)) return;
    this.#lastStart = now;
    this.#running = (async () => {
      try {
        const r = await writeSnapshot({ db: this.#o.db(), announcement: bytes, out: this.#o.out, keep: this.#o.keep, read: this.#o.read, signal: this.#controller.signal });
        this.#done = root;
        if (r.written) this.#o.log(`snapshot: checkpoint seq ${r.seq} root ${root}: ${r.files} files, ${r.bytes} bytes in ${this.#o.out}`);
        this.#o.onWritten?.(r);
      } catch (err) {
        if (!this.#controller.signal.aborted) this.#o.log(`snapshot of ${root} failed: ${(err as Error).name}: ${(err as Error).message}`);
      } finally {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.check();
        }
      }
    })();
  }

  /** Stops looking; a snapshot being written is abandoned (its temporary directory removed). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#controller.abort();
    await this.#running;
  }
}
