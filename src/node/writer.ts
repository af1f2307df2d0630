/**
 * The writer: each commit is one atomic LevelDB batch holding the trie
 * changes, the history record, the delta (signed, content-addressed, parent = the previous
 * head) as the next log operation, and the new signed head announcement
 * `{db, seq, stateRoot, logRoot, logSize, heads, hlc}` (docs/design.md, trust model). A crash leaves
 * the store at the previous commit or at this one, never between.
 *
 * The writer key is the node's libp2p Ed25519 key: its peer id is what clients trust. It signs
 * through node:crypto (signer.ts: the same signatures, ~17× faster than the portable signer).
 * Commits are not concurrent: the caller serialises them (full-node.ts holds a lock).
 */
import { encodeAnnouncement, decodeAnnouncement, signAnnouncementWith, type VerifiedAnnouncement } from '../core/announcement.ts';
import { compareBytes, equalBytes, toHex } from '../core/bytes.ts';
import { decodeDelta, DEFAULT_DELTA_LIMITS, signDeltaWith, type DigestSigner, type VerifiedDelta } from '../core/delta.ts';
import type { MerkleDatabase } from '../core/database.ts';
import { InvalidRequest } from '../core/errors.ts';
import { HybridClock, type WallClock } from '../core/hlc.ts';
import { EMPTY_ROOT, type KeyChange, type KeyValue } from '../core/types.ts';
import { DELTA_PREFIX, LOG_PREFIX, underPrefix, WRITER_PREFIX, type NodeStore } from './node-store.ts';
import type { OperationLog } from './operation-log.ts';
import { nativeDigestSigner } from './signer.ts';
import { checkpointDue, checkpointSchedule, checkpointsOn, type CheckpointSchedule } from './checkpoints.ts';
import type { AnnouncedCheckpoint } from '../core/announcement.ts';

/** The writer record holding the newest signed announcement. */
export const ANN_KEY = new TextEncoder().encode('ann');
const DB_KEY = new TextEncoder().encode('db');

/** What a writer commit made: the new root, the signed delta and the signed announcement. */
export interface CommitResult {
  /** The state root after the commit. */
  root: Uint8Array;
  /** The signed delta of the commit (its id, actions, log index). */
  delta: VerifiedDelta;
  /** The delta's wire encoding (also log operation `delta.logIndex`). */
  deltaBytes: Uint8Array;
  /** The signed announcement of the new root. */
  announcement: VerifiedAnnouncement;
  /** Its wire encoding, as gossiped. */
  announcementBytes: Uint8Array;
}

/** Reads the database name stored in the node, storing `wanted` on first use. */
export async function databaseName(store: NodeStore, wanted: string | undefined, fallback: string): Promise<string> {
  const stored = await store.writer.get(DB_KEY);
  if (stored) {
    const name = new TextDecoder().decode(stored);
    if (wanted !== undefined && wanted !== name) {
      throw new InvalidRequest(`this data directory holds database ${JSON.stringify(name)}, not ${JSON.stringify(wanted)}`);
    }
    return name;
  }
  const name = wanted ?? fallback;
  const bytes = new TextEncoder().encode(name);
  if (bytes.length < 1 || bytes.length > 64) throw new RangeError(`expected a database name of 1..64 bytes, got ${bytes.length}`);
  await store.writer.write([{ type: 'put', key: DB_KEY, value: bytes }]);
  return name;
}

/** The newest stored announcement (written by a writer node), if any. */
export async function storedAnnouncement(store: Pick<NodeStore, 'writer'>): Promise<Uint8Array | undefined> {
  return store.writer.get(ANN_KEY);
}

/**
 * Puts and deletes in canonical delta order: one action per key (the last one wins), sorted
 * by key. Throws `InvalidRequest` for an empty batch or one past the delta limits.
 */
export function canonicalActions(changes: KeyChange[]): KeyChange[] {
  if (changes.length === 0) throw new InvalidRequest('a batch needs at least one put or delete');
  const byKey = new Map<string, KeyChange>();
  for (const c of changes) {
    if (c.key.length > DEFAULT_DELTA_LIMITS.maxKeyBytes) throw new InvalidRequest(`key of ${c.key.length} bytes exceeds ${DEFAULT_DELTA_LIMITS.maxKeyBytes}`);
    if (c.value && c.value.length > DEFAULT_DELTA_LIMITS.maxValueBytes) {
      throw new InvalidRequest(`value of ${c.value.length} bytes exceeds ${DEFAULT_DELTA_LIMITS.maxValueBytes}`);
    }
    byKey.set(toHex(c.key), c);
  }
  if (byKey.size > DEFAULT_DELTA_LIMITS.maxActions) throw new InvalidRequest(`${byKey.size} keys in one batch exceed ${DEFAULT_DELTA_LIMITS.maxActions}`);
  return [...byKey.values()].sort((a, b) => compareBytes(a.key, b.key));
}

