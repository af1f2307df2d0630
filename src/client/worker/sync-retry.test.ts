import { describe, expect, test } from 'vitest';
import { SyncStalled } from '../../core/errors.ts';
import { StorageQuotaExceeded } from '../idb/errors.ts';
import { InsufficientStorage, NoPeers } from '../errors.ts';
import { RateLimited, RequestTimeout, TooManyStreams } from '../../protocol/stream.ts';
import { errorName, isError, isLoadRefusal, MAX_BACKOFF_MS, syncRetry } from './sync-retry.ts';

describe('errorName', () => {
  test.each([
    { name: 'a proofsync error: its class name', err: new NoPeers('none'), out: 'NoPeers' },
    { name: 'a DOMException: its kind', err: new DOMException('stopped', 'AbortError'), out: 'AbortError' },
    { name: 'a plain object with a name (a deserialised error)', err: { name: 'SyncStalled', message: 'x' }, out: 'SyncStalled' },
    { name: 'a string', err: 'boom', out: undefined },
    { name: 'undefined', err: undefined, out: undefined },
    { name: 'null', err: null, out: undefined },
    { name: 'a non-string name', err: { name: 42 }, out: undefined },
  ])('$name', ({ err, out }) => expect(errorName(err)).toBe(out));

  test('isError matches on any name given, never on a missing one', () => {
    expect(isError(new NoPeers('x'), 'SyncStalled', NoPeers.name)).toBe(true);
    expect(isError(new NoPeers('x'), 'SyncStalled')).toBe(false);
    expect(isError(undefined, 'undefined')).toBe(false);
  });
});

describe('syncRetry', () => {
  test.each([
    { name: 'an abort stops quietly', err: new DOMException('paused', 'AbortError'), failures: 1, out: { action: 'stop' } },
    { name: 'quota exceeded is fatal', err: new StorageQuotaExceeded({ attemptedBytes: 10 }), failures: 1, out: { action: 'fatal' } },
    { name: 'too little free storage is fatal', err: new InsufficientStorage('low', { available: 1, needed: 2 }), failures: 3, out: { action: 'fatal' } },
    { name: 'a stalled sync waits for a peer', err: new SyncStalled('every peer banned'), failures: 1, out: { action: 'retry', waitMs: MAX_BACKOFF_MS } },
    { name: 'no peers: waits for a peer', err: new NoPeers('none'), failures: 1, out: { action: 'retry', waitMs: MAX_BACKOFF_MS } },
    { name: 'the same error by name from another realm', err: { name: 'NoPeers', message: 'none' }, failures: 1, out: { action: 'retry', waitMs: MAX_BACKOFF_MS } },
    { name: 'another error: backoff 500 ms after the first', err: new Error('x'), failures: 1, out: { action: 'retry', waitMs: 500 } },
    { name: 'backoff doubles', err: new Error('x'), failures: 4, out: { action: 'retry', waitMs: 4000 } },
    { name: 'backoff is bounded', err: new Error('x'), failures: 20, out: { action: 'retry', waitMs: MAX_BACKOFF_MS } },
    { name: 'a thrown string retries', err: 'boom', failures: 2, out: { action: 'retry', waitMs: 1000 } },
  ])('$name', ({ err, failures, out }) => expect(syncRetry(err, failures)).toEqual(out));
});

describe('isLoadRefusal', () => {
  test.each([
    { name: 'TooManyStreams', err: new TooManyStreams('busy'), out: true },
    { name: 'RateLimited', err: new RateLimited('slow down'), out: true },
    { name: 'a timeout is not a refusal', err: new RequestTimeout('late'), out: false },
    { name: 'no error', err: undefined, out: false },
  ])('$name', ({ err, out }) => expect(isLoadRefusal(err)).toBe(out));
});
