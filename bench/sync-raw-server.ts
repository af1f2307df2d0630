/**
 * The raw baseline of the sync benchmark (sync.bench.ts): a host that streams a node store's
 * key-values without proofs, 2,048 per answer, over `/proofsync-bench/1/raw` on WebSockets.
 * `node sync-raw-server.ts <hostDir> <storeDir>`: prints "ready <peerId>" once listening and
 * stops when its stdin closes (the process helper's protocol, src/node/testing/process.ts).
 *
 * Request: u16be start length, start (answer keys > start; empty: from the first), u16be end
 * length, end (keys < end; empty: to the last). Answer: (u16be key length, key, u32be value
 * length, value)*; an empty answer ends the range.
 */
import { createHost } from '../src/node/host.ts';
import { loadOrCreateIdentity } from '../src/node/identity.ts';
import { LevelStore } from '../src/node/level-store.ts';
import { STATE_PREFIX } from '../src/node/node-store.ts';
import { PeerLimits } from '../src/protocol/peer-limits.ts';
import { handle } from '../src/protocol/stream.ts';
import { runUntilStdinEnds } from './lib.ts';

export const RAW_PROTOCOL = '/proofsync-bench/1/raw';
export const RAW_BATCH = 2048;

const [hostDir, storeDir] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  if (!hostDir || !storeDir) {
    process.stderr.write('usage: sync-raw-server.ts <hostDir> <storeDir>\n');
    process.exit(2);
  }
  const level = await LevelStore.open(storeDir);
  const state = level.prefix(STATE_PREFIX);
  const host = await createHost({ dataDir: hostDir, privateKey: await loadOrCreateIdentity(hostDir), listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
  await handle(
    host.libp2p,
    RAW_PROTOCOL,
    async (req) => {
      const dv = new DataView(req.buffer, req.byteOffset, req.byteLength);
      const sl = dv.getUint16(0);
      const start = req.subarray(2, 2 + sl);
      const el = dv.getUint16(2 + sl);
      const end = req.subarray(4 + sl, 4 + sl + el);
      const chunks: Uint8Array[] = [];
      let size = 0;
      let n = 0;
      // the trie's value records: 'v' ++ key (src/core/node-record.ts)
      for await (const [k, v] of state.iterate({ gt: Uint8Array.of(0x76, ...start), lt: el ? Uint8Array.of(0x76, ...end) : Uint8Array.of(0x77), limit: RAW_BATCH })) {
        const head = new Uint8Array(6);
        const h = new DataView(head.buffer);
        h.setUint16(0, k.length - 1);
        h.setUint32(2, v.length);
        chunks.push(head.subarray(0, 2), k.subarray(1), head.subarray(2), v);
        size += 6 + k.length - 1 + v.length;
        n++;
      }
      const out = new Uint8Array(size);
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      void n;
      return out;
    },
    { limits: new PeerLimits({ maxConcurrent: 64 }), maxRequestBytes: 16 * 1024, timeoutMs: 60_000, maxInboundStreams: 64, encodeError: () => new Uint8Array(0) },
  );
  runUntilStdinEnds(async () => {
    await host.stop();
    await level.close();
  });
  process.stdout.write(`ready ${host.peerId.toString()}\n`);
}
