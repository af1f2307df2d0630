/**
 * The value types shared by the trie, the proofs and the codecs (docs/proofs.md#verification, docs/wire.md#proof-messages).
 *
 * A *path* is a token sequence: one nibble (0..15) per byte, high nibble of each key byte first.
 * Byte-wise comparison of paths is the trie's key order, and a prefix sorts before its
 * extensions. Keys and values are raw bytes. `undefined` stands for an absent `MaybeBytes`.
 */

/** A token path: one 4-bit token (0..15) per element, as `keyToPath` makes it. */
export type Path = Uint8Array;

/** A key and its value, as a range proof returns them. */
export interface KeyValue {
  /** The key. */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
}

/** A key's new value between two roots; `value === undefined` means the key is deleted. */
export interface KeyChange {
  /** The key. */
  key: Uint8Array;
  /** The new value; undefined for a delete. */
  value: Uint8Array | undefined;
}

/** What is needed to recompute one node's id (docs/proofs.md#verification). */
export interface ProofNode {
  /** The node's full key, as a token path. */
  key: Path;
  /** The value digest (the value if shorter than 32 bytes, else its SHA-256), or absent. */
  valueOrHash: Uint8Array | undefined;
  /** child index (0..15) → 32-byte child id. */
  children: Map<number, Uint8Array>;
}

/**
 * A proof of every key-value of the trie at one root within a key range, truncated to a key limit
 * (docs/proofs.md#verification). Made by `rangeProof`, checked by `verifyRangeProof`.
 *
 * @example
 * const proof = await rangeProof(trie.view(), start, end, 1024);
 * verifyRangeProof(proof, { root: trie.root, start, end, keyLimit: 1024 });
 */
export interface RangeProof {
  /** Nodes on the path to the start key, less those it shares with the end proof. */
  startProof: ProofNode[];
  /** Nodes on the path to the last returned key (or to the end key when none is returned). */
  endProof: ProofNode[];
  /** The key-values in range, in key order. */
  keyValues: KeyValue[];
}

/**
 * A proof of the value changes between two roots within a key range (docs/proofs.md#verification): the
 * changes, plus the start and end proofs taken in the newer trie. Checked by `verifyChangeProof`.
 *
 * @example
 * const r = await db.changeProof(oldRoot, db.root, { keyLimit: 1024 });
 * if (r.type === 'change') await verifyChangeProof(r.proof, { root: db.root, keyLimit: 1024, localTrie: local.view() });
 */
export interface ChangeProof {
  /** Nodes on the path to the start key in the newer trie, less those shared with the end proof. */
  startProof: ProofNode[];
  /** Nodes on the path to the last changed key (or to the end key) in the newer trie. */
  endProof: ProofNode[];
  /** The changes in range, in key order; a delete has an undefined value. */
  keyChanges: KeyChange[];
}

/**
 * A request for a range proof at a root (docs/proofs.md#serving), as sent on the wire.
 *
 * @example
 * const req: RangeProofRequest = { rootHash: root, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 1 << 20 };
 * const proof = await serveRangeProof(db, req);
 */
export interface RangeProofRequest {
  /** The 32-byte root the proof is taken at. */
  rootHash: Uint8Array;
  /** The first key of the range (inclusive); undefined: from the first key. */
  startKey: Uint8Array | undefined;
  /** The last key of the range (inclusive); undefined: to the last key. */
  endKey: Uint8Array | undefined;
  /** At most this many key-values (the server clamps it to `MAX_KEY_LIMIT`). */
  keyLimit: number;
  /** The encoded response must be smaller than this (clamped to `MAX_BYTE_LIMIT`). */
  bytesLimit: number;
}

/**
 * A request for a change proof between two roots (docs/proofs.md#serving), as sent on the wire.
 *
 * @example
 * const req: ChangeProofRequest = { startRootHash: oldRoot, endRootHash: newRoot, startKey: undefined, endKey: undefined, keyLimit: 2048, bytesLimit: 1 << 20 };
 * const served = await serveChangeProof(db, req);
 */
export interface ChangeProofRequest {
  /** The 32-byte root the requester has. */
  startRootHash: Uint8Array;
  /** The 32-byte root the requester wants to reach. */
  endRootHash: Uint8Array;
  /** The first key of the range (inclusive); undefined: from the first key. */
  startKey: Uint8Array | undefined;
  /** The last key of the range (inclusive); undefined: to the last key. */
  endKey: Uint8Array | undefined;
  /** At most this many changes (the server clamps it to `MAX_KEY_LIMIT`). */
  keyLimit: number;
  /** The encoded response must be smaller than this (clamped to `MAX_BYTE_LIMIT`). */
  bytesLimit: number;
}

/** 32 zero bytes: the root id of the empty trie, and the genesis parent of the delta DAG. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(32);
