/**
 * A full-node process for tests: `node echo-node.ts <dataDir>` starts a host with the test
 * echo protocols (echo-protocol.ts), writes addresses.json, prints "ready <peerId>" on stdout,
 * and stops on SIGTERM, SIGINT or when its stdin closes (so it never outlives its parent).
 */
import { InvalidRequest } from '../../core/errors.ts';
import { PeerLimits } from '../../protocol/peer-limits.ts';
import { handle } from '../../protocol/stream.ts';
import { createHost } from '../host.ts';
import { loadOrCreateIdentity } from '../identity.ts';
import * as echo from './echo-protocol.ts';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: echo-node.ts <dataDir> [listen multiaddr...]\n');
  process.exit(2);
}
const listen = process.argv.length > 3 ? process.argv.slice(3) : undefined;

const host = await createHost({
  dataDir,
  privateKey: await loadOrCreateIdentity(dataDir),
  listen,
  // tests open many clients from 127.0.0.1; libp2p's default is 5 connections/s per IP
  connectionManager: { inboundConnectionThreshold: 10_000 },
});
const node = host.libp2p;
const limits = new PeerLimits({ maxConcurrent: echo.ECHO_MAX_CONCURRENT });
const common = { maxRequestBytes: echo.ECHO_MAX_REQUEST, timeoutMs: echo.ECHO_TIMEOUT_MS, encodeError: echo.encodeError };

await handle(node, echo.ECHO, (req) => echo.encodeOk(req), { ...common, limits });

const held = new Set<() => void>();
await handle(
  node,
  echo.HOLD,
  (req, { signal }) =>
    new Promise<Uint8Array>((resolve, reject) => {
      const release = (): void => {
        held.delete(release);
        resolve(echo.encodeOk(req));
      };
      held.add(release);
      signal.addEventListener('abort', () => {
        held.delete(release);
        reject(signal.reason);
      });
    }),
  { ...common, limits, timeoutMs: 30_000 },
);
await handle(
  node,
  echo.RELEASE,
  () => {
    const n = held.size;
    for (const release of [...held]) release();
    return echo.encodeOk(new TextEncoder().encode(String(n)));
  },
  common,
);
await handle(node, echo.STATS, () => echo.encodeOk(new TextEncoder().encode(JSON.stringify({ held: held.size }))), {
  ...common,
  maxConcurrentPerPeer: 64,
});
await handle(node, echo.RATED, (req) => echo.encodeOk(req), { ...common, ratePerPeer: { burst: 3, perSecond: 0 } });
await handle(
  node,
  echo.FAIL,
  (req) => {
    const name = new TextDecoder().decode(req);
    if (name === 'InvalidRequest') throw new InvalidRequest('the request was refused on purpose');
    throw new Error(`secret internal detail ${name}`);
  },
  common,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await host.stop();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.stdout.write(`ready ${host.peerId.toString()}\n`);
