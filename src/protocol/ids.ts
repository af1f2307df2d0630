/**
 * Protocol ids and gossip topics (docs/design.md "Wire protocols"). One request and one response
 * frame per stream (stream.ts); messages in codec.ts (range, change), messages.ts (heads,
 * delta, log) and peers-codec.ts (peers).
 */

export const RANGE_PROTOCOL = '/proofsync/1/range';
export const CHANGE_PROTOCOL = '/proofsync/1/change';
export const DELTA_PROTOCOL = '/proofsync/1/delta';
export const HEADS_PROTOCOL = '/proofsync/1/heads';
export const LOG_PROTOCOL = '/proofsync/1/log';
/** Other full nodes serving the same database (peers-codec.ts; the node's side is src/node/discovery.ts). */
export const PEERS_PROTOCOL = '/proofsync/1/peers';

export const PROTOCOLS = [RANGE_PROTOCOL, CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL, PEERS_PROTOCOL] as const;

/**
 * The gossipsub topic of a database: signed announcements and deltas, each as its wire encoding
 * (announcement.ts, delta.ts). Their first byte tells them apart: 0x01 a delta, 0x02 an
 * announcement (0x03 one that names a checkpoint).
 *
 * @example
 * pubsub.subscribe(databaseTopic('inventory'));
 */
export function databaseTopic(db: string): string {
  return `/proofsync/1/db/${db}`;
}
