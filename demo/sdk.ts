/**
 * The SDK as the demo page consumes it: its public entry points only (`proofsync/client`,
 * `proofsync/core`, `proofsync/protocol`), as a dApp would import them.
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
} from 'proofsync/client';
export { toHex, fromHex, verifyKeyProof } from 'proofsync/core';
export { rangeProofSize } from 'proofsync/protocol';
