/**
 * Protocol ids and gossip topics (docs/design.md "Wire protocols"). One request and one response
 * frame per stream (stream.ts); messages in codec.ts (range, change) and messages.ts (heads,
 * delta, log).
 */

export const RANGE_PROTOCOL = '/proofsync/1/range';
export const CHANGE_PROTOCOL = '/proofsync/1/change';
export const DELTA_PROTOCOL = '/proofsync/1/delta';
export const HEADS_PROTOCOL = '/proofsync/1/heads';
export const LOG_PROTOCOL = '/proofsync/1/log';

export const PROTOCOLS = [RANGE_PROTOCOL, CHANGE_PROTOCOL, DELTA_PROTOCOL, HEADS_PROTOCOL, LOG_PROTOCOL] as const;

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
