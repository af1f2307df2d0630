/**
 * Small tools the node's limits share: defaults under partial options, and the key a remote
 * address is counted under for a per-IP limit (the WebSocket listener's sockets, the
 * WebRTC-Direct listener's handshakes).
 */
import { isIPv6 } from 'node:net';

/**
 * `defaults` with every field of `partial` that is set: an option given as `undefined` (an
 * absent CLI flag) keeps its default.
 *
 * @example
 * withDefaults({ maxPending: 64, maxPendingPerIp: 16 }, { maxPending: undefined, maxPendingPerIp: 4 }); // { maxPending: 64, maxPendingPerIp: 4 }
 */
export function withDefaults<T extends object>(defaults: T, partial: Partial<T> | undefined): T {
  const out = { ...defaults };
  for (const [k, v] of Object.entries(partial ?? {})) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Buckets a remote address for the per-IP limit: an IPv4 address (also IPv4-mapped IPv6) as
 * is, an IPv6 address by its /64, the smallest block a host is usually given (so one host
 * cannot walk its prefix to multiply the limit).
 */
export function addressBucket(address: string | undefined): string {
  if (address === undefined) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
