/**
 * Typed errors. One class per condition, each with a stable `name` (libp2p and callers match on
 * `err.name`), optional structured `details`, and a message a user can act on.
 * Proof error names are those of docs/proofs.md and docs/sync.md.
 */

/** Structured data about a failure (offsets, limits, counts): what logs and callers read. */
export type ErrorDetails = Record<string, unknown>;

/**
 * Base class of every proofsync error. Subclasses carry a stable `name` per condition; match on
 * it or use `instanceof`. An error is fully described by its `name`, `message` and `details`:
 * any other field a subclass exposes is a view of `details`, so the error survives the worker
 * boundary (`serializeError`/`reviveError` in src/client/errors.ts) with everything it carries.
 *
 * @example
 * try {
 *   verifyRangeProof(proof, { root, start, end, keyLimit: 100 });
 * } catch (err) {
 *   if (err instanceof ProofsyncError) console.warn(err.name, err.details);
 * }
 */
export class ProofsyncError<D extends ErrorDetails = ErrorDetails> extends Error {
  /** The condition's stable name (each subclass sets its own). */
  override readonly name: string = 'ProofsyncError';
  /** Structured data about the failure (offsets, limits, counts), for logs and callers. */
  readonly details: D | undefined;
  /**
   * @param message What went wrong, in words a user can act on.
   * @param details Structured data about the failure.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, details?: D, options?: { cause?: unknown }) {
    super(message, options);
    this.details = details;
  }
}

type ErrorClass<B> = new (message: string, details?: ErrorDetails, options?: { cause?: unknown }) => B;

/** Any class of the hierarchy, whatever its constructor's parameters. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyErrorClass = abstract new (...args: any[]) => ProofsyncError;

/**
 * Every error class by its `name`: filled by `errorClass`, `reasonError` and `registerError` as
 * the modules that define them load. The worker boundary rebuilds errors from it, so a page
 * that can name a class (to test `instanceof`) has loaded it and gets that class back.
 */
const REGISTRY = new Map<string, AnyErrorClass>();

/**
 * Gives a hand-written error class its stable `name` as a class (instances set theirs with
 * `override readonly name = '...'`) and enters it in the registry.
 *
 * @example
 * export class StoreClosed extends ProofsyncError<{ dbName: string }> {
 *   override readonly name = 'StoreClosed';
 * }
 * registerError(StoreClosed, 'StoreClosed');
 */
export function registerError<C extends AnyErrorClass>(cls: C, name: string): C {
  Object.defineProperty(cls, 'name', { value: name });
  // A module evaluated again (hot reload) defines its classes again: the newest one wins.
  REGISTRY.set(name, cls);
  return cls;
}

/**
 * The registered error class named `name`, if a loaded module defines one.
 *
 * @example
 * registeredError('RootNotFound') === RootNotFound; // true
 */
export function registeredError(name: string): AnyErrorClass | undefined {
  return REGISTRY.get(name);
}

/**
 * Every registered error class, by name.
 *
 * @example
 * for (const [name, cls] of registeredErrors()) console.log(name, cls.prototype instanceof ProofError);
 */
export function registeredErrors(): ReadonlyMap<string, AnyErrorClass> {
  return REGISTRY;
}

/**
 * Rebuilds an instance of a registered class from its `name`, `message` and `details` without
 * running its constructor: constructors differ (a reason error formats its message from its
 * reason), but these three fields are the whole state of every error of the hierarchy.
 *
 * @example
 * const err = rebuildError('RootNotFound', 'unknown root', { remote: true });
 * err instanceof RootNotFound; // true
 */
export function rebuildError(name: string, message: string, details?: ErrorDetails): ProofsyncError | undefined {
  const cls = REGISTRY.get(name);
  if (!cls) return undefined;
  const err = Reflect.construct(Error, [message], cls) as ProofsyncError;
  // the fields class initialisers would have defined: own, writable, enumerable
  Object.defineProperty(err, 'name', { value: name, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(err, 'details', { value: details, writable: true, enumerable: true, configurable: true });
  return err;
}
registerError(ProofsyncError, 'ProofsyncError');

/**
 * A subclass of `base` whose instances and constructor carry the stable `name` given: one class
 * per condition, matched on `err.name` or with `instanceof`. `D` types the details it is built with.
 *
 * @example
 * const KeyTooLong = errorClass<RequestError, { length: number }>(RequestError, 'KeyTooLong');
 * const err = new KeyTooLong('key of 300 bytes exceeds 256', { length: 300 });
 * err.name; // 'KeyTooLong'
 * err instanceof RequestError; // true
 */
export function errorClass<B extends ProofsyncError, D extends ErrorDetails = ErrorDetails>(
  base: ErrorClass<B>,
  name: string,
): ConditionErrorClass<B, D> {
  const cls = class extends (base as unknown as ErrorClass<ProofsyncError>) {
    override readonly name = name;
  };
  registerError(cls, name);
  return cls as never;
}

/** A class made by `errorClass`: one condition, built from a message and details. */
export interface ConditionErrorClass<B extends ProofsyncError, D extends ErrorDetails = ErrorDetails> {
  /**
   * @param message What went wrong, in words a user can act on.
   * @param details Structured data about the failure.
   * @param options `cause`: the underlying error, if any.
   */
  new (message: string, details?: D, options?: { cause?: unknown }): B;
  /** The prototype of its instances (what lets `instanceof` narrow to `B`). */
  readonly prototype: B;
}

/** The details of a reason error: the broken rule and any other data. */
export type ReasonDetails<R extends string> = {
  /** The rule that was broken. */
  reason: R;
} & ErrorDetails;

/** A class made by `reasonError`: one condition with several causes. */
export interface ReasonErrorClass<R extends string> {
  /**
   * @param reason The rule that was broken.
   * @param message What went wrong, in words a user can act on.
   * @param details Structured data about the failure.
   * @param options `cause`: the underlying error, if any.
   */
  new (reason: R, message: string, details?: ErrorDetails, options?: { cause?: unknown }): ReasonError<R>;
  /** The prototype of its instances (what lets `instanceof` narrow). */
  readonly prototype: ReasonError<R>;
  /** Every reason the class may carry. */
  readonly reasons: readonly R[];
}

/**
 * An instance of a class made by `reasonError`: `reason` names the rule that was broken. (An
 * interface rather than `B & {...}`, since TypeScript narrows `instanceof` only with the former.)
 */
export interface ReasonError<R extends string> extends ProofsyncError<ReasonDetails<R>> {
  /** The rule that was broken (also `details.reason`). */
  readonly reason: R;
}

/**
 * One class for a condition with several causes: `reason` (one of `reasons`, also kept in
 * `details.reason`) says which, and the message reads `<summary> (<reason>): <message>`.
 * Callers match on `name` as for any error, then on `reason` when they care which rule broke.
 *
 * @example
 * const REASONS = ['UpperNotGrowing', 'RootUnchanged'] as const;
 * const InvalidTargetUpdate = reasonError(ProofsyncError, 'InvalidTargetUpdate', 'target update rejected', REASONS);
 * const err = new InvalidTargetUpdate('RootUnchanged', 'same root', { upper: 10 });
 * err.message; // 'target update rejected (RootUnchanged): same root'
 * err.reason; // 'RootUnchanged'
 */
export function reasonError<B extends ProofsyncError, const R extends string>(
  base: ErrorClass<B>,
  name: string,
  summary: string,
  reasons: readonly R[],
): ReasonErrorClass<R> {
  const cls = class extends (base as unknown as ErrorClass<ProofsyncError>) {
    override readonly name = name;
    static readonly reasons = reasons;
    constructor(reason: R, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
      super(`${summary} (${reason}): ${message}`, { reason, ...details }, options);
    }
    /** The rule that was broken (a view of `details.reason`, so it survives the worker boundary). */
    get reason(): R {
      return this.details?.reason as R;
    }
  };
  registerError(cls, name);
  return cls as never;
}

/**
 * A proof was rejected. `name` says which rule it broke (docs/proofs.md#verification).
 *
 * @example
 * try {
 *   verifyRangeProof(proof, { root, start, end, keyLimit: 100 });
 * } catch (err) {
 *   if (err instanceof ProofError) banPeer(peer, err.name); // e.g. 'ProofNodeHasUnincludedValue'
 *   else throw err;
 * }
 */
export class ProofError extends ProofsyncError {
  /** `'ProofError'`; each subclass sets its own. */
  override readonly name: string = 'ProofError';
}
registerError(ProofError, 'ProofError');
const proofError = (name: string) => errorClass(ProofError, name);

// docs/proofs.md#verification: the rules in the order they are checked; "step N" is the
// numbered step of that section.
/** The proof holds more key-values than the request's key limit (step 1). */
export const TooManyKeys = proofError('TooManyKeys');
/** The proof's start key is after its end key (step 2). */
export const StartAfterEnd = proofError('StartAfterEnd');
/** The proof has no key-values, no start proof and no end proof (step 2). */
export const EmptyProof = proofError('EmptyProof');
/** The proof has an end proof but neither an end key nor key-values to justify it (step 2). */
export const UnexpectedEndProof = proofError('UnexpectedEndProof');
/** The proof has a start proof but no start key (step 2). */
export const UnexpectedStartProof = proofError('UnexpectedStartProof');
/** The end proof is missing although the proof has an end key or key-values (step 2). */
export const NoEndProof = proofError('NoEndProof');
/** The proof's keys are not strictly increasing (step 3). */
export const NonIncreasingValues = proofError('NonIncreasingValues');
/** A key of the proof lies outside the requested `[start, end]` range (step 3). */
export const StateFromOutsideOfRange = proofError('StateFromOutsideOfRange');
/** A node of a start or end proof is not a prefix of the key it proves (step 4). */
export const ProofNodeNotForKey = proofError('ProofNodeNotForKey');
/** A node of a start or end proof is not a prefix of the node after it (step 4). */
export const NonIncreasingProofNodes = proofError('NonIncreasingProofNodes');
/** A proof node whose key is not a whole number of bytes claims a value (step 4). */
export const PartialByteLengthWithValue = proofError('PartialByteLengthWithValue');
/** An exclusion proof stops at a node that still has a child toward the absent key. */
export const ExclusionProofMissingEndNodes = proofError('ExclusionProofMissingEndNodes');
/** The last node of an exclusion proof hangs under the wrong child of its parent. */
export const ExclusionProofInvalidNode = proofError('ExclusionProofInvalidNode');
/** A proof node inside the range holds a value the proof's key-values do not include. */
export const ProofNodeHasUnincludedValue = proofError('ProofNodeHasUnincludedValue');
/** A proof node's value differs from the value the proof includes for that key. */
export const ProofValueDoesntMatch = proofError('ProofValueDoesntMatch');
/** The proof does not describe a trie, or the trie it describes does not hash to the expected root. */
export const InvalidProof = proofError('InvalidProof');
// single-key proofs
/** A single-key proof is for a key that is not a whole number of bytes. */
export const ProofKeyPartialByte = proofError('ProofKeyPartialByte');
/** A single-key proof shows the key absent while a value was claimed for it. */
export const ExclusionProofUnexpectedValue = proofError('ExclusionProofUnexpectedValue');
/** A single-key proof has no nodes; it needs at least the root. */
export const EmptyKeyProof = proofError('EmptyKeyProof');
// a node id that is not 32 bytes, a child index outside the branch factor
/** A proof node names a child index outside the branch factor (16) or a child id that is not 32 bytes. */
export const InvalidProofNode = proofError('InvalidProofNode');

/**
 * A request cannot be served (docs/proofs.md#serving): its limits are invalid or the peer lacks the
 * root or history it names. Thrown by the serving side and rebuilt by name on the requester.
 *
 * @example
 * try {
 *   await serveRangeProof(db, request);
 * } catch (err) {
 *   if (err instanceof RequestError) return { type: 'error', name: err.name, message: err.message };
 *   throw err;
 * }
 */
export class RequestError extends ProofsyncError {
  /** `'RequestError'`; each subclass sets its own. */
  override readonly name: string = 'RequestError';
}
registerError(RequestError, 'RequestError');
const requestError = (name: string) => errorClass(RequestError, name);
/** Even a one-key proof does not fit in the request's byte limit (docs/proofs.md#serving). */
export const MinProofSizeTooLarge = requestError('MinProofSizeTooLarge');
/** A request's limits or range are invalid: a non-positive key limit, an empty range, a range beyond the log. */
export const InvalidRequest = requestError('InvalidRequest');
/** The requested root is not in the serving peer's history window (or no log it has ends at that root). */
export const RootNotFound = requestError('RootNotFound');
/**
 * A remote peer lacks the history to prove changes since the requested start root. A name
 * other implementations answer with; this project's server sends a range proof at the end root
 * instead (docs/proofs.md#serving).
 */
export const InsufficientHistory = requestError('InsufficientHistory');

/**
 * Wire decoding failed (docs/wire.md#proof-messages): remote bytes are hostile, every bound is checked
 * and a violation throws a subclass named after it.
 *
 * @example
 * try {
 *   decodeRangeProof(bytes);
 * } catch (err) {
 *   if (err instanceof DecodeError) console.warn(`bad frame: ${err.name}`, err.details);
 * }
 */
export class DecodeError extends ProofsyncError {
  /** `'DecodeError'`; each subclass sets its own. */
  override readonly name: string = 'DecodeError';
}
registerError(DecodeError, 'DecodeError');
const decodeError = (name: string) => errorClass(DecodeError, name);
/** The bytes end in the middle of a varint, a length-delimited field or a fixed-size value. */
export const TruncatedInput = decodeError('TruncatedInput');
/** A message or frame is larger than the decoder's byte limit. */
export const MessageTooLarge = decodeError('MessageTooLarge');
/** Bytes remain after a complete message or frame. */
export const TrailingBytes = decodeError('TrailingBytes');
/** A field has a protobuf wire type that is unsupported or differs from the one its schema expects. */
export const InvalidWireType = decodeError('InvalidWireType');
/** A varint is longer than 10 bytes or exceeds 2^53 - 1. */
export const InvalidVarint = decodeError('InvalidVarint');
/** A key's bit length is not a multiple of 4 or disagrees with its byte length. */
export const InvalidKeyLength = decodeError('InvalidKeyLength');
/** The padding bits after an odd number of 4-bit tokens are not zero. */
export const NonZeroPaddingBits = decodeError('NonZeroPaddingBits');
/** A proof node names a child index not below the branch factor (16). */
export const InvalidChildIndex = decodeError('InvalidChildIndex');
/** A proof node names a child id that is not 32 bytes. */
export const InvalidChildId = decodeError('InvalidChildId');
/** A required field is absent from a decoded message. */
export const MissingField = decodeError('MissingField');
/** A repeated field holds more items than the decoder's limit. */
export const TooManyItems = decodeError('TooManyItems');

/**
 * A sync failed as a whole (docs/sync.md, docs/mmr.md#syncing-a-log), as opposed to one bad answer,
 * which the engine retries elsewhere.
 *
 * @example
 * try {
 *   for await (const op of fetchLogOperations(options)) handle(op);
 * } catch (err) {
 *   if (err instanceof SyncError) console.warn(`log fetch failed: ${err.name}`); // e.g. SyncStalled
 *   else throw err;
 * }
 */
export class SyncError extends ProofsyncError {
  /** `'SyncError'`; each subclass sets its own. */
  override readonly name: string = 'SyncError';
}
registerError(SyncError, 'SyncError');
const syncError = (name: string) => errorClass(SyncError, name);
/** A sync applied every range but the local trie does not hash to the target root. */
export const FinishedWithUnexpectedRoot = syncError('FinishedWithUnexpectedRoot');
/** An applied operation log does not rebuild the target root. */
export const RootMismatch = syncError('RootMismatch');
/** A sync cannot make progress: a range got no valid answer after its retries, or every peer was banned. */
export const SyncStalled = syncError('SyncStalled');
/** A peer answered with data that does not match what was asked or announced (a log batch that does not verify, a delta at the wrong index). */
export const UnexpectedResponse = syncError('UnexpectedResponse');
