import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { describe, expect, it } from 'vitest';
import { encodeAnnouncement, signAnnouncement } from '../core/announcement.ts';
import { encodeDelta, signDelta } from '../core/delta.ts';
import { EMPTY_ROOT } from '../core/types.ts';
import { validateDatabaseTopic } from './gossip-validator.ts';
import { NodeMetrics } from './metrics.ts';

const sk = sha256(new TextEncoder().encode('node gossip validator writer'));
const pk = ed25519.getPublicKey(sk);
const db = new TextEncoder().encode('inventory');
const topic = '/proofsync/1/db/inventory';
const delta = encodeDelta(signDelta({ parents: [EMPTY_ROOT], actions: [], hlc: { wallMs: 1, counter: 0 }, stateRoot: new Uint8Array(32), logIndex: 0 }, sk));
const ann = (name: string) =>
  encodeAnnouncement(signAnnouncement({ db: new TextEncoder().encode(name), seq: 3, stateRoot: new Uint8Array(32), logRoot: new Uint8Array(32), logSize: 1, heads: [], hlc: { wallMs: 1, counter: 0 } }, sk));

describe('validateDatabaseTopic', () => {
  const cases: { name: string; data: Uint8Array; result: TopicValidatorResult; reason: string }[] = [
    { name: 'a writer-signed delta', data: delta, result: TopicValidatorResult.Accept, reason: 'delta' },
    { name: 'an announcement of this database', data: ann('inventory'), result: TopicValidatorResult.Accept, reason: 'announcement' },
    { name: 'an announcement of another database', data: ann('other'), result: TopicValidatorResult.Reject, reason: 'wrong-database' },
    { name: 'garbage', data: Uint8Array.of(1, 2, 3), result: TopicValidatorResult.Reject, reason: 'bad-encoding' },
    { name: 'an old announcement', data: ann('inventory'), result: TopicValidatorResult.Ignore, reason: 'stale' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.result}, counted as ${c.reason}`, async () => {
      const pubsub = { topicValidators: new Map() };
      const metrics = new NodeMetrics({ defaultMetrics: false });
      const off = validateDatabaseTopic(pubsub as never, topic, { writerPublicKey: pk, db, newestSeq: () => (c.reason === 'stale' ? 4 : undefined) }, metrics);
      const validator = pubsub.topicValidators.get(topic) as (peer: unknown, msg: { data: Uint8Array }) => Promise<TopicValidatorResult>;
      expect(await validator(undefined, { data: c.data })).toBe(c.result);
      const counted = (await metrics.gossipMessages.get()).values.find((v) => v.labels.reason === c.reason);
      expect(counted?.value).toBe(1);
      off();
      expect(pubsub.topicValidators.has(topic)).toBe(false);
    });
  }
});
