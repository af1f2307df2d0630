/**
 * Wire codecs of the proof protocols (docs/wire.md#proof-messages; messages in proofsync.proto, with
 * AvalancheGo's field numbers). Built on the strict reader/writer of pb.ts.
 *
 * Decoding is strict: a key whose byte length does not fit its bit length, or whose bit length
 * is not a multiple of 4 → `InvalidKeyLength`; non-zero padding → `NonZeroPaddingBits`; a child
 * index ≥ 16 → `InvalidChildIndex`; a child id that is not 32 bytes → `InvalidChildId`; the same
 * child index twice → `DuplicateChildIndex`; a proof node without a key → `MissingField`; more
 * proof nodes or key-values than the limits → `TooManyItems`; plus everything pb.ts checks.
 * It does not check what only the verifier can (order of keys, proof paths: docs/proofs.md#verification).
 *
 * Encoding is deterministic: children in ascending index order, map entries always carrying
 * both key and value, proto3 defaults omitted. Size functions give the encoded length without
 * encoding (the server's halving rule, docs/proofs.md#serving).
 *
 * The code is in four files along the messages' seams: proof-node-codec.ts (limits, keys and
 * proof nodes, shared by both proofs), range-proof-codec.ts, change-proof-codec.ts and
 * wire-error-codec.ts (the error every response may carry). This module is their one import path.
 */
export { DEFAULT_DECODE_LIMITS, DuplicateChildIndex, ID_LENGTH, type DecodeLimits } from './proof-node-codec.ts';
export { readError, type WireError } from './wire-error-codec.ts';
export {
  decodeRangeProof,
  decodeRangeProofRequest,
  decodeRangeProofResponse,
  encodeRangeProof,
  encodeRangeProofRequest,
  encodeRangeProofResponse,
  rangeProofResponseSize,
  rangeProofSize,
  type DecodeOptions,
  type RangeProofResponse,
} from './range-proof-codec.ts';
export {
  changeProofSize,
  decodeChangeProof,
  decodeChangeProofRequest,
  decodeChangeProofResponse,
  encodeChangeProof,
  encodeChangeProofRequest,
  encodeChangeProofResponse,
  type ChangeProofResponse,
} from './change-proof-codec.ts';
