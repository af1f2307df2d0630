/**
 * Signed head announcements (docs/design.md, trust model): the writer's statement "database `db` is
 * at `stateRoot`, its history log has `logSize` entries with MMR root `logRoot`, and the delta
 * DAG's heads are `heads`". An announcement is the only thing that sets a sync target; `seq`
 * orders them.
 *
 * ## Canonical body encoding
 * ```
 * tag        u8 = 0x02 | 0x03                   (announcement, version 1 | version 2)
 * db         uvarint(len) || bytes              1..64 bytes: a database id (for a name, its UTF-8)
 * seq        u64be
 * stateRoot  32 bytes
 * logRoot    32 bytes                           docs/mmr.md root over logSize leaves
 * logSize    u64be
 * heads      uvarint(n) || n × 32-byte id       strictly increasing; may be empty (no deltas yet)
 * hlc        u64be(wallMs) || u32be(counter) || (0x00 | 0x01 || 32-byte writer)
 * checkpoint u64be(seq) || 32-byte root         version 2 only
 * ```
 * Version 2 adds the newest checkpoint the writer has named (docs/sync.md#checkpoints): a state
 * every node keeps beyond its history window, so every fresh client of an epoch range-syncs to
 * the same root with the same requests. An announcement without one is encoded as version 1,
 * so the bodies (and signatures) of writers that name no checkpoints stay what they were.
 * `checkpoint.seq <= seq`; when equal, `checkpoint.root` is `stateRoot` (the decoder checks both).
 * Integers as in delta.ts (shortest-form LEB128; u64 at most 2^53 − 1).
 * - `digest = SHA-256(body)`; `signature = Ed25519(writerKey, "proofsync/announcement/1" || digest)`.
 * - Wire: `body || signature (64 bytes)`, decoded strictly with typed errors.
 */
import { sha256 } from './sha256.ts';
import { concatBytes, equalBytes } from './bytes.ts';
import { MessageTooLarge } from './errors.ts';
import {
  canonicalIds,
  assertSortedIds,
  type DigestSigner,
  InvalidSignature,
  NonCanonicalEncoding,
  readHlc,
  readSortedIds,
  SIGNATURE_BYTES,
  signDigest,
  verifySignature,
  verifySignatureAsync,
  WireReader,
  WireWriter,
  writeHlc,
} from './delta.ts';
import { assertHlc, type Hlc } from './hlc.ts';

export interface Announcement {
  /** Database id, 1..64 bytes. */
  db: Uint8Array;
  /** Strictly increasing per database; a higher `seq` supersedes. */
  seq: number;
  stateRoot: Uint8Array;
  logRoot: Uint8Array;
  logSize: number;
  /** The DAG heads at this state: 32-byte delta ids, sorted strictly increasing. */
  heads: Uint8Array[];
  hlc: Hlc;
  /**
   * The newest checkpoint the writer has named: the state at announcement `seq` (at most this
   * one's), with root `root`. Absent: the writer names no checkpoints (encoded as version 1).
   */
  checkpoint?: AnnouncedCheckpoint;
}

/** A checkpoint as an announcement names it (`Announcement.checkpoint`). */
export interface AnnouncedCheckpoint {
  seq: number;
  root: Uint8Array;
}

export interface SignedAnnouncement extends Announcement {
  /** 64-byte Ed25519 signature over `"proofsync/announcement/1" || SHA-256(body)`. */
  signature: Uint8Array;
}

declare const verifiedBrand: unique symbol;
export type VerifiedAnnouncement = SignedAnnouncement & { readonly [verifiedBrand]: true };

export interface AnnouncementLimits {
  maxBytes: number;
  maxHeads: number;
}

export const DEFAULT_ANNOUNCEMENT_LIMITS: Readonly<AnnouncementLimits> = Object.freeze({
  maxBytes: 64 * 1024,
  maxHeads: 1024,
});

/** The tag of a version-1 announcement (no checkpoint). */
export const ANNOUNCEMENT_TAG = 0x02;
/** The tag of a version-2 announcement (with `checkpoint`). */
export const ANNOUNCEMENT_V2_TAG = 0x03;