/** What the writer needs of the state: a `MerkleDatabase`, or the bare trie (generate-log.ts). */
export type WriterDatabase = Pick<MerkleDatabase, 'root' | 'commit' | 'bulkLoad'> & Partial<Pick<MerkleDatabase, 'retainCheckpoint'>>;

/** The node's store, or any with the same layout (generate-log.ts builds one in memory). */
export interface WriterStore {
  db: WriterDatabase;
  writer: NodeStore['writer'];
}

export interface WriterOptions {
  store: WriterStore;
  log: OperationLog;
  /** 32-byte Ed25519 secret key (seed) and its public key. */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  db: string;
  wallClock?: WallClock;
  /** Default: node:crypto's Ed25519 over `secretKey` (signer.ts). */
  sign?: DigestSigner;
  /** When to name a checkpoint (checkpoints.ts); default every 64 commits or 60 s. */
  checkpoints?: CheckpointSchedule;
}

export class DatabaseWriter {
  private readonly store: WriterStore;
  private readonly log: OperationLog;
  private readonly sign: DigestSigner;
  readonly db: Uint8Array;
  private readonly clock: HybridClock;
  private current: VerifiedAnnouncement;
  private currentBytes: Uint8Array;
  private readonly schedule: CheckpointSchedule;
  private readonly wallClock: WallClock;
  /** When the newest checkpoint was named (or the writer opened), for the interval. */
  private checkpointAt: number;

  private constructor(o: WriterOptions, clock: HybridClock, ann: VerifiedAnnouncement, bytes: Uint8Array) {
    this.schedule = o.checkpoints ?? checkpointSchedule();
    this.wallClock = o.wallClock ?? Date.now;
    this.checkpointAt = this.wallClock();
    this.store = o.store;
    this.log = o.log;
    this.sign = o.sign ?? nativeDigestSigner(o.secretKey);
    this.db = new TextEncoder().encode(o.db);
    this.clock = clock;
    this.current = ann;
    this.currentBytes = bytes;
  }

  /**
   * Opens the writer; when the stored announcement does not describe the store (none yet, or a
   * bulk load after it), signs and stores a new one.
   */
  static async open(o: WriterOptions): Promise<DatabaseWriter> {
    const stored = await storedAnnouncement(o.store);
    const last = stored ? decodeAnnouncement(stored) : undefined;
    const clock = new HybridClock(o.wallClock ?? Date.now, { writer: o.publicKey, last: last?.hlc ? { wallMs: last.hlc.wallMs, counter: last.hlc.counter } : undefined });
    const w = new DatabaseWriter(o, clock, undefined as unknown as VerifiedAnnouncement, new Uint8Array(0));
    if (last && stored && equalBytes(last.stateRoot, o.store.db.root) && last.logSize === o.log.size) {
      w.current = last as VerifiedAnnouncement;
      w.currentBytes = stored;
      // normally retained already; a store written before checkpoints were named holds none
      if (last.checkpoint && checkpointsOn(w.schedule)) await o.store.db.retainCheckpoint?.(last.checkpoint.root);
    } else {
      await w.reannounce(last?.seq ?? 0);
    }
    return w;
  }

  /** The checkpoint the announcement `seq` of a commit to `stateRoot` names. */
  private checkpointFor(seq: number, stateRoot: Uint8Array, now: number): AnnouncedCheckpoint | undefined {
    if (!checkpointsOn(this.schedule)) return undefined;
    const previous = this.current?.checkpoint;
    if (!checkpointDue(this.schedule, previous, seq, now - this.checkpointAt)) return previous;
    return { seq, root: stateRoot };
  }

  /** After a commit: a newly named checkpoint starts the interval and is kept beyond the window. */
  private async named(ann: VerifiedAnnouncement, now: number): Promise<void> {
    const c = ann.checkpoint;
    if (c === undefined || c.seq !== ann.seq) return;
    this.checkpointAt = now;
    await this.store.db.retainCheckpoint?.(c.root);
  }

