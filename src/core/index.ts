// The public surface of the core: re-exports only (docs/style.md).
export * from './types.ts';
export * from './errors.ts';
export { compareBytes, equalBytes, concatBytes, toHex, fromHex } from './bytes.ts';
export { keyToPath, packPath, unpackPath } from './path.ts';
export { hashNode, valueDigest } from './hash.ts';
export { buildRoot, itemsFromKeyValues } from './builder.ts';
export { type KVStore, type BatchOp, type IterateOptions, MemoryStore } from './store.ts';
export { MerkleTrie, TrieView } from './trie.ts';
export { MerkleDatabase, type Revision, type ValueChange } from './database.ts';
export { rangeProof, changeProof, keyProof, verifyRangeProof, verifyChangeProof, verifyKeyProof } from './proof.ts';
export { nextKey } from './next-key.ts';
export { midpoint } from './midpoint.ts';
export { Mmr, mmrRoots, verifyRangeProof as verifyMmrRangeProof, rangeProof as mmrRangeProof, pinnedNodes, verifyPinnedNodes, InvalidMmrProof, type MmrRangeWitness } from './mmr.ts';
