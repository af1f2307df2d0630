/**
 * `proofsync root | range-proof | verify-range | change-proof | verify-change | log-root`:
 * the core's contract for tools and tests outside the code (files in, JSON out, exit codes).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { buildRoot, itemsFromKeyValues } from '../core/builder.ts';
import { compareBytes, fromHex, inKeyRange, toHex } from '../core/bytes.ts';
import { MerkleDatabase } from '../core/database.ts';
import { ProofsyncError } from '../core/errors.ts';
import { mmrRoots } from '../core/mmr.ts';
import { nextKey } from '../core/next-key.ts';
import { verifyChangeProof, verifyRangeProof } from '../core/proof.ts';
import { MemoryStore } from '../core/store.ts';
import type { KeyChange, KeyValue, ProofNode } from '../core/types.ts';
import { decodeChangeProof, decodeRangeProof, encodeChangeProof, encodeRangeProof } from '../protocol/codec.ts';
import { serveChangeProof, serveRangeProof } from '../protocol/serve.ts';
import { UsageError, changeJson, hexArg, intArg, kvJson, printJson, readInput, readKeyValues, writeOutput } from './io.ts';

type Command = (argv: string[]) => Promise<number>;

function args<T extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const rangeOpts = {
  start: { type: 'string' },
  end: { type: 'string' },
  'key-limit': { type: 'string' },
  'byte-limit': { type: 'string' },
  out: { type: 'string' },
} as const;

async function databaseOf(kvs: KeyValue[]): Promise<MerkleDatabase> {
  const db = await MerkleDatabase.open(new MemoryStore());
  await db.bulkLoad([...kvs].sort((a, b) => compareBytes(a.key, b.key)));
  return db;
}

/** A trie of `kvs` in memory, for the local side of next-key. */
async function localProofs(kvs: KeyValue[]) {
  const db = await databaseOf(kvs);
  return (path: Uint8Array) => db.trie.view().proofPath(path);
}

function rejected(err: unknown): number {
  if (err instanceof ProofsyncError) {
    printJson({ ok: false, error: err.name, message: err.message });
    return 1;
  }
  throw err;
}

async function next(last: Uint8Array | undefined, end: Uint8Array | undefined, endProof: ProofNode[], local: KeyValue[]): Promise<string | null> {
  if (!last) return null;
  const k = await nextKey(last, end, endProof, await localProofs(local));
  return k ? toHex(k) : null;
}

