import type { ComponentLogger, Listener, Transport, Upgrader } from '@libp2p/interface';
import { webSockets } from '@libp2p/websockets';
import { describe, expect, it } from 'vitest';
import { addressBucket } from './limits.ts';
import { assertPatchable, DEFAULT_WS_LIMITS, guardedWebSockets, WebSocketGuardUnsupported } from './ws-guard.ts';

const quiet = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false });
const logger = { forComponent: () => ({ ...quiet, newScope: () => quiet }) } as unknown as ComponentLogger;
const components = { logger, events: new EventTarget() } as unknown as Parameters<ReturnType<typeof webSockets>>[0];
const upgrader = {} as Upgrader;

/** A listener of the installed @libp2p/websockets, never listening. */
function listenerOf(create: ReturnType<typeof webSockets>): Listener {
  const transport: Transport = create(components);
  return transport.createListener({ upgrader });
}

describe('addressBucket', () => {
  it.each([
    ['IPv4 as is', '203.0.113.7', '203.0.113.7'],
    ['IPv4-mapped IPv6 as its IPv4', '::ffff:203.0.113.7', '203.0.113.7'],
    ['IPv6 by its /64', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['IPv6 with :: in the host part', '2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['IPv6 with :: in the prefix', '2001:db8::1', '2001:db8:0:0::/64'],
    ['IPv6 leading zeros dropped', '2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['loopback IPv6', '::1', '0:0:0:0::/64'],
    ['unknown', undefined, '?'],
  ])('%s', (_, address, bucket) => {
    expect(addressBucket(address)).toBe(bucket);
  });

  it('two hosts of one /64 share a bucket; of two /64s they do not', () => {
    expect(addressBucket('2001:db8:0:1::a')).toBe(addressBucket('2001:db8:0:1:ffff:ffff:ffff:ffff'));
    expect(addressBucket('2001:db8:0:1::a')).not.toBe(addressBucket('2001:db8:0:2::a'));
  });
});

describe('the guard against the installed @libp2p/websockets', () => {
  it('finds the fields it patches on the real listener', () => {
    expect(() => assertPatchable(listenerOf(webSockets()))).not.toThrow();
  });

  it('installs a ws server with the bounded maxPayload and keeps one connection handler', () => {
    const listener = listenerOf(guardedWebSockets({ limits: { maxPayload: 4096 } })) as unknown as {
      wsServer: { options: { maxPayload: number } };
      server: import('node:net').Server;
    };
    expect(listener.wsServer.options.maxPayload).toBe(4096);
    expect(listener.server.listeners('connection')).toHaveLength(1);
    expect(listenerOf(guardedWebSockets()) as unknown as { wsServer: { options: { maxPayload: number } } }).toMatchObject({
      wsServer: { options: { maxPayload: DEFAULT_WS_LIMITS.maxPayload } },
    });
  });

  it.each([
    ['no wsServer', (l: Record<string, unknown>) => delete l.wsServer, /`wsServer`/],
    ['no server', (l: Record<string, unknown>) => delete l.server, /`server`/],
    ['a second connection handler', (l: Record<string, unknown>) => (l.server as import('node:net').Server).on('connection', () => {}), /2 'connection' listeners/],
    ['no onUpgrade', (l: Record<string, unknown>) => (l.onUpgrade = undefined), /`onUpgrade`/],
  ])('fails loudly on a listener with %s', (_, mutilate, message) => {
    const listener = listenerOf(webSockets()) as unknown as Record<string, unknown>;
    mutilate(listener);
    expect(() => assertPatchable(listener)).toThrow(WebSocketGuardUnsupported);
    expect(() => assertPatchable(listener)).toThrow(message);
  });

  it('rejects limits that are not positive integers', () => {
    expect(() => guardedWebSockets({ limits: { maxConnectionsPerIp: 0 } })).toThrow(RangeError);
    expect(() => guardedWebSockets({ limits: { handshakeTimeoutMs: 1.5 } })).toThrow('expected handshakeTimeoutMs to be a positive integer, got 1.5');
  });
});
