/**
 * Typed errors. One class per condition, each with a stable `name` (libp2p and callers match on
 * `err.name`), optional structured `details`, and a message a user can act on.
 * Proof error names are the ones of spec/merkledb.md §3 and §5.
 */

export class ProofsyncError extends Error {
  readonly details: Record<string, unknown> | undefined;
  constructor(message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.details = details;
  }
}

type ErrorClass<B> = new (message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) => B;

/**
 * A subclass of `base` whose instances and constructor carry the stable `name` given: one class
 * per condition, matched on `err.name` or with `instanceof`.
 */
export function errorClass<B extends ProofsyncError>(base: ErrorClass<B>, name: string): ErrorClass<B> {
  const cls = class extends (base as unknown as ErrorClass<ProofsyncError>) {
    override readonly name = name;
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls as unknown as ErrorClass<B>;
}

/** A proof was rejected. `name` says which rule it broke (spec/merkledb.md §3). */
export class ProofError extends ProofsyncError {}
const proofError = (name: string) => errorClass(ProofError, name);

// spec/merkledb.md §3, verification rules, in the order they are checked.
export const TooManyKeys = proofError('TooManyKeys');
export const StartAfterEnd = proofError('StartAfterEnd');
export const EmptyProof = proofError('EmptyProof');
export const UnexpectedEndProof = proofError('UnexpectedEndProof');
export const UnexpectedStartProof = proofError('UnexpectedStartProof');
export const NoEndProof = proofError('NoEndProof');
export const NonIncreasingValues = proofError('NonIncreasingValues');
export const StateFromOutsideOfRange = proofError('StateFromOutsideOfRange');
export const ProofNodeNotForKey = proofError('ProofNodeNotForKey');
export const NonIncreasingProofNodes = proofError('NonIncreasingProofNodes');
export const PartialByteLengthWithValue = proofError('PartialByteLengthWithValue');
export const ExclusionProofMissingEndNodes = proofError('ExclusionProofMissingEndNodes');
export const ExclusionProofInvalidNode = proofError('ExclusionProofInvalidNode');
export const ProofNodeHasUnincludedValue = proofError('ProofNodeHasUnincludedValue');
export const ProofValueDoesntMatch = proofError('ProofValueDoesntMatch');
export const InvalidProof = proofError('InvalidProof');
// single-key proofs
export const ProofKeyPartialByte = proofError('ProofKeyPartialByte');
export const ExclusionProofUnexpectedValue = proofError('ExclusionProofUnexpectedValue');
export const EmptyKeyProof = proofError('EmptyKeyProof');
// a node id that is not 32 bytes, a child index outside the branch factor
export const InvalidProofNode = proofError('InvalidProofNode');

/** Serving side (spec/merkledb.md §4). */
export class RequestError extends ProofsyncError {}
const requestError = (name: string) => errorClass(RequestError, name);
export const MinProofSizeTooLarge = requestError('MinProofSizeTooLarge');
export const InvalidRequest = requestError('InvalidRequest');
export const RootNotFound = requestError('RootNotFound');
export const InsufficientHistory = requestError('InsufficientHistory');

/** Wire decoding (spec/merkledb.md §6): remote bytes are hostile, every bound is checked. */
export class DecodeError extends ProofsyncError {}
const decodeError = (name: string) => errorClass(DecodeError, name);
export const TruncatedInput = decodeError('TruncatedInput');
export const MessageTooLarge = decodeError('MessageTooLarge');
export const TrailingBytes = decodeError('TrailingBytes');
export const InvalidWireType = decodeError('InvalidWireType');
export const InvalidVarint = decodeError('InvalidVarint');
export const InvalidKeyLength = decodeError('InvalidKeyLength');
export const NonZeroPaddingBits = decodeError('NonZeroPaddingBits');
export const InvalidChildIndex = decodeError('InvalidChildIndex');
export const InvalidChildId = decodeError('InvalidChildId');
export const MissingField = decodeError('MissingField');
export const TooManyItems = decodeError('TooManyItems');

/** Sync (spec/merkledb.md §5, spec/mmr.md §4). */
export class SyncError extends ProofsyncError {}
const syncError = (name: string) => errorClass(SyncError, name);
export const FinishedWithUnexpectedRoot = syncError('FinishedWithUnexpectedRoot');
export const RootMismatch = syncError('RootMismatch');
export const SyncStalled = syncError('SyncStalled');
export const UnexpectedResponse = syncError('UnexpectedResponse');
