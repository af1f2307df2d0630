/**
 * CLI input and output: key-value files are JSON lines {"key":"<hex>","value":"<hex>"}
 * (`null` value = delete, in change files), hex at the edges, one JSON object on stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fromHex, toHex } from '../core/bytes.ts';
import { errorClass, ProofsyncError } from '../core/errors.ts';
import type { KeyChange, KeyValue } from '../core/types.ts';

/** A bad command line: exit code 2. */
export const UsageError = errorClass(ProofsyncError, 'UsageError');

export function readInput(file: string | undefined): Uint8Array {
  return new Uint8Array(readFileSync(file ?? 0));
}

/** Reads JSON-lines key-values; a later line for the same key wins. */
export function readKeyValues(file: string | undefined, what: string): KeyValue[] {
  const text = new TextDecoder().decode(readInput(file));
  const byKey = new Map<string, KeyValue>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let o: { key?: unknown; value?: unknown };
    try {
      o = JSON.parse(line);
    } catch {
      throw new UsageError(`${what}: line ${i + 1} is not JSON`);
    }
    if (typeof o.key !== 'string' || typeof o.value !== 'string') throw new UsageError(`${what}: line ${i + 1} needs hex "key" and "value" strings`);
    try {
      byKey.set(o.key.toLowerCase(), { key: fromHex(o.key), value: fromHex(o.value) });
    } catch (err) {
      throw new UsageError(`${what}: line ${i + 1}: ${(err as Error).message}`);
    }
  });
  return [...byKey.values()];
}

export function hexArg(value: string | undefined, name: string): Uint8Array | undefined {
  if (value === undefined) return undefined;
  try {
    return fromHex(value);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`);
  }
}

export function intArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function writeOutput(file: string | undefined, bytes: Uint8Array): void {
  if (file) writeFileSync(file, bytes);
  else process.stdout.write(bytes);
}

export function printJson(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

export const kvJson = (kv: KeyValue) => ({ key: toHex(kv.key), value: toHex(kv.value) });
export const changeJson = (c: KeyChange) => ({ key: toHex(c.key), value: c.value === undefined ? null : toHex(c.value) });
