/**
 * The log benchmark's server (log.bench.ts): a host that serves `/proofsync/1/log` and
 * `/proofsync/1/heads` for a synthetic operation log of N operations, so the figure can be
 * measured at a million operations (a real writer commits a few hundred to a few thousand per
 * second here: a million commits would take most of an hour).
 *
 * The operations are real wire-format deltas (one 32-byte key put with a 64-byte value, one
 * parent, an HLC, a state root, their log index and a signature field: 248 bytes, the size of a
 * one-key commit of the real writer), made from one template with the index written into the
 * key and `logIndex`; their signature field is zeros (the log client does not check delta
 * signatures: the MMR proof against the signed log root authenticates them). The log, its MMR
 * and the serving code are the node's own (`OperationLog`, the same protocol handlers' codecs),
 * and the announcement is really signed by this host's key, which is the "writer" the client
 * trusts. The database id is the host's peer id.
 *
 * `node log-server.ts <dataDir> <N>`: prints "ready <peerId>" once serving; stops when its
 * stdin closes (the process helper's protocol, src/node/testing/process.ts).
 */
import { encodeAnnouncement, signAnnouncement } from '../src/core/announcement.ts';
import { encodeDelta } from '../src/core/delta.ts';
import { MemoryStore } from '../src/core/store.ts';
import { EMPTY_ROOT } from '../src/core/types.ts';
import { createHost } from '../src/node/host.ts';
import { loadOrCreateIdentity } from '../src/node/identity.ts';
import { u64be } from '../src/node/node-store.ts';
import { OperationLog } from '../src/node/operation-log.ts';
import { HEADS_PROTOCOL, LOG_PROTOCOL } from '../src/protocol/ids.ts';
import {
  decodeLogRequest,
  encodeHeadsResponse,
  encodeLogError,
  encodeLogResponse,
  MAX_LOG_OPS,
  MAX_LOG_REQUEST_BYTES,
  RESPONSE_BYTE_BUDGET,
} from '../src/protocol/messages.ts';
import { handle } from '../src/protocol/stream.ts';

const KEY_OFFSET = 1 + 1 + 32 + 1 + 1; // tag, parent count, parent, action count, key length

/** Operation `i`: the template with `i` in its key and its `logIndex`. */
export function syntheticOperation(template: Uint8Array, i: number): Uint8Array {
  const op = template.slice();
  op.set(u64be(i), KEY_OFFSET);
  op.set(u64be(i), op.length - 64 - 8);
  return op;
}

export function operationTemplate(): Uint8Array {
  return encodeDelta({
    parents: [EMPTY_ROOT],
    actions: [{ key: new Uint8Array(32).fill(0x11), value: new Uint8Array(64).fill(0x22) }],
    hlc: { wallMs: 1_700_000_000_000, counter: 0 },
    stateRoot: new Uint8Array(32).fill(0x33),
    logIndex: 0,
    id: new Uint8Array(32),
    signature: new Uint8Array(64),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dataDir, count] = process.argv.slice(2);
  const n = Number(count);
  if (!dataDir || !(n > 0)) {
    process.stderr.write('usage: log-server.ts <dataDir> <operations>\n');
    process.exit(2);
  }
  const logStore = new MemoryStore();
  const template = operationTemplate();
  for (let i = 0; i < n; i += 65_536) {
    const ops = [];
    for (let j = i; j < Math.min(n, i + 65_536); j++) ops.push({ type: 'put' as const, key: u64be(j), value: syntheticOperation(template, j) });
    logStore.writeSync(ops);
  }
  const log = await OperationLog.open(logStore, new MemoryStore());
  const privateKey = await loadOrCreateIdentity(dataDir);
  const host = await createHost({ dataDir, privateKey, listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
  const announcement = encodeAnnouncement(
    signAnnouncement(
      { db: new TextEncoder().encode(host.peerId.toString()), seq: 1, stateRoot: EMPTY_ROOT, logRoot: log.root(), logSize: log.size, heads: [], hlc: { wallMs: Date.now(), counter: 0 } },
      privateKey.raw.subarray(0, 32),
    ),
  );
  const common = { timeoutMs: 60_000, maxConcurrentPerPeer: 16 };
  await handle(host.libp2p, HEADS_PROTOCOL, () => encodeHeadsResponse({ type: 'announcement', announcement }), { ...common, maxRequestBytes: 256 });
  await handle(
    host.libp2p,
    LOG_PROTOCOL,
    async (bytes) => {
      const b = await log.batch(decodeLogRequest(bytes), { maxOps: MAX_LOG_OPS, maxBytes: RESPONSE_BYTE_BUDGET });
      return encodeLogResponse({ type: 'batch', operations: b.operations, proof: b.proof.digests, pinned: b.pinned });
    },
    { ...common, maxRequestBytes: MAX_LOG_REQUEST_BYTES, encodeError: encodeLogError },
  );
  const stop = async (): Promise<void> => {
    await host.stop();
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.stdout.write(`ready ${host.peerId.toString()}\n`);
}
