/**
 * The sync layer: the parts of syncing that do not care where they run, shared by the browser
 * client (src/client, in its worker) and the Node full node (src/node, in replica mode).
 *
 * - `state/`: the state sync, a pure `step(event) -> actions` engine (engine.ts) over a work
 *   queue of key ranges, its driver (driver.ts: requests, timeouts, a trie to write into), the
 *   saved progress, and the libp2p `StateSource` (network-source.ts).
 * - `log/`: the operation-log sync, the same shape (engine, driver, gaps, target, requests),
 *   the history fetch built on it (fetch.ts) and its libp2p entry point (libp2p-fetch.ts).
 * - gap-fill.ts: walking a delta's missing parents back to the local state.
 * - peers.ts (`PeerBook`: ranking, backoff and bans) and faults.ts (whose fault a failed
 *   request is), used by both engines' network sources.
 * - small tools both sides need: event-queue.ts, push-queue.ts, abort.ts (`delay`); errors.ts.
 *
 * Allowed imports: src/core, src/protocol, and packages that run in a browser and in Node. Not
 * src/client, src/node or src/cli, and nothing bound to one environment (no IndexedDB, no
 * Worker, no DOM, no `node:` modules): each side brings its own storage (a core `KVStore`),
 * clock and connections. scripts/layers.test.ts checks the import directions.
 */
export * from './state/index.ts';
export * from './log/index.ts';
export { NetworkLogSource, dialerLogPeer, requesterLogPeer } from './log/network-source.ts';
export type { LogPeer, LogRequester, NetworkLogSourceOptions } from './log/network-source.ts';
export { fetchOperationBatches, decodeOperation, StoredLogMismatch, LogIndexMismatch } from './log/fetch.ts';
export type { LogTarget, LogOperation, RawOperation, LogFetchProgress, FetchOperationsOptions } from './log/fetch.ts';
export { fetchLogOperations, fetchLogOperationBatches } from './log/libp2p-fetch.ts';
export type { NodeLogFetchOptions } from './log/libp2p-fetch.ts';
export { LogStore, CorruptLogStore } from './log/persist.ts';
export { networkStateSource, responseSize } from './state/network-source.ts';
export type { NetworkSourceOptions } from './state/network-source.ts';
export { fillGaps, GapFill } from './gap-fill.ts';
export type { DeltaSource, GapFillOptions, FillGapsOptions, GapFillResult, GapStopReason, Offence, WalkedId } from './gap-fill.ts';
export { isAnswerFault, isTimeout } from './faults.ts';
export { EventQueue } from './event-queue.ts';
export { PushQueue } from './push-queue.ts';
export { delay } from './abort.ts';
export { LightClientError, NoPeers } from './errors.ts';