/** Whether a message's first byte says it is an announcement (either version). */
export function isAnnouncementTag(tag: number | undefined): boolean {
  return tag === ANNOUNCEMENT_TAG || tag === ANNOUNCEMENT_V2_TAG;
}
export const MAX_DB_ID_BYTES = 64;
export const ANNOUNCEMENT_SIGNING_CONTEXT: Uint8Array = new TextEncoder().encode('proofsync/announcement/1');

function assertAnnouncement(a: Announcement): void {
  if (!(a.db instanceof Uint8Array)) throw new TypeError('expected db to be a Uint8Array');
  if (a.db.length < 1 || a.db.length > MAX_DB_ID_BYTES) {
    throw new RangeError(`expected a 1..${MAX_DB_ID_BYTES}-byte db id, got ${a.db.length}`);
  }
  for (const [name, v] of [['seq', a.seq], ['logSize', a.logSize]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`expected ${name} to be a safe non-negative integer, got ${v}`);
  }
  for (const [name, v] of [['stateRoot', a.stateRoot], ['logRoot', a.logRoot]] as const) {
    if (!(v instanceof Uint8Array) || v.length !== 32) throw new RangeError(`expected 32-byte ${name}, got ${v?.length}`);
  }
  assertSortedIds(a.heads, 'heads');
  assertHlc(a.hlc);
  if (a.checkpoint !== undefined) {
    const c = a.checkpoint;
    if (!Number.isSafeInteger(c.seq) || c.seq < 0) throw new RangeError(`expected checkpoint.seq to be a safe non-negative integer, got ${c.seq}`);
    if (c.seq > a.seq) throw new RangeError(`checkpoint.seq ${c.seq} is after the announcement's seq ${a.seq}`);
    if (!(c.root instanceof Uint8Array) || c.root.length !== 32) throw new RangeError(`expected 32-byte checkpoint.root, got ${c.root?.length}`);
    if (c.seq === a.seq && !equalBytes(c.root, a.stateRoot)) throw new RangeError('a checkpoint at the announcement\'s own seq must have its stateRoot');
  }
}

/** The canonical body (module comment). Throws `RangeError`/`TypeError` on a malformed announcement. */
export function encodeAnnouncementBody(a: Announcement): Uint8Array {
  assertAnnouncement(a);
  const w = new WireWriter();
  w.u8(a.checkpoint === undefined ? ANNOUNCEMENT_TAG : ANNOUNCEMENT_V2_TAG);
  w.bytesWithLength(a.db);
  w.u64be(a.seq);
  w.raw(a.stateRoot);
  w.raw(a.logRoot);
  w.u64be(a.logSize);
  w.uvarint(a.heads.length);
  for (const h of a.heads) w.raw(h);
  writeHlc(w, a.hlc);
  if (a.checkpoint !== undefined) {
    w.u64be(a.checkpoint.seq);
    w.raw(a.checkpoint.root);
  }
  return w.finish();
}

/** `SHA-256(body)`: what the signature covers, and a handle for de-duplicating gossip. */
export function announcementDigest(a: Announcement): Uint8Array {
  return sha256(encodeAnnouncementBody(a));
}

/**
 * Signs with the writer's 32-byte Ed25519 secret key; heads are put in canonical order first.
 * @example
 * const ann = signAnnouncement({ db, seq: 1, stateRoot, logRoot, logSize: 1, heads: [d.id], hlc }, sk);
 */
export function signAnnouncement(a: Announcement, secretKey: Uint8Array): VerifiedAnnouncement {
  return signAnnouncementWith(a, (context, digest) => signDigest(context, digest, secretKey));
}

/** `signAnnouncement` with any signer (e.g. node:crypto's, src/node/signer.ts): heads in canonical order. */
export function signAnnouncementWith(a: Announcement, sign: DigestSigner): VerifiedAnnouncement {
  const canonical: Announcement = { ...a, heads: canonicalIds(a.heads) };
  return { ...canonical, signature: sign(ANNOUNCEMENT_SIGNING_CONTEXT, announcementDigest(canonical)) } as VerifiedAnnouncement;
}

