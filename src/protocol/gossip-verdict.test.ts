import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { encodeAnnouncement, signAnnouncement, type Announcement } from '../core/announcement.ts';
import { toHex } from '../core/bytes.ts';
import { encodeDelta, signDelta, type UnsignedDelta, type VerifiedDelta } from '../core/delta.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { databaseTopicScoreParams, gossipVerdict, type GossipCheck } from './gossip-verdict.ts';
import { createTopicScoreParams, validateTopicScoreParams } from '@libp2p/gossipsub/score';

const sk = sha256(new TextEncoder().encode('gossip verdict writer'));
const pk = ed25519.getPublicKey(sk);
const otherSk = sha256(new TextEncoder().encode('someone else'));
const db = new TextEncoder().encode('inventory');
const b = (s: string) => new TextEncoder().encode(s);

const unsigned: UnsignedDelta = { parents: [EMPTY_ROOT], actions: [{ key: b('k'), value: b('v') }], hlc: { wallMs: 1000, counter: 0 }, stateRoot: new Uint8Array(32).fill(1), logIndex: 0 };
const delta = signDelta(unsigned, sk);
const deltaBytes = encodeDelta(delta);
const forgedDelta = encodeDelta({ ...signDelta(unsigned, otherSk) });
const ann = (over: Partial<Announcement> = {}, key = sk) =>
  encodeAnnouncement(signAnnouncement({ db, seq: 5, stateRoot: new Uint8Array(32).fill(2), logRoot: new Uint8Array(32).fill(3), logSize: 1, heads: [delta.id], hlc: { wallMs: 1000, counter: 0 }, ...over }, key));
const flipped = (bytes: Uint8Array, at: number) => {
  const c = bytes.slice();
  c[at] ^= 1;
  return c;
};

const base: GossipCheck = { writerPublicKey: pk, db };

describe('gossipVerdict', () => {
  const cases: { name: string; bytes: Uint8Array; check?: Partial<GossipCheck>; result: string; reason?: string }[] = [
    { name: 'a writer-signed delta', bytes: deltaBytes, result: 'accept' },
    { name: 'a delta signed by another key', bytes: forgedDelta, result: 'reject', reason: 'bad-signature' },
    { name: 'a delta with a flipped signature bit', bytes: flipped(deltaBytes, deltaBytes.length - 1), result: 'reject', reason: 'bad-signature' },
    { name: 'a delta cut short', bytes: deltaBytes.subarray(0, 20), result: 'reject', reason: 'bad-encoding' },
    { name: 'a delta with trailing bytes', bytes: Uint8Array.of(...deltaBytes, 0), result: 'reject', reason: 'bad-encoding' },
    { name: 'a delta already held', bytes: deltaBytes, check: { knowsDelta: () => true }, result: 'ignore', reason: 'duplicate' },
    { name: 'a delta on an abandoned chain', bytes: deltaBytes, check: { abandoned: () => true }, result: 'ignore', reason: 'abandoned-chain' },
    { name: 'an announcement of this database', bytes: ann(), result: 'accept' },
    { name: 'an announcement of another database by the same writer', bytes: ann({ db: b('other') }), result: 'reject', reason: 'wrong-database' },
    { name: 'an announcement signed by another key', bytes: ann({}, otherSk), result: 'reject', reason: 'bad-signature' },
    { name: 'an announcement cut short', bytes: ann().subarray(0, 30), result: 'reject', reason: 'bad-encoding' },
    { name: 'an announcement older than the newest', bytes: ann({ seq: 4 }), check: { newestSeq: () => 5 }, result: 'ignore', reason: 'stale' },
    { name: 'the newest announcement again', bytes: ann({ seq: 5 }), check: { newestSeq: () => 5 }, result: 'accept' },
    { name: 'an unknown type byte', bytes: Uint8Array.of(0x07, 1, 2, 3), result: 'reject', reason: 'unknown-type' },
    { name: 'an empty message', bytes: new Uint8Array(0), result: 'reject', reason: 'unknown-type' },
    { name: 'garbage after a delta type byte', bytes: Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), result: 'reject', reason: 'bad-encoding' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.result}${c.reason ? ` (${c.reason})` : ''}`, async () => {
      const v = await gossipVerdict(c.bytes, { ...base, ...c.check });
      expect(v.result).toBe(c.result);
      if (c.reason) expect((v as { reason: string }).reason).toBe(c.reason);
    });
  }

  it('hands the verified delta on, so the receiver need not verify it again', async () => {
    const v = await gossipVerdict(deltaBytes, base);
    expect(v.result === 'accept' && v.kind === 'delta' && toHex(v.delta.id)).toBe(toHex(delta.id));
  });

  it('uses the verifier given (the client checks with WebCrypto)', async () => {
    let calls = 0;
    const v = await gossipVerdict(deltaBytes, { ...base, verifyDelta: async () => (calls++, delta as VerifiedDelta) });
    expect(calls).toBe(1);
    expect(v.result).toBe('accept');
  });

  it('never throws on random bytes', async () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    for (let i = 0; i < 300; i++) {
      const bytes = Uint8Array.from({ length: 1 + (rnd() % 200) }, rnd);
      bytes[0] = [0x01, 0x02, rnd()][i % 3];
      const v = await gossipVerdict(bytes, base);
      expect(v.result).toBe('reject');
    }
  });
});

describe('databaseTopicScoreParams', () => {
  it('passes gossipsub validation and only penalises invalid messages', () => {
    const p = createTopicScoreParams(databaseTopicScoreParams());
    expect(() => validateTopicScoreParams(p)).not.toThrow();
    expect(p.meshMessageDeliveriesWeight).toBe(0);
    expect(p.meshFailurePenaltyWeight).toBe(0);
    // ten rejected messages take a peer below the default graylist threshold (-80)
    expect(10 * 10 * p.invalidMessageDeliveriesWeight * p.topicWeight).toBeLessThan(-80);
  });
});
