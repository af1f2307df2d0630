// The Node.js entry (`proofsync/node`): what a program needs to run a full node or to read a
// database from Node without a browser. Re-exports only (docs/style.md).
export { startFullNode } from './full-node.ts';
export type { FullNode, NodeStatus } from './full-node.ts';
export type { FullNodeOptions, Progress } from './full-node-options.ts';
export { loadOrCreateToken, TOKEN_FILE } from './token.ts';
export { STORE_DIR } from './open-database.ts';
export { loadOrCreateIdentity, InvalidIdentityFile, IDENTITY_FILE } from './identity.ts';
export { leaveNativeWebRTCToExit } from './webrtc-guard.ts';
export { createHost, createClientNode, addressesFile, ADDRESSES_FILE, DEFAULT_LISTEN, DEFAULT_TLS_LISTEN } from './host.ts';
export type { Host, HostOptions, HostNode, HostServices, ClientNode, ClientServices, AddressesFile } from './host.ts';
export type { BatchResult } from './http-api.ts';
export type { CommitResult } from './writer.ts';
export type { ReplicaStatus, ReplicaPhase } from './replica-types.ts';
export type { ServeLimits } from './protocols.ts';
export type { ProofCacheOptions } from './proof-cache-wiring.ts';
export { fetchLogOperations, fetchLogOperationBatches } from '../sync/log/libp2p-fetch.ts';
export type { NodeLogFetchOptions } from '../sync/log/libp2p-fetch.ts';