/** Throws `InvalidSignature` unless the writer signed exactly this content. */
export function verifyAnnouncement(a: SignedAnnouncement, writerPublicKey: Uint8Array): VerifiedAnnouncement {
  const digest = announcementDigest(a);
  if (!verifySignature(ANNOUNCEMENT_SIGNING_CONTEXT, digest, a.signature, writerPublicKey)) {
    throw new InvalidSignature('the announcement signature does not verify under the writer key', { seq: a.seq });
  }
  return a as VerifiedAnnouncement;
}

/**
 * `verifyAnnouncement` with the signature checked by WebCrypto where the runtime has Ed25519
 * (`verifySignatureAsync`): what a cold browser worker uses on its first answer's path.
 *
 * @example
 * const ann = await verifyAnnouncementAsync(decodeAnnouncement(bytes), writerKey);
 */
export async function verifyAnnouncementAsync(a: SignedAnnouncement, writerPublicKey: Uint8Array): Promise<VerifiedAnnouncement> {
  const digest = announcementDigest(a);
  if (!(await verifySignatureAsync(ANNOUNCEMENT_SIGNING_CONTEXT, digest, a.signature, writerPublicKey))) {
    throw new InvalidSignature('the announcement signature does not verify under the writer key', { seq: a.seq });
  }
  return a as VerifiedAnnouncement;
}

/** Wire encoding: `body || signature`. */
export function encodeAnnouncement(a: SignedAnnouncement): Uint8Array {
  if (!(a.signature instanceof Uint8Array) || a.signature.length !== SIGNATURE_BYTES) {
    throw new RangeError(`expected 64-byte signature, got ${a.signature?.length}`);
  }
  return concatBytes(encodeAnnouncementBody(a), a.signature);
}

/** Strict, bounded decoder; every failure is a `DecodeError`. Does not verify the signature. */
export function decodeAnnouncement(bytes: Uint8Array, limits: Partial<AnnouncementLimits> = {}): SignedAnnouncement {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  const lim = { ...DEFAULT_ANNOUNCEMENT_LIMITS, ...limits };
  if (bytes.length > lim.maxBytes) {
    throw new MessageTooLarge(`announcement of ${bytes.length} bytes exceeds the limit of ${lim.maxBytes}`, {
      length: bytes.length,
      max: lim.maxBytes,
    });
  }
  const r = new WireReader(bytes);
  const tag = r.u8('tag');
  if (!isAnnouncementTag(tag)) {
    throw new NonCanonicalEncoding(`expected announcement tag 0x02 or 0x03, got 0x${tag.toString(16)}`);
  }
  const db = r.bytesWithLength('db', MAX_DB_ID_BYTES);
  if (db.length === 0) throw new NonCanonicalEncoding('empty db id');
  const seq = r.u64be('seq');
  const stateRoot = r.bytes(32, 'stateRoot');
  const logRoot = r.bytes(32, 'logRoot');
  const logSize = r.u64be('logSize');
  const heads = readSortedIds(r, 'heads', lim.maxHeads, 0);
  const hlc = readHlc(r);
  let checkpoint: AnnouncedCheckpoint | undefined;
  if (tag === ANNOUNCEMENT_V2_TAG) {
    const cseq = r.u64be('checkpoint.seq');
    const root = r.bytes(32, 'checkpoint.root');
    if (cseq > seq) throw new NonCanonicalEncoding(`checkpoint.seq ${cseq} is after the announcement's seq ${seq}`);
    if (cseq === seq && !equalBytes(root, stateRoot)) throw new NonCanonicalEncoding("a checkpoint at the announcement's own seq names another root than its stateRoot");
    checkpoint = { seq: cseq, root };
  }
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.end();
  const a: SignedAnnouncement = { db, seq, stateRoot, logRoot, logSize, heads, hlc, signature };
  if (checkpoint) a.checkpoint = checkpoint;
  return a;
}

/**
 * Whether `next` may replace `current` as the sync target: same database, higher `seq`.
 * (Both must already be verified.)
 */
export function supersedes(next: Announcement, current: Announcement | undefined): boolean {
  if (current === undefined) return true;
  return equalBytes(next.db, current.db) && next.seq > current.seq;
}
