/**
 * The writer's Ed25519 public key from its libp2p peer id (`12D3KooW...`): base58btc text of an
 * identity multihash over the protobuf `PublicKey { Type = Ed25519, Data = 32 bytes }` (libp2p
 * peer-ids spec). A few lines here instead of `@libp2p/peer-id`, whose dependencies (every
 * multiformats base, `@libp2p/crypto`'s key types) are a sixth of the worker entry's code and
 * must be evaluated before the worker answers anything; the worker's libp2p chunk keeps them.
 */

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const DIGIT = new Map([...ALPHABET].map((c, i) => [c, i]));
/** Identity multihash (0x00), length 36, then the protobuf: field 1 KeyType Ed25519 (1), field 2 bytes of length 32. */
const PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/** Base58btc (Bitcoin alphabet) text to bytes; leading '1's are zero bytes. */
function base58Decode(text: string): Uint8Array | undefined {
  const bytes: number[] = []; // little-endian base-256 digits
  for (const c of text) {
    let carry = DIGIT.get(c);
    if (carry === undefined) return undefined;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    for (; carry > 0; carry >>= 8) bytes.push(carry & 0xff);
  }
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i];
  return out;
}

/**
 * The raw 32-byte Ed25519 key a peer id names. Throws `TypeError` for anything else (another
 * key type, a hashed id, text that is not base58btc).
 *
 * @example
 * const key = writerPublicKey('12D3KooWBmwkafWE2fqfzS96VoTZRE8TZ84Tm8ExbjoBBGqXJdSU'); // 32 bytes
 */
export function writerPublicKey(peerId: string): Uint8Array {
  const bytes = typeof peerId === 'string' && peerId.length <= 64 ? base58Decode(peerId) : undefined;
  if (!bytes || bytes.length !== PREFIX.length + 32 || PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new TypeError(`expected an Ed25519 peer id (12D3KooW...), got ${String(peerId).slice(0, 80)}`);
  }
  return bytes.slice(PREFIX.length);
}
