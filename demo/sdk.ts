/**
 * The SDK as the demo page consumes it: its public entry points only, as a dApp would import
 * them. `proofsync/core` and `proofsync/protocol` are package exports; the client is imported
 * from its entry file until package.json exports `./client` (then this line becomes
 * `from 'proofsync/client'`; vite.config.ts already resolves that name).
 */
export {
  createLightClient,
  type LightClient,
  type LightClientOptions,
  type ProgressEvent,
  type PeerEvent,
  type SyncedEvent,
  type VerifiedResult,
  type ProveResult,
  type DeltaUpdate,
  type PendingStateEvent,
  type GapFillEvent,
} from '../src/client/index.ts';
export { toHex, fromHex, verifyKeyProof } from 'proofsync/core';
export { rangeProofSize } from 'proofsync/protocol';
