// The core from Node: a Merkle database in memory, a range proof of it, and its verification.
// Prints the root and the number of proven key-values. (Node 22.18+ and 24 run this .ts file as is.)
// #region core
import { MemoryStore, MerkleDatabase, toHex, verifyRangeProof } from 'proofsync/core';

const db = await MerkleDatabase.open(new MemoryStore());
await db.commit([{ key: new Uint8Array([1]), value: new Uint8Array([42]) }]);
const proof = await db.rangeProof(db.root, { keyLimit: 2048 });
verifyRangeProof(proof, { root: db.root, keyLimit: 2048 }); // throws a typed ProofError if forged
// #endregion core
console.log(JSON.stringify({ root: toHex(db.root), keyValues: proof.keyValues.length }));
