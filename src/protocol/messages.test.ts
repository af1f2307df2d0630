/**
 * Codecs of the heads, delta and log messages: round trips (fast-check), and a catalogue of
 * hostile inputs that must fail with a named DecodeError, never anything else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../core/errors.ts';
import {
  decodeDeltaRequest,
  decodeDeltaResponse,
  decodeHeadsRequest,
  decodeHeadsResponse,
  decodeLogRequest,
  decodeLogResponse,
  encodeDeltaRequest,
  encodeDeltaResponse,
  encodeHeadsRequest,
  encodeHeadsResponse,
  encodeLogRequest,
  encodeLogResponse,
  MAX_DELTA_IDS,
  MAX_PINNED,
  type DeltaResponse,
  type LogResponse,
} from './messages.ts';

const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });
const blob = fc.uint8Array({ maxLength: 200 });
const wireError = fc.record({ type: fc.constant('error' as const), name: fc.string({ minLength: 1, maxLength: 30 }), message: fc.string({ maxLength: 80 }) });

describe('round trips', () => {
  it('heads', () => {
    fc.assert(
      fc.property(fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }), (db) => {
        expect(decodeHeadsRequest(encodeHeadsRequest({ db }))).toEqual(db ? { db } : {});
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.record({ type: fc.constant('announcement' as const), announcement: blob }), wireError), (res) => {
        expect(decodeHeadsResponse(encodeHeadsResponse(res))).toEqual(res);
      }),
    );
  });

  it('delta', () => {
    fc.assert(
      fc.property(fc.array(digest, { maxLength: 20 }), (ids) => {
        expect(decodeDeltaRequest(encodeDeltaRequest({ ids }))).toEqual({ ids });
      }),
    );
    const batch = fc.record({ type: fc.constant('batch' as const), deltas: fc.array(blob, { maxLength: 5 }), missing: fc.array(digest, { maxLength: 5 }), truncated: fc.boolean() });
    fc.assert(fc.property(fc.oneof(batch, wireError), (res: DeltaResponse) => {
        expect(decodeDeltaResponse(encodeDeltaResponse(res))).toEqual(res);
      }));
  });

  it('log', () => {
    const n = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(fc.record({ start: n, end: n, logSize: n, pinned: fc.boolean() }), (q) => {
        expect(decodeLogRequest(encodeLogRequest(q))).toEqual(q);
      }),
    );
    const batch = fc.record({
      type: fc.constant('batch' as const),
      operations: fc.array(blob, { maxLength: 5 }),
      proof: fc.array(digest, { maxLength: 8 }),
      pinned: fc.array(digest, { maxLength: 4 }),
    });
    fc.assert(fc.property(fc.oneof(batch, wireError), (res: LogResponse) => {
        expect(decodeLogResponse(encodeLogResponse(res))).toEqual(res);
      }));
  });
});

const id = new Uint8Array(32).fill(1);
const idField = (d: Uint8Array): number[] => [0x0a, d.length, ...d];

describe('hostile input', () => {
  const cases: [string, () => unknown, string][] = [
    ['delta request id of 31 bytes', () => decodeDeltaRequest(Uint8Array.from(idField(new Uint8Array(31)))), 'InvalidDigestLength'],
    ['delta request id length past the end', () => decodeDeltaRequest(Uint8Array.of(0x0a, 0x20, 1, 2)), 'TruncatedInput'],
    ['delta request with too many ids', () => decodeDeltaRequest(encodeDeltaRequest({ ids: Array(MAX_DELTA_IDS + 1).fill(id) }), 1 << 20), 'TooManyItems'],
    ['delta request over its byte limit', () => decodeDeltaRequest(new Uint8Array(10), 5), 'MessageTooLarge'],
    ['delta request group wire type', () => decodeDeltaRequest(Uint8Array.of(0x0b)), 'InvalidWireType'],
    ['delta response with no result', () => decodeDeltaResponse(new Uint8Array(0)), 'MissingField'],
    ['delta response with two results', () => decodeDeltaResponse(Uint8Array.of(0x0a, 0x00, 0x12, 0x00)), 'DuplicateField'],
    ['delta response missing id of 5 bytes', () => decodeDeltaResponse(Uint8Array.of(0x0a, 0x07, 0x12, 0x05, 1, 2, 3, 4, 5)), 'InvalidDigestLength'],
    ['delta response truncated twice', () => decodeDeltaResponse(Uint8Array.of(0x0a, 0x04, 0x18, 0x01, 0x18, 0x01)), 'DuplicateField'],
    ['delta response truncated = 2', () => decodeDeltaResponse(Uint8Array.of(0x0a, 0x02, 0x18, 0x02)), 'InvalidVarint'],
    ['log request start twice', () => decodeLogRequest(Uint8Array.of(0x08, 0x01, 0x08, 0x02)), 'DuplicateField'],
    ['log request start as bytes', () => decodeLogRequest(Uint8Array.of(0x0a, 0x00)), 'InvalidWireType'],
    ['log request 11-byte varint', () => decodeLogRequest(Uint8Array.of(0x08, ...Array(10).fill(0xff), 0x01)), 'InvalidVarint'],
    ['log request over 64 bytes', () => decodeLogRequest(new Uint8Array(65)), 'MessageTooLarge'],
    ['log response proof digest of 33 bytes', () => decodeLogResponse(Uint8Array.of(0x0a, 35, 0x12, 33, ...new Uint8Array(33))), 'InvalidDigestLength'],
    [
      'log response with too many pinned nodes',
      () => decodeLogResponse(encodeLogResponse({ type: 'batch', operations: [], proof: [], pinned: Array(MAX_PINNED + 1).fill(id) })),
      'TooManyItems',
    ],
    ['log response sub-message past the end', () => decodeLogResponse(Uint8Array.of(0x0a, 0x10, 0x0a)), 'TruncatedInput'],
    ['heads response error with bad UTF-8', () => decodeHeadsResponse(Uint8Array.of(0x12, 0x03, 0x0a, 0x01, 0xff)), 'InvalidUtf8'],
    ['heads response with field 0', () => decodeHeadsResponse(Uint8Array.of(0x02, 0x00)), 'InvalidFieldNumber'],
    ['heads request db twice', () => decodeHeadsRequest(Uint8Array.of(0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62)), 'DuplicateField'],
  ];
  for (const [name, run, error] of cases) {
    it(name, () => {
      let thrown: unknown;
      try {
        run();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(DecodeError);
      expect((thrown as Error).name).toBe(error);
    });
  }

  it('random bytes never throw anything but a DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const decode of [decodeHeadsRequest, decodeHeadsResponse, decodeDeltaRequest, decodeDeltaResponse, decodeLogRequest, decodeLogResponse]) {
          try {
            decode(bytes);
          } catch (err) {
            if (!(err instanceof DecodeError)) throw err;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