export const proofCommands: Record<string, Command> = {
  async root(argv) {
    const o = args(argv, { in: { type: 'string' } });
    printJson({ root: toHex(buildRoot(itemsFromKeyValues(readKeyValues(o.in, 'input')))) });
    return 0;
  },

  async 'range-proof'(argv) {
    const o = args(argv, { db: { type: 'string' }, ...rangeOpts });
    if (!o.db) throw new UsageError('--db FILE is required');
    const db = await databaseOf(readKeyValues(o.db, '--db'));
    const proof = await serveRangeProof(db, {
      rootHash: db.root,
      startKey: hexArg(o.start, 'start'),
      endKey: hexArg(o.end, 'end'),
      keyLimit: intArg(o['key-limit'], 'key-limit', 2048),
      bytesLimit: intArg(o['byte-limit'], 'byte-limit', 2 * 1024 * 1024),
    });
    writeOutput(o.out, encodeRangeProof(proof));
    return 0;
  },

  async 'verify-range'(argv) {
    const o = args(argv, { root: { type: 'string' }, start: { type: 'string' }, end: { type: 'string' }, 'key-limit': { type: 'string' }, proof: { type: 'string' } });
    const root = hexArg(o.root, 'root');
    if (!root || root.length !== 32) throw new UsageError('--root must be 32 bytes of hex');
    const start = hexArg(o.start, 'start');
    const end = hexArg(o.end, 'end');
    const keyLimit = intArg(o['key-limit'], 'key-limit', 2048);
    try {
      const proof = decodeRangeProof(readInput(o.proof), { maxKeyValues: keyLimit });
      verifyRangeProof(proof, { root, start, end, keyLimit });
      const last = proof.keyValues.at(-1)?.key;
      printJson({ ok: true, keyValues: proof.keyValues.map(kvJson), nextKey: await next(last, end, proof.endProof, proof.keyValues) });
      return 0;
    } catch (err) {
      return rejected(err);
    }
  },

  async 'change-proof'(argv) {
    const o = args(argv, { from: { type: 'string' }, to: { type: 'string' }, ...rangeOpts });
    if (!o.from || !o.to) throw new UsageError('--from FILE and --to FILE are required');
    const from = readKeyValues(o.from, '--from');
    const to = readKeyValues(o.to, '--to');
    const db = await databaseOf(from);
    const r1 = db.root;
    const toKeys = new Set(to.map((kv) => toHex(kv.key)));
    const changes: KeyChange[] = [...from.filter((kv) => !toKeys.has(toHex(kv.key))).map((kv) => ({ key: kv.key, value: undefined })), ...to];
    await db.commit(changes);
    const res = await serveChangeProof(db, {
      startRootHash: r1,
      endRootHash: db.root,
      startKey: hexArg(o.start, 'start'),
      endKey: hexArg(o.end, 'end'),
      keyLimit: intArg(o['key-limit'], 'key-limit', 2048),
      bytesLimit: intArg(o['byte-limit'], 'byte-limit', 2 * 1024 * 1024),
    });
    if (res.type !== 'changeProof') throw new Error('expected a change proof');
    writeOutput(o.out, encodeChangeProof(res.proof));
    return 0;
  },

  async 'verify-change'(argv) {
    const o = args(argv, { local: { type: 'string' }, root: { type: 'string' }, start: { type: 'string' }, end: { type: 'string' }, 'key-limit': { type: 'string' }, proof: { type: 'string' } });
    if (!o.local) throw new UsageError('--local FILE is required');
    const root = hexArg(o.root, 'root');
    if (!root || root.length !== 32) throw new UsageError('--root must be 32 bytes of hex');
    const start = hexArg(o.start, 'start');
    const end = hexArg(o.end, 'end');
    const keyLimit = intArg(o['key-limit'], 'key-limit', 2048);
    const local = readKeyValues(o.local, '--local').sort((a, b) => compareBytes(a.key, b.key));
    try {
      const proof = decodeChangeProof(readInput(o.proof), { maxKeyValues: keyLimit });
      const inRange = (s?: Uint8Array, e?: Uint8Array) => local.filter((kv) => inKeyRange(kv.key, s, e));
      await verifyChangeProof(proof, { root, start, end, keyLimit, local: inRange });
      const after = new Map(local.map((kv) => [toHex(kv.key), kv]));
      for (const c of proof.keyChanges) {
        if (c.value === undefined) after.delete(toHex(c.key));
        else after.set(toHex(c.key), { key: c.key, value: c.value });
      }
      const last = proof.keyChanges.at(-1)?.key;
      printJson({ ok: true, keyChanges: proof.keyChanges.map(changeJson), nextKey: await next(last, end, proof.endProof, [...after.values()]) });
      return 0;
    } catch (err) {
      return rejected(err);
    }
  },

  async 'log-root'(argv) {
    const o = args(argv, { in: { type: 'string' }, all: { type: 'boolean' } });
    const lines = readFileSync(o.in ?? 0, 'utf8').split('\n').filter((l) => l.trim());
    const elements = lines.map((l, i) => {
      try {
        return fromHex(l.trim());
      } catch (err) {
        throw new UsageError(`line ${i + 1}: ${(err as Error).message}`);
      }
    });
    const roots = mmrRoots(elements);
    printJson(o.all ? { roots: roots.map(toHex) } : { root: toHex(roots[roots.length - 1]) });
    return 0;
  },
};