  get announcement(): VerifiedAnnouncement {
    return this.current;
  }

  get announcementBytes(): Uint8Array {
    return this.currentBytes;
  }

  /** The DAG heads: the newest delta, or none before the first commit. */
  get heads(): Uint8Array[] {
    return this.current.heads;
  }

  /** Signs and stores an announcement of the current state (after a bulk load). */
  async reannounce(previousSeq = this.current.seq): Promise<VerifiedAnnouncement> {
    let heads: Uint8Array[] = [];
    if (this.log.size > 0) {
      const last = await this.log.operation(this.log.size - 1);
      if (last) heads = [decodeDelta(last).id];
    }
    // a new state without history (a bulk load, a first start): a checkpoint at once, so fresh
    // clients have a root to range-sync to before the first commit
    const seq = previousSeq + 1;
    const stateRoot = this.store.db.root;
    const now = this.wallClock();
    const ann = signAnnouncementWith(
      {
        db: this.db,
        seq,
        stateRoot,
        logRoot: this.log.root(),
        logSize: this.log.size,
        heads,
        hlc: this.clock.tick(),
        ...(checkpointsOn(this.schedule) ? { checkpoint: { seq, root: stateRoot } } : {}),
      },
      this.sign,
    );
    const bytes = encodeAnnouncement(ann);
    await this.store.writer.write([{ type: 'put', key: ANN_KEY, value: bytes }]);
    this.current = ann;
    this.currentBytes = bytes;
    await this.named(ann, now);
    return ann;
  }

  /** Fills an empty database from sorted, unique key-values and announces the result. */
  async bulkLoad(sorted: KeyValue[]): Promise<Uint8Array> {
    if (!equalBytes(this.store.db.root, EMPTY_ROOT)) throw new InvalidRequest('bulk load needs an empty database');
    const root = await this.store.db.bulkLoad(sorted);
    await this.reannounce();
    return root;
  }

  /**
   * Commits one batch of puts (`value` set) and deletes: trie, history, delta, log operation
   * and announcement in one LevelDB batch.
   */
  async commit(changes: KeyChange[]): Promise<CommitResult> {
    const actions = canonicalActions(changes);
    const db = this.store.db;
    // The delta and the announcement carry the new root and are written in the same batch as
    // the trie: they are built inside the commit, once the root is known.
    const hlc = this.clock.tick();
    const logIndex = this.log.size;
    const parents = this.current.heads.length ? this.current.heads : [EMPTY_ROOT];
    const now = this.wallClock();
    let built: { delta: VerifiedDelta; deltaBytes: Uint8Array; staged: ReturnType<OperationLog['stage']>; announcement: VerifiedAnnouncement; announcementBytes: Uint8Array } | undefined;
    const root = await db.commit(actions, (stateRoot) => {
      const { delta, bytes: deltaBytes } = signDeltaWith({ parents, actions, hlc, stateRoot, logIndex }, this.sign);
      const staged = this.log.stage(delta.id, deltaBytes);
      const seq = this.current.seq + 1;
      const checkpoint = this.checkpointFor(seq, stateRoot, now);
      const announcement = signAnnouncementWith(
        { db: this.db, seq, stateRoot, logRoot: staged.root, logSize: staged.size, heads: [delta.id], hlc, ...(checkpoint ? { checkpoint } : {}) },
        this.sign,
      );
      const announcementBytes = encodeAnnouncement(announcement);
      built = { delta, deltaBytes, staged, announcement, announcementBytes };
      return [
        ...underPrefix(LOG_PREFIX, staged.logOps),
        ...underPrefix(DELTA_PREFIX, staged.deltaOps),
        ...underPrefix(WRITER_PREFIX, [{ type: 'put', key: ANN_KEY, value: announcementBytes }]),
      ];
    });
    const { delta, deltaBytes, staged, announcement, announcementBytes } = built!;
    if (!equalBytes(root, delta.stateRoot)) throw new Error(`internal: committed root ${toHex(root)} differs from the announced ${toHex(delta.stateRoot)}`);
    this.log.applyStaged(staged);
    this.current = announcement;
    this.currentBytes = announcementBytes;
    await this.named(announcement, now);
    return { root, delta, deltaBytes, announcement, announcementBytes };
  }
}
