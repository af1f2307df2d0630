/**
 * The value types shared by the trie, the proofs and the codecs (spec/merkledb.md §3, §6).
 *
 * A *path* is a token sequence: one nibble (0..15) per byte, high nibble of each key byte first.
 * Byte-wise comparison of paths is the trie's key order, and a prefix sorts before its
 * extensions. Keys and values are raw bytes. `undefined` stands for an absent `MaybeBytes`.
 */

export type Path = Uint8Array;

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

/** `value === undefined` means the key is deleted. */
export interface KeyChange {
  key: Uint8Array;
  value: Uint8Array | undefined;
}

/** What is needed to recompute one node's id (spec §3). */
export interface ProofNode {
  /** The node's full key, as a token path. */
  key: Path;
  /** The value digest (the value if shorter than 32 bytes, else its SHA-256), or absent. */
  valueOrHash: Uint8Array | undefined;
  /** child index (0..15) → 32-byte child id. */
  children: Map<number, Uint8Array>;
}

export interface RangeProof {
  startProof: ProofNode[];
  endProof: ProofNode[];
  keyValues: KeyValue[];
}

export interface ChangeProof {
  startProof: ProofNode[];
  endProof: ProofNode[];
  keyChanges: KeyChange[];
}

export interface RangeProofRequest {
  rootHash: Uint8Array;
  startKey: Uint8Array | undefined;
  endKey: Uint8Array | undefined;
  keyLimit: number;
  bytesLimit: number;
}

export interface ChangeProofRequest {
  startRootHash: Uint8Array;
  endRootHash: Uint8Array;
  startKey: Uint8Array | undefined;
  endKey: Uint8Array | undefined;
  keyLimit: number;
  bytesLimit: number;
}

/** 32 zero bytes: the root id of the empty trie, and the genesis parent of the delta DAG. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(32);
