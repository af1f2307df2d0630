/**
 * The misbehaviour switch (for the sync tests and the demo): a node told to misbehave answers range
 * and change requests with tampered proofs, so that clients can be seen detecting the lie
 * (docs/proofs.md#verification), penalising the node and banning it, while their sync
 * still completes from honest peers. Switched by `proofsync node --misbehave` and by the
 * token-guarded `POST /v1/misbehave {"on":true|false}`.
 *
 * The tamper is the smallest lie that changes a fact: one value altered (a key-value in a range
 * proof, a key change in a change proof); an answer with no keys loses its last end-proof node.
 */
import type { MerkleDatabase } from '../core/database.ts';
import type { ChangeProof, RangeProof } from '../core/types.ts';

function altered(value: Uint8Array | undefined): Uint8Array {
  if (value === undefined || value.length === 0) return Uint8Array.of(0x6c); // 'l'
  const out = value.slice();
  out[out.length - 1] ^= 0xff;
  return out;
}

/** A copy of `proof` with its middle key-value's value altered (or its last end-proof node gone). */
export function tamperRangeProof(proof: RangeProof): RangeProof {
  const keyValues = proof.keyValues.slice();
  if (keyValues.length > 0) {
    const i = keyValues.length >> 1;
    keyValues[i] = { key: keyValues[i].key, value: altered(keyValues[i].value) };
    return { ...proof, keyValues };
  }
  return { ...proof, endProof: proof.endProof.slice(0, -1) };
}

/** A copy of `proof` with its middle key change altered (or its last end-proof node gone). */
export function tamperChangeProof(proof: ChangeProof): ChangeProof {
  const keyChanges = proof.keyChanges.slice();
  if (keyChanges.length > 0) {
    const i = keyChanges.length >> 1;
    keyChanges[i] = { key: keyChanges[i].key, value: altered(keyChanges[i].value) };
    return { ...proof, keyChanges };
  }
  return { ...proof, endProof: proof.endProof.slice(0, -1) };
}

/**
 * The switch: `serve(db)` is the database the node's protocols read, tampering while `on`.
 *
 * @example
 * const misbehaviour = new Misbehaviour(false);
 * serveProtocols(libp2p, { get db() { return misbehaviour.serve(store.db); }, ... });
 * misbehaviour.on = true; // every range and change proof served from now on is a lie
 */
export class Misbehaviour {
  on: boolean;
  #wrapped = new WeakMap<MerkleDatabase, MerkleDatabase>();

  constructor(on = false) {
    this.on = on;
  }

  serve(db: MerkleDatabase): MerkleDatabase {
    if (!this.on) return db;
    let w = this.#wrapped.get(db);
    if (!w) this.#wrapped.set(db, (w = tamperingDatabase(db)));
    return w;
  }
}

/** `db` with every range and change proof it produces tampered. */
export function tamperingDatabase(db: MerkleDatabase): MerkleDatabase {
  const rangeProof: MerkleDatabase['rangeProof'] = async (root, o) => tamperRangeProof(await db.rangeProof(root, o));
  const changeProof: MerkleDatabase['changeProof'] = async (from, to, o) => {
    const r = await db.changeProof(from, to, o);
    return r.type === 'change' ? { type: 'change', proof: tamperChangeProof(r.proof) } : { type: 'range', proof: tamperRangeProof(r.proof) };
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'rangeProof') return rangeProof;
      if (prop === 'changeProof') return changeProof;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
