/**
 * The worker's libp2p node (WebSockets, Noise, Yamux, identify, gossipsub on the database topic),
 * loaded by worker/entry.ts as a separate chunk: the engine host, the store and the page's local
 * reads do not wait for this code to download and compile. The libp2p stack is most of the
 * worker's bytes (see `npm run bench -- browser`, "bundle"), and a warm restart's first local
 * `get` needs none of it.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import type { Connection } from '@libp2p/interface';
import { webSockets } from '@libp2p/websockets';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { databaseTopicScoreParams } from '../../protocol/gossip-verdict.ts';
import { databaseTopic } from '../../protocol/ids.ts';
import { transportOf } from '../../protocol/transports.ts';
import { delay } from '../../sync/abort.ts';
import { browserConnectionGater } from '../transport.ts';
import { identityFromBytes } from '../identity.ts';
import { peerIdFromString } from '@libp2p/peer-id';
import type { WorkerConfig } from './worker-messages.ts';

// discovery parses peer ids and multiaddrs: libp2p code, so it lives in this chunk
export { PeerDiscovery } from '../discovery.ts';

export type WorkerNode = Libp2p<{ identify: Identify; pubsub: ReturnType<ReturnType<typeof gossipsub>> }>;

const VALIDATOR_RESULT = { accept: TopicValidatorResult.Accept, reject: TopicValidatorResult.Reject, ignore: TopicValidatorResult.Ignore } as const;

/**
 * A node for `config`, subscribed to the database topic: every message is judged by `judge`
 * before gossipsub forwards it (nothing invalid travels on through this client); `peer` is the
 * one that relayed it. `sessionKey`: the session key's bytes (session-key.ts), made while this chunk loaded.
 */
export async function createNode(config: WorkerConfig, sessionKey: Uint8Array | undefined, judge: (data: Uint8Array, peer: string) => Promise<keyof typeof VALIDATOR_RESULT>): Promise<WorkerNode> {
  const node = (await createLibp2p({
    privateKey: await identityFromBytes(sessionKey),
    addresses: { listen: [] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: browserConnectionGater({ allowInsecureLoopback: config.allowInsecureLoopback }),
    services: {
      // run by hand once a peer's first signed head arrived (entry.ts): measured, identify's
      // exchange (and the gossipsub streams it starts) slows that first answer by a third
      identify: identify({ runOnConnectionOpen: false }),
      // invalid gossip counts against its sender (gossip-verdict.ts): a flooder is graylisted
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, scoreParams: { topics: { [databaseTopic(config.db)]: databaseTopicScoreParams() } } }),
    },
  })) as never as WorkerNode;
  const topic = databaseTopic(config.db);
  node.services.pubsub.topicValidators.set(topic, async (peer, msg) => VALIDATOR_RESULT[await judge(msg.data, peer.toString())]);
  node.services.pubsub.subscribe(topic);
  return node;
}

/** Whether the worker may dial `ma` from a discovery answer: WebSockets only, and the browser's connection gater. */
export function discoveryDialPolicy(config: WorkerConfig): (ma: Multiaddr) => boolean {
  const gater = browserConnectionGater({ allowInsecureLoopback: config.allowInsecureLoopback });
  return (ma) => transportOf(ma.toString()) === 'websockets' && !gater.denyDialMultiaddr!(ma);
}

/** Whether `node` holds a connection to the peer `id`. */
export function connectedTo(node: WorkerNode, id: string): boolean {
  return node.getConnections(peerIdFromString(id)).length > 0;
}

/** Dials `addr` (a multiaddr string). */
export function dialAddr(node: WorkerNode, addr: string, signal: AbortSignal): Promise<Connection> {
  return node.dial(multiaddr(addr), { signal });
}

/** Identify over `conn`, retried with backoff (up to 6 tries) while the connection is open. */
export async function identifyWithRetry(node: WorkerNode, conn: Connection): Promise<void> {
  for (let attempt = 0; attempt < 6; attempt++) {
    if (conn.status !== 'open') return;
    try {
      await node.services.identify.identify(conn, { signal: AbortSignal.timeout(10_000) });
      return;
    } catch {
      await delay(500 * 2 ** attempt);
    }
  }
}
