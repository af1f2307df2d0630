/**
 * A hostile gossip peer for the tests: a real js-libp2p node (the project's own host: WebSockets,
 * Noise, Yamux, gossipsub) that joins a database's topic and, told so on its stdin, floods it:
 *
 * - `invalid N`: N deltas and announcements that no honest peer sends (signed by another key,
 *   or garbage after a valid type byte);
 * - `foreign N`: one announcement of ANOTHER database, signed by the writer's own key (loaded
 *   from the writer's data dir: a key reused for two databases), replayed N times;
 * - `chain DEPTH EVERY_MS`: writer-signed deltas on top of a DEPTH-deep chain whose bottom
 *   parent nobody has (its deltas name no database, so nothing tells them from the writer's
 *   own), a new one on top every EVERY_MS; it serves the chain over `/proofsync/1/delta`, and
 *   counts every id it is asked for.
 *
 * Otherwise it is honest: it answers `/heads` with the newest announcement of the database it
 * heard on gossip, and a delta it does not hold as missing.
 *
 * Usage: `node gossip-attacker.ts <dataDir> <writerDataDir> <db> [dial multiaddr...]`. It writes
 * addresses.json into dataDir, prints "ready <peerId>", then one `stats {json}` line per
 * command and every 500 ms while anything changed; it stops when its stdin closes.
 */
import { createInterface } from 'node:readline';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { decodeAnnouncement, encodeAnnouncement, isAnnouncementTag, signAnnouncement } from '../../src/core/announcement.ts';
import { toHex } from '../../src/core/bytes.ts';
import { deltaId, encodeDelta, signDelta, DELTA_SIGNING_CONTEXT, signDigest, type Delta, type UnsignedDelta } from '../../src/core/delta.ts';
import { createHost } from '../../src/node/host.ts';
import { loadOrCreateIdentity } from '../../src/node/identity.ts';
import { DELTA_PROTOCOL, HEADS_PROTOCOL, databaseTopic } from '../../src/protocol/ids.ts';
import { decodeDeltaRequest, decodeHeadsRequest, encodeDeltaError, encodeDeltaResponse, encodeHeadsError, encodeHeadsResponse, MAX_DELTA_REQUEST_BYTES, MAX_HEADS_REQUEST_BYTES, NotFound } from '../../src/protocol/messages.ts';
import { handle } from '../../src/protocol/stream.ts';

const [dataDir, writerDir, db, ...dial] = process.argv.slice(2);
if (!dataDir || !writerDir || !db) {
  process.stderr.write('usage: gossip-attacker.ts <dataDir> <writerDataDir> <db> [dial multiaddr...]\n');
  process.exit(2);
}

const writerKey = await loadOrCreateIdentity(writerDir);
const writerSecret = writerKey.raw.subarray(0, 32);
const strangerSecret = new Uint8Array(32).fill(0x5a);
const topic = databaseTopic(db);
const enc = (s: string) => new TextEncoder().encode(s);

