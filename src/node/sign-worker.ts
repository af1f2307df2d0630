/**
 * A worker thread that signs delta ids for the log generator (generate-log.ts): ids in
 * (`n × 32` bytes), signatures out (`n × 64`), with node:crypto's Ed25519 (signer.ts). Ids do
 * not depend on signatures (a delta's id hashes its body, parents included, not the signature),
 * so the generator keeps computing roots and ids while this thread signs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DELTA_SIGNING_CONTEXT } from '../core/delta.ts';
import { nativeDigestSigner } from './signer.ts';

const sign = nativeDigestSigner((workerData as { secretKey: Uint8Array }).secretKey);
parentPort!.on('message', (m: { seq: number; ids: Uint8Array }) => {
  const n = m.ids.length / 32;
  const out = new Uint8Array(n * 64);
  for (let i = 0; i < n; i++) out.set(sign(DELTA_SIGNING_CONTEXT, m.ids.subarray(i * 32, i * 32 + 32)), i * 64);
  parentPort!.postMessage({ seq: m.seq, signatures: out }, [out.buffer]);
});
