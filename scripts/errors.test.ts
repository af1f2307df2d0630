import { describe, expect, it } from 'vitest';
import * as core from '../src/core/index.ts';
import * as protocol from '../src/protocol/index.ts';
import * as node from '../src/node/index.ts';
import * as client from '../src/client/index.ts';
import { ProofsyncError, registeredError, registeredErrors, type AnyErrorClass } from '../src/core/errors.ts';
import { RemoteWorkerError, reviveError, serializeError } from '../src/client/errors.ts';

type Entry = readonly [string, unknown];
const isErrorClass = (v: unknown): v is AnyErrorClass => typeof v === 'function' && v.prototype instanceof Error;

/** Every error class a user can import, by entry point (package.json `exports`). */
const entries: Record<string, Entry[]> = { core: Object.entries(core), protocol: Object.entries(protocol), node: Object.entries(node), client: Object.entries(client) };
const exported = new Map<AnyErrorClass, string[]>();
for (const [entry, values] of Object.entries(entries)) {
  for (const [exportName, v] of values) if (isErrorClass(v)) exported.set(v, [...(exported.get(v) ?? []), `${entry}.${exportName}`]);
}

/**
 * The names users match on. A rename breaks their code, so it must break this list first.
 * (`RemoteWorkerError` takes the name of the error it stands for.)
 */
const EXPORTED_NAMES = [
  'ClientClosed', 'DecodeError', 'DuplicateChildIndex', 'EmptyKeyProof', 'EmptyProof', 'ExclusionProofInvalidNode',
  'ExclusionProofMissingEndNodes', 'ExclusionProofUnexpectedValue', 'FinishedWithUnexpectedRoot', 'InsufficientHistory',
  'InsufficientStorage', 'InvalidChildId', 'InvalidChildIndex', 'InvalidIdentityFile', 'InvalidKeyLength', 'InvalidMmrProof',
  'InvalidProof', 'InvalidProofNode', 'InvalidRemoteProof', 'InvalidRequest', 'InvalidVarint', 'InvalidWireType', 'KeyOutOfScope',
  'LightClientError', 'LogIndexMismatch', 'MessageTooLarge', 'MinProofSizeTooLarge', 'MissingField', 'NoEndProof', 'NoPeers',
  'NonIncreasingProofNodes', 'NonIncreasingValues', 'NonZeroPaddingBits', 'PartialByteLengthWithValue', 'ProofError',
  'ProofKeyPartialByte', 'ProofNodeHasUnincludedValue', 'ProofNodeNotForKey', 'ProofUnavailable', 'ProofValueDoesntMatch',
  'ProofsyncError', 'RateLimited', 'RequestError', 'RequestTimeout', 'RootMismatch', 'RootNotFound', 'ServerStopping',
  'StartAfterEnd', 'StateFromOutsideOfRange', 'StorageQuotaExceeded', 'StoredLogMismatch', 'StreamError', 'StreamReset',
  'SyncError', 'SyncStalled', 'TooManyItems', 'TooManyKeys', 'TooManyStreams', 'TrailingBytes', 'TruncatedInput',
  'UnexpectedEndProof', 'UnexpectedResponse', 'UnexpectedStartProof', 'WorkerFailed', 'WrongDatabase',
];

/** An instance of `cls` with details, whatever its constructor's parameters. */
function instance(cls: AnyErrorClass): ProofsyncError {
  const C = cls as unknown as new (...args: unknown[]) => ProofsyncError;
  const reasons = (cls as { reasons?: readonly string[] }).reasons;
  if (reasons) return new C(reasons.at(-1), 'a broken rule', { at: 7 });
  switch (cls.name) {
    case 'StorageQuotaExceeded':
      return new C({ attemptedBytes: 4096, usage: 100, quota: 200 });
    case 'StoreClosed':
      return new C('proofsync-test', 'closed by another tab');
    case 'RemoteError':
      return new C('SomethingNew', 'the server said so');
    case 'HttpError':
      return new C(413, 'PayloadTooLarge', 'body too large');
    default:
      return new C(`a ${cls.name}`, { count: 3, id: new Uint8Array([1, 2, 3]), ok: true, note: null });
  }
}

/** The fields a class adds over `ProofsyncError` (getters over `details`). */
function ownViews(err: object): string[] {
  const keys: string[] = [];
  for (let p = Object.getPrototypeOf(err); p && p !== ProofsyncError.prototype; p = Object.getPrototypeOf(p)) {
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) if (d.get) keys.push(k);
  }
  return keys;
}