const host = await createHost({ dataDir, privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
const { libp2p } = host;
const pubsub = libp2p.services.pubsub;
pubsub.subscribe(topic);

const stats = {
  /** Messages published, by kind. */
  published: { invalid: 0, foreign: 0, chain: 0 },
  /** Ids asked for over /delta in all, and those of the chain among them. */
  requestedIds: 0,
  chainIdsRequested: 0,
  deltaRequests: 0,
  /** Peers subscribed to the topic, as gossipsub sees them. */
  subscribers: 0,
};
let dirty = true;
const report = (): void => {
  stats.subscribers = pubsub.getSubscribers(topic).length;
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
  dirty = false;
};
const reporter = setInterval(() => dirty && report(), 500);

// ---- honest parts: /heads with the newest announcement heard, /delta from the chain ----------

let newestAnnouncement: Uint8Array | undefined;
let newestSeq = -1;
pubsub.addEventListener('gossipsub:message', (evt) => {
  const data = evt.detail.msg.data;
  if (evt.detail.msg.topic !== topic || !isAnnouncementTag(data[0])) return;
  try {
    const a = decodeAnnouncement(data);
    if (new TextDecoder().decode(a.db) === db && a.seq > newestSeq) {
      newestSeq = a.seq;
      newestAnnouncement = data;
    }
  } catch {
    // not ours to judge
  }
});

/** The chain, by hex id → index; deltas are signed when first served. */
const chain: { unsigned: UnsignedDelta; id: Uint8Array; signed?: Delta }[] = [];
const chainIndex = new Map<string, number>();
const signedDelta = (i: number): Delta => {
  const c = chain[i];
  c.signed ??= { ...c.unsigned, id: c.id, signature: signDigest(DELTA_SIGNING_CONTEXT, c.id, writerSecret) };
  return c.signed;
};

await handle(
  libp2p,
  HEADS_PROTOCOL,
  async (bytes) => {
    decodeHeadsRequest(bytes);
    if (!newestAnnouncement) throw new NotFound('no announcement heard yet');
    return encodeHeadsResponse({ type: 'announcement', announcement: newestAnnouncement });
  },
  { maxRequestBytes: MAX_HEADS_REQUEST_BYTES, encodeError: encodeHeadsError, ratePerPeer: { burst: 1000, perSecond: 1000 } },
);
await handle(
  libp2p,
  DELTA_PROTOCOL,
  async (bytes) => {
    const { ids } = decodeDeltaRequest(bytes);
    stats.deltaRequests++;
    stats.requestedIds += ids.length;
    const deltas: Uint8Array[] = [];
    const missing: Uint8Array[] = [];
    for (const id of ids) {
      const i = chainIndex.get(toHex(id));
      if (i === undefined) missing.push(id);
      else {
        stats.chainIdsRequested++;
        deltas.push(encodeDelta(signedDelta(i)));
      }
    }
    dirty = true;
    return encodeDeltaResponse({ type: 'batch', deltas, missing, truncated: false });
  },
  { maxRequestBytes: MAX_DELTA_REQUEST_BYTES, encodeError: encodeDeltaError, ratePerPeer: { burst: 10_000, perSecond: 10_000 } },
);

// dialed again when dropped (a graylisted peer may be pruned and disconnected)
const dialAll = (): void => {
  for (const addr of dial) libp2p.dial(multiaddr(addr)).catch((err: unknown) => process.stderr.write(`dial ${addr} failed: ${(err as Error).message}\n`));
};
dialAll();
libp2p.addEventListener('peer:disconnect', (e) => {
  process.stderr.write(`disconnected ${e.detail.toString()}\n`);
  if (dial.length) setTimeout(dialAll, 1000);
});

// ---- the floods ---------------------------------------------------------------------------------

/** Waits (up to 20 s) for a peer on the topic: before that, a publish reaches nobody. */
async function subscribed(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (pubsub.getSubscribers(topic).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

const publish = async (bytes: Uint8Array, kind: keyof typeof stats.published): Promise<void> => {
  try {
    await pubsub.publish(topic, bytes);
    stats.published[kind]++;
    dirty = true;
  } catch (err) {
    process.stderr.write(`publish failed: ${(err as Error).message}\n`);
  }
};

/** Every other message a delta signed by a stranger, or garbage after a delta or announcement type byte. */
async function floodInvalid(n: number): Promise<void> {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
  for (let i = 0; i < n; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = encodeDelta(signDelta({ parents: [Uint8Array.from({ length: 32 }, rnd).sort()], actions: [{ key: enc(`forged${i}`), value: enc('x') }], hlc: { wallMs: Date.now(), counter: i }, stateRoot: new Uint8Array(32), logIndex: i }, strangerSecret));
    } else {
      bytes = Uint8Array.from({ length: 40 + (i % 200) }, rnd);
      bytes[0] = i % 4 === 1 ? 0x01 : 0x02;
    }
    await publish(bytes, 'invalid');
  }
}

/** One announcement of another database, signed with the writer's key, replayed `n` times. */
async function floodForeign(n: number): Promise<void> {
  const ann = encodeAnnouncement(
    signAnnouncement({ db: enc(`${db}-other`), seq: 1_000_000, stateRoot: new Uint8Array(32).fill(3), logRoot: new Uint8Array(32).fill(4), logSize: 100_000, heads: [new Uint8Array(32).fill(5)], hlc: { wallMs: Date.now(), counter: 0 } }, writerSecret),
  );
  for (let i = 0; i < n; i++) await publish(ann, 'foreign');
}

/** Builds the chain's ids (hashes only: signatures come when served or gossiped). */
function buildChain(depth: number): void {
  let parent: Uint8Array = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
  const wall = Date.now() - depth;
  for (let i = 0; i < depth; i++) {
    const unsigned: UnsignedDelta = { parents: [parent], actions: [{ key: enc(`other/${i}`), value: enc(`${i}`) }], hlc: { wallMs: wall + i, counter: 0 }, stateRoot: new Uint8Array(32).fill(7), logIndex: i };
    const id = deltaId(unsigned);
    chainIndex.set(toHex(id), chain.length);
    chain.push({ unsigned, id });
    parent = id;
  }
}

/** Gossips the chain's top, then a new delta on top of it every `everyMs`. */
async function runChain(depth: number, everyMs: number): Promise<void> {
  if (chain.length === 0) buildChain(depth);
  for (;;) {
    await publish(encodeDelta(signedDelta(chain.length - 1)), 'chain');
    await new Promise((r) => setTimeout(r, everyMs));
    const top = chain[chain.length - 1];
    const unsigned: UnsignedDelta = { parents: [top.id], actions: [{ key: enc('other/top'), value: enc(`${chain.length}`) }], hlc: { wallMs: Date.now(), counter: 0 }, stateRoot: new Uint8Array(32).fill(7), logIndex: top.unsigned.logIndex + 1 };
    const id = deltaId(unsigned);
    chainIndex.set(toHex(id), chain.length);
    chain.push({ unsigned, id });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [cmd, a, b] = line.trim().split(/\s+/);
  void (async () => {
    await subscribed();
    if (cmd === 'invalid') await floodInvalid(Number(a));
    else if (cmd === 'foreign') await floodForeign(Number(a));
    else if (cmd === 'chain') void runChain(Number(a), Number(b));
    else if (cmd === 'stats') {
      // answered below
    } else process.stderr.write(`unknown command ${cmd}\n`);
    report();
    process.stdout.write(`done ${cmd}\n`);
  })();
});
const stop = async (): Promise<void> => {
  clearInterval(reporter);
  await host.stop();
  process.exit(0);
};
lines.on('close', () => void stop());
process.on('SIGTERM', () => void stop());
process.stdout.write(`ready ${libp2p.peerId.toString()}\n`);
