/**
 * The node's gossipsub validator for its database topic: every message is judged by
 * protocol/gossip-verdict.ts before gossipsub forwards it, so a writer or replica never relays
 * forged deltas, garbage or announcements of another database, and gossipsub's peer score
 * (`databaseTopicScoreParams`) graylists the peer that sends them. Verdicts are counted in
 * `proofsync_gossip_messages_total{result,reason}`.
 */
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub';
import { gossipVerdict, type GossipCheck } from '../protocol/gossip-verdict.ts';
import type { NodeMetrics } from './metrics.ts';

const RESULT = { accept: TopicValidatorResult.Accept, reject: TopicValidatorResult.Reject, ignore: TopicValidatorResult.Ignore } as const;

/**
 * Installs the validator; returns a function that removes it.
 *
 * @example
 * const off = validateDatabaseTopic(libp2p.services.pubsub, topic, { writerPublicKey, db: dbId }, metrics);
 */
export function validateDatabaseTopic(pubsub: Pick<GossipSub, 'topicValidators'>, topic: string, check: GossipCheck, metrics: Pick<NodeMetrics, 'gossipMessages'>): () => void {
  const validator = async (_peer: unknown, msg: { data: Uint8Array }): Promise<TopicValidatorResult> => {
    const v = await gossipVerdict(msg.data, check);
    metrics.gossipMessages.inc({ result: v.result, reason: v.result === 'accept' ? v.kind : v.reason });
    return RESULT[v.result];
  };
  pubsub.topicValidators.set(topic, validator);
  return () => {
    if (pubsub.topicValidators.get(topic) === validator) pubsub.topicValidators.delete(topic);
  };
}
