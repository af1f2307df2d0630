/**
 * `/proofsync/1/peers` messages: round trips, then hostile answers (the answer comes from a
 * peer we do not trust): each bound by name with its typed error, truncation at every offset,
 * and seeded fuzzing. A decoder may only succeed or throw a `DecodeError`.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { fromHex, toHex } from '../core/bytes.ts';
import { varintSize, Writer } from './pb.ts';
import { DecodeError } from '../core/errors.ts';
import {
  decodePeersRequest,
  decodePeersResponse,
  encodePeersRequest,
  encodePeersResponse,
  MAX_PEER_ADDR_CHARS,
  MAX_PEER_ADDRS,
  MAX_PEER_ID_CHARS,
  MAX_PEERS,
  MAX_PEERS_RESPONSE_BYTES,
  type PeerInfo,
} from './peers-codec.ts';

const ID = '12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSU';
const peer = (i: number, addrs = 2): PeerInfo => ({ id: `${ID.slice(0, -3)}${String(i).padStart(3, '0')}`, addrs: Array.from({ length: addrs }, (_, k) => `/ip4/203.0.113.${k}/tcp/${4000 + i}/ws`) });

/** `n` as a protobuf varint, in hex (the codec's own writer: these tests build the rest by hand). */
const varint = (n: number): string => toHex(new Writer(varintSize(n)).varint(n).finish());
const hexOf = (s: string) => [...new TextEncoder().encode(s)].map((b) => b.toString(16).padStart(2, '0')).join('');
const ld = (field: number, content: string) => varint(field * 8 + 2) + varint(content.length / 2) + content;
const info = (id: string, addrs: string[]) => ld(1, ld(1, hexOf(id)) + addrs.map((a) => ld(2, hexOf(a))).join(''));
const answer = (peers: string[]) => fromHex(ld(1, peers.join('')));

function decodeName(bytes: Uint8Array): string {
  try {
    decodePeersResponse(bytes);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return (err as Error).name;
  }
}

describe('peers codec: round trips', () => {
  test('a request with and without a database id', () => {
    expect(decodePeersRequest(encodePeersRequest({}))).toEqual({});
    const db = new TextEncoder().encode('inventory');
    expect(decodePeersRequest(encodePeersRequest({ db }))).toEqual({ db });
  });

  test('an empty list, a full list, and an error', () => {
    expect(decodePeersResponse(encodePeersResponse({ type: 'peers', peers: [] }))).toEqual({ type: 'peers', peers: [] });
    const peers = Array.from({ length: MAX_PEERS }, (_, i) => peer(i, MAX_PEER_ADDRS));
    expect(decodePeersResponse(encodePeersResponse({ type: 'peers', peers }))).toEqual({ type: 'peers', peers });
    expect(decodePeersResponse(encodePeersResponse({ type: 'error', name: 'NotFound', message: 'another database' }))).toEqual({ type: 'error', name: 'NotFound', message: 'another database' });
  });

  test('the bounds hold at their limits: the largest answer fits the response bound', () => {
    const peers = Array.from({ length: MAX_PEERS }, () => ({ id: 'x'.repeat(MAX_PEER_ID_CHARS), addrs: Array.from({ length: MAX_PEER_ADDRS }, () => 'a'.repeat(MAX_PEER_ADDR_CHARS)) }));
    const bytes = encodePeersResponse({ type: 'peers', peers });
    expect(bytes.length).toBeLessThanOrEqual(MAX_PEERS_RESPONSE_BYTES);
    expect(decodePeersResponse(bytes)).toEqual({ type: 'peers', peers });
  });

  test('the encoder refuses what a decoder would reject', () => {
    expect(() => encodePeersResponse({ type: 'peers', peers: Array.from({ length: MAX_PEERS + 1 }, (_, i) => peer(i)) })).toThrow(RangeError);
    expect(() => encodePeersResponse({ type: 'peers', peers: [peer(1, MAX_PEER_ADDRS + 1)] })).toThrow(RangeError);
    expect(() => encodePeersResponse({ type: 'peers', peers: [{ id: '', addrs: [] }] })).toThrow(RangeError);
  });
});

describe('peers codec: hostile answers', () => {
  const cases: [string, Uint8Array, string][] = [
    ['empty message (neither list nor error)', new Uint8Array(0), 'MissingField'],
    ['list twice', fromHex(ld(1, '') + ld(1, '')), 'DuplicateField'],
    ['list and error', fromHex(ld(1, '') + ld(2, '')), 'DuplicateField'],
    ['one peer too many', answer(Array.from({ length: MAX_PEERS + 1 }, (_, i) => info(peer(i).id, []))), 'TooManyItems'],
    ['one address too many', answer([info(ID, Array.from({ length: MAX_PEER_ADDRS + 1 }, () => '/ip4/1.2.3.4/tcp/1/ws'))]), 'TooManyItems'],
    ['a peer id over its bound', answer([info('x'.repeat(MAX_PEER_ID_CHARS + 1), [])]), 'InvalidPeerRecord'],
    ['an address over its bound', answer([info(ID, ['/'.repeat(MAX_PEER_ADDR_CHARS + 1)])]), 'InvalidPeerRecord'],
    ['a peer without an id', answer([ld(1, ld(2, hexOf('/ip4/1.2.3.4/tcp/1/ws')))]), 'InvalidPeerRecord'],
    ['the id twice', answer([ld(1, hexOf(ID)) + ld(1, hexOf(ID))].map((c) => ld(1, c))), 'DuplicateField'],
    ['an id that is not UTF-8', answer([ld(1, ld(1, 'ff'))]), 'InvalidUtf8'],
    ['an address as a varint', answer([ld(1, hexOf(ID)) + varint(2 * 8) + '01'].map((c) => ld(1, c))), 'InvalidWireType'],
    ['a peer list as a varint', fromHex(varint(8) + '01'), 'InvalidWireType'],
    ['a length past the end', fromHex(varint(10) + varint(50) + '00'), 'TruncatedInput'],
    ['over the size bound', new Uint8Array(MAX_PEERS_RESPONSE_BYTES + 1), 'MessageTooLarge'],
  ];
  for (const [what, bytes, name] of cases) test(`${what}: ${name}`, () => expect(decodeName(bytes)).toBe(name));

  test('unknown fields are skipped', () => {
    const bytes = fromHex(ld(1, ld(1, ld(1, hexOf(ID)) + ld(9, 'abcd')) + ld(7, '')) + varint(15 * 8) + '05');
    expect(decodePeersResponse(bytes)).toEqual({ type: 'peers', peers: [{ id: ID, addrs: [] }] });
  });

  test('every truncation of a valid answer decodes or fails with a DecodeError', () => {
    const bytes = encodePeersResponse({ type: 'peers', peers: [peer(1), peer(2, 3)] });
    for (let n = 0; n < bytes.length; n++) decodeName(bytes.subarray(0, n));
  });

  test('random bytes and mutated answers decode or fail with a DecodeError (seeded)', () => {
    const valid = encodePeersResponse({ type: 'peers', peers: [peer(1), peer(2, 3)] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void decodeName(b)),
      { seed: 17, numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), (edits) => {
        const b = valid.slice();
        for (const [i, v] of edits) b[i] = v;
        decodeName(b);
      }),
      { seed: 18, numRuns: 2000 },
    );
  });

  test('a request over its bound, or with the database id twice, is refused', () => {
    expect(() => decodePeersRequest(new Uint8Array(300))).toThrow(DecodeError);
    expect(() => decodePeersRequest(fromHex(ld(1, '61') + ld(1, '62')))).toThrow(/more than once/);
  });
});