/** What the page receives: the serialized form after a structured clone, as `postMessage` does. */
const acrossWorker = (err: unknown) => reviveError(structuredClone(serializeError(err)));

describe('error classes', () => {
  const classes = [...new Set([...exported.keys(), ...registeredErrors().values()])].filter((c) => c !== RemoteWorkerError);

  it('the exported names are the stable list', () => {
    const names = [...exported.keys()].filter((c) => c !== RemoteWorkerError).map((c) => c.name);
    expect(names.toSorted()).toEqual(EXPORTED_NAMES.toSorted());
  });

  it('a name belongs to one class', () => {
    const byName = new Map<string, AnyErrorClass>();
    for (const cls of [...exported.keys()]) {
      const other = byName.get(cls.name);
      expect(other === undefined || other === cls, `${cls.name}: ${exported.get(cls)} and ${exported.get(other!)}`).toBe(true);
      byName.set(cls.name, cls);
    }
    for (const [name, cls] of registeredErrors()) expect(cls.name).toBe(name);
  });

  it.each(classes.map((c) => [c.name, c] as const))('%s extends ProofsyncError, is registered, and carries its name', (name, cls) => {
    if (cls !== ProofsyncError) expect(cls.prototype).toBeInstanceOf(ProofsyncError);
    expect(registeredError(name)).toBe(cls);
    expect(instance(cls).name).toBe(name);
  });

  it.each(classes.map((c) => [c.name, c] as const))('%s crosses the worker boundary as itself, with its details', (name, cls) => {
    const err = instance(cls);
    const back = acrossWorker(err) as ProofsyncError;
    expect(Object.getPrototypeOf(back)).toBe(cls.prototype);
    expect(back).toBeInstanceOf(ProofsyncError);
    expect(back.name).toBe(name);
    expect(back.message).toBe(err.message);
    expect(back.details).toEqual(err.details);
    for (const view of ownViews(err)) expect((back as unknown as Record<string, unknown>)[view], view).toEqual((err as unknown as Record<string, unknown>)[view]);
  });

  it('a reason error keeps its reason across the worker boundary', () => {
    const err = new core.InvalidMmrProof('RootMismatch', 'the range does not rebuild the root', { leafCount: 9 });
    const back = acrossWorker(err);
    expect(back).toBeInstanceOf(core.InvalidMmrProof);
    expect(back).toBeInstanceOf(core.ProofError);
    expect(back).toMatchObject({ name: 'InvalidMmrProof', reason: 'RootMismatch', details: { reason: 'RootMismatch', leafCount: 9 } });
    expect(back.message).toBe('invalid MMR proof (RootMismatch): the range does not rebuild the root');
  });

  it('the quota error keeps its figures across the worker boundary', () => {
    const back = acrossWorker(new client.StorageQuotaExceeded({ attemptedBytes: 4096, usage: 100, quota: 200, cause: new Error('QuotaExceededError') }));
    expect(back).toBeInstanceOf(client.StorageQuotaExceeded);
    expect(back).toMatchObject({ attemptedBytes: 4096, usage: 100, quota: 200 });
  });

  it('details that would not clone are dropped, the rest kept', () => {
    const err = new core.InvalidRequest('bad limits', { keyLimit: 0, hook: () => 1, nested: { a: 1 } });
    expect(acrossWorker(err)).toMatchObject({ name: 'InvalidRequest', details: { keyLimit: 0 } });
    expect((acrossWorker(err) as ProofsyncError).details).not.toHaveProperty('hook');
  });

  it('an unknown name arrives as a RemoteWorkerError with that name', () => {
    const back = acrossWorker(Object.assign(new Error('engine said no'), { name: 'SomethingElse' }));
    expect(back).toBeInstanceOf(RemoteWorkerError);
    expect(back).toMatchObject({ name: 'SomethingElse', message: 'engine said no' });
    const again = acrossWorker(back);
    expect(again).toBeInstanceOf(RemoteWorkerError);
    expect(again.name).toBe('SomethingElse');
  });

  it('aborts and timeouts arrive as DOMExceptions, as signal.reason is', () => {
    for (const name of ['AbortError', 'TimeoutError']) {
      const back = acrossWorker(new DOMException('stopped', name));
      expect(back).toBeInstanceOf(DOMException);
      expect(back.name).toBe(name);
    }
  });
});
