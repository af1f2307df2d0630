/**
 * What a node or a light client tells gossipsub about one message of a database topic
 * (protocol/ids.ts `databaseTopic`): `accept` (deliver and forward), `reject` (invalid: never
 * forwarded, and gossipsub's peer score P4 counts it against the peer that sent it) or `ignore`
 * (valid but useless to us: neither forwarded nor counted). gossipsub calls the topic validator
 * before it forwards anything, so a verdict here is what keeps a forged message from travelling
 * on through us.
 *
 * Reject is for what no honest peer sends: bytes that do not decode, a signature that does not
 * verify under the writer key, an announcement of another database, an unknown type byte.
 * Ignore is for what an honest relay may well pass on: a delta we already hold, an
 * announcement older than the newest we know, a delta on a chain this peer gave up on.
 *
 * The checks are the same on both sides; the context says what "already known" means there.
 */
import { decodeAnnouncement, isAnnouncementTag, verifyAnnouncementAsync, type SignedAnnouncement, type VerifiedAnnouncement } from '../core/announcement.ts';
import { equalBytes } from '../core/bytes.ts';
import { decodeDelta, DELTA_SIGNING_CONTEXT, InvalidSignature, verifySignatureAsync, type VerifiedDelta } from '../core/delta.ts';
import type { TopicScoreParams } from '@libp2p/gossipsub/score';

export type GossipRejectReason = 'bad-encoding' | 'bad-signature' | 'wrong-database' | 'unknown-type';
export type GossipIgnoreReason = 'duplicate' | 'stale' | 'abandoned-chain';

export type GossipVerdict =
  | { result: 'accept'; kind: 'delta'; delta: VerifiedDelta }
  | { result: 'accept'; kind: 'announcement'; announcement: VerifiedAnnouncement }
  | { result: 'reject'; reason: GossipRejectReason; detail: string }
  | { result: 'ignore'; reason: GossipIgnoreReason };

export interface GossipCheck {
  /** The followed writer's Ed25519 public key (32 bytes). */
  writerPublicKey: Uint8Array;
  /** The database id announcements must name. */
  db: Uint8Array;
  /**
   * Decodes and verifies a delta's wire bytes (default: `decodeDelta`, then the signature through
   * WebCrypto where the runtime has Ed25519: noble took ~7 ms a signature on this machine, twice
   * per gossiped commit, which starved a replica following 20 commits a second). The client
   * passes its verifier with the key imported once. Throws a decode error or `InvalidSignature`.
   */
  verifyDelta?(bytes: Uint8Array): Promise<VerifiedDelta> | VerifiedDelta;
  /** Verifies a decoded announcement's signature (default: WebCrypto where the runtime has Ed25519). */
  verifyAnnouncement?(a: SignedAnnouncement): Promise<VerifiedAnnouncement> | VerifiedAnnouncement;
  /** Whether a delta is already held or applied here. */
  knowsDelta?(id: Uint8Array): boolean;
  /** Whether a delta hangs on a chain that was given up on (live/missing-chains.ts). */
  abandoned?(delta: VerifiedDelta): boolean;
  /** The `seq` of the newest announcement known here. */
  newestSeq?(): number | undefined;
}

const DELTA_TYPE = 0x01;

const describe = (err: unknown): string => {
  const e = err as { name?: unknown; message?: unknown } | null;
  return `${typeof e?.name === 'string' ? e.name : 'Error'}: ${typeof e?.message === 'string' ? e.message : String(err)}`;
};

/** A decode error (any `DecodeError` of the core) versus a failed signature. */
const isSignatureError = (err: unknown): boolean => {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'InvalidSignature' || name === 'DeltaIdMismatch';
};

async function verifyDeltaBytes(bytes: Uint8Array, writerPublicKey: Uint8Array): Promise<VerifiedDelta> {
  const d = decodeDelta(bytes);
  if (!(await verifySignatureAsync(DELTA_SIGNING_CONTEXT, d.id, d.signature, writerPublicKey))) {
    throw new InvalidSignature('the delta signature does not verify under the writer key', { id: d.id });
  }
  return d as VerifiedDelta;
}

/**
 * The verdict on one message of the database topic.
 *
 * @example
 * pubsub.topicValidators.set(topic, async (_peer, msg) => (await gossipVerdict(msg.data, check)).result as TopicValidatorResult);
 */
export async function gossipVerdict(bytes: Uint8Array, check: GossipCheck): Promise<GossipVerdict> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return { result: 'reject', reason: 'unknown-type', detail: 'an empty message' };
  if (bytes[0] === DELTA_TYPE) {
    let delta: VerifiedDelta;
    try {
      delta = check.verifyDelta ? await check.verifyDelta(bytes) : await verifyDeltaBytes(bytes, check.writerPublicKey);
    } catch (err) {
      return { result: 'reject', reason: isSignatureError(err) ? 'bad-signature' : 'bad-encoding', detail: describe(err) };
    }
    if (check.knowsDelta?.(delta.id)) return { result: 'ignore', reason: 'duplicate' };
    if (check.abandoned?.(delta)) return { result: 'ignore', reason: 'abandoned-chain' };
    return { result: 'accept', kind: 'delta', delta };
  }
  if (isAnnouncementTag(bytes[0])) {
    let decoded: SignedAnnouncement;
    try {
      decoded = decodeAnnouncement(bytes);
    } catch (err) {
      return { result: 'reject', reason: 'bad-encoding', detail: describe(err) };
    }
    if (!equalBytes(decoded.db, check.db)) {
      // another database's (checked before the signature: it is cheaper, and wrong either way):
      // signed by the writer for another of its databases, replayed here on purpose or by a
      // misconfigured relay, nothing a peer should forward on this topic
      return { result: 'reject', reason: 'wrong-database', detail: `an announcement of database "${new TextDecoder().decode(decoded.db)}"` };
    }
    let ann: VerifiedAnnouncement;
    try {
      ann = check.verifyAnnouncement ? await check.verifyAnnouncement(decoded) : await verifyAnnouncementAsync(decoded, check.writerPublicKey);
    } catch (err) {
      return { result: 'reject', reason: 'bad-signature', detail: describe(err) };
    }
    const newest = check.newestSeq?.();
    if (newest !== undefined && ann.seq < newest) return { result: 'ignore', reason: 'stale' };
    return { result: 'accept', kind: 'announcement', announcement: ann };
  }
  return { result: 'reject', reason: 'unknown-type', detail: `type byte 0x${bytes[0].toString(16).padStart(2, '0')}` };
}

/**
 * gossipsub score parameters for a database topic: only invalid messages (P4) count, so a peer
 * whose messages we reject falls below the graylist threshold (-80 by default) after about
 * ten of them (10² × -1 × topic weight 1 = -100) and gossipsub drops its RPCs unread from then
 * on, until the count decays (×0.9 a second) below nine; an honest peer that relayed one bad
 * message loses 1 point, far above every threshold. The mesh-delivery terms (P3, P3b) are off: a quiet database delivers nothing
 * for minutes, which must not count against its honest peers.
 */
export function databaseTopicScoreParams(): TopicScoreParams {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 0.1,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 20,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 1,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -1,
    invalidMessageDeliveriesDecay: 0.9,
  };
}
