// A full node inside a Node program: a writer over a LevelDB store in a temporary folder,
// one commit, its status, and a clean stop. Prints the peer id, the root and the log size.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// #region node
import { startFullNode } from 'proofsync/node';

const dataDir = await mkdtemp(join(tmpdir(), 'proofsync-'));
const node = await startFullNode({ dataDir, generate: 1_000, httpPort: null }); // a writer with 1,000 seeded keys
console.info(node.peerId, node.file.ws);      // what clients trust and dial
await node.commit([{ key: new TextEncoder().encode('greeting'), value: new TextEncoder().encode('hello') }]);
const { root, logSize } = node.status();       // signed, announced, served
await node.stop();
// #endregion node
await rm(dataDir, { recursive: true, force: true });
console.log(JSON.stringify({ peerId: node.peerId, root, logSize }));
