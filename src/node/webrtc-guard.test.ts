import { describe, expect, it } from 'vitest';
import { guardListener, HandshakeGate, WebRTCGuardUnsupported } from './webrtc-guard.ts';

/** A scripted stand-in for `@libp2p/webrtc`'s listener: handshakes finish when told to, or on abort. */
function fakeListener() {
  const finish = new Map<string, () => void>();
  const signals = new Map<string, AbortSignal>();
  const closed: string[] = [];
  const listener = {
    connections: new Map<string, { close(): void }>(),
    calls: 0,
    /** Handshakes still in flight when the listener's own close ran. */
    pendingAtClose: -1,
    async close() {
      listener.pendingAtClose = listener.connections.size;
    },
    startUDPMuxServer() {
      return 'stunListener(host, port, log, (u, h, p) => { this.incomingConnection(u, h, p, signal) })';
    },
    incomingConnection(ufrag: string, host: string, port: number, signal: AbortSignal): Promise<void> {
      const key = `${host}:${port}:${ufrag}`;
      if (listener.connections.has(key)) return Promise.resolve();
      listener.calls++;
      listener.connections.set(key, { close: () => closed.push(key) });
      signals.set(key, signal);
      return new Promise<void>((resolve, reject) => {
        finish.set(key, () => {
          listener.connections.delete(key);
          resolve();
        });
        signal.addEventListener('abort', () => {
          listener.connections.delete(key);
          reject(signal.reason);
        });
      });
    },
  };
  return { listener, finish, signals, closed };
}

const never = new AbortController().signal;

describe('HandshakeGate', () => {
  const cases: { name: string; admits: [string, string][]; expect: string[] }[] = [
    { name: 'admits up to the total cap', admits: [['a', '1'], ['b', '2'], ['c', '3'], ['d', '4']], expect: ['ok', 'ok', 'ok', 'total'] },
    { name: 'admits up to the per-IP cap', admits: [['a', '1'], ['b', '1'], ['c', '1']], expect: ['ok', 'ok', 'per_ip'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const gate = new HandshakeGate({ maxPending: 3, maxPendingPerIp: 2, handshakeTimeoutMs: 1000 });
      expect(c.admits.map(([k, ip]) => gate.admit(k, ip))).toEqual(c.expect);
    });
  }

  it('release frees a slot once; releasing an unknown key changes nothing', () => {
    const gate = new HandshakeGate({ maxPending: 1, maxPendingPerIp: 1, handshakeTimeoutMs: 1000 });
    expect(gate.admit('a', '1')).toBe('ok');
    gate.release('a', '1');
    gate.release('a', '1');
    gate.release('zz', '9');
    expect(gate.pending).toBe(0);
    expect(gate.admit('b', '1')).toBe('ok');
    expect(gate.admit('c', '2')).toBe('total');
  });
});

describe('guardListener', () => {
  it('refuses past the caps without calling the listener, and frees slots as handshakes finish', async () => {
    const { listener, finish } = fakeListener();
    const refused: string[] = [];
    guardListener(listener, { maxPending: 2, maxPendingPerIp: 2, handshakeTimeoutMs: 60_000, onRefused: (r) => refused.push(r) });
    const a = listener.incomingConnection('ua', '10.0.0.1', 1, never);
    const b = listener.incomingConnection('ub', '10.0.0.2', 1, never);
    await listener.incomingConnection('uc', '10.0.0.3', 1, never);
    expect(refused).toEqual(['total']);
    expect(listener.calls).toBe(2);
    finish.get('10.0.0.1:1:ua')!();
    await a;
    const c = listener.incomingConnection('uc', '10.0.0.3', 1, never);
    expect(listener.calls).toBe(3);
    finish.get('10.0.0.2:1:ub')!();
    finish.get('10.0.0.3:1:uc')!();
    await Promise.all([b, c]);
  });

  it('a retransmit of an admitted ufrag takes no second slot', async () => {
    const { listener, finish } = fakeListener();
    const refused: string[] = [];
    guardListener(listener, { maxPending: 1, maxPendingPerIp: 1, handshakeTimeoutMs: 60_000, onRefused: (r) => refused.push(r) });
    const a = listener.incomingConnection('ua', '10.0.0.1', 1, never);
    const again = listener.incomingConnection('ua', '10.0.0.1', 1, never);
    expect(refused).toEqual([]);
    expect(listener.calls).toBe(1);
    finish.get('10.0.0.1:1:ua')!();
    await Promise.all([a, again]);
  });

  it('aborts a handshake at the deadline, counts it, and frees its slot', async () => {
    const { listener, signals } = fakeListener();
    let expired = 0;
    const gate = guardListener(listener, { maxPending: 1, handshakeTimeoutMs: 20, onExpired: () => expired++ });
    await expect(listener.incomingConnection('ua', '10.0.0.1', 1, never)).rejects.toThrow(/did not finish within 20 ms/);
    expect(signals.get('10.0.0.1:1:ua')!.aborted).toBe(true);
    expect(expired).toBe(1);
    expect(gate.pending).toBe(0);
  });

  it('passes the listener shutdown on to the handshake', async () => {
    const { listener, signals } = fakeListener();
    const shutdown = new AbortController();
    let expired = 0;
    guardListener(listener, { handshakeTimeoutMs: 60_000, onExpired: () => expired++ });
    const p = listener.incomingConnection('ua', '10.0.0.1', 1, shutdown.signal);
    shutdown.abort(new Error('listener closing'));
    await expect(p).rejects.toThrow('listener closing');
    expect(signals.get('10.0.0.1:1:ua')!.aborted).toBe(true);
    expect(expired).toBe(0);
  });

  it('close ends in-flight handshakes before the listener closes, and admits none after', async () => {
    const { listener, signals } = fakeListener();
    guardListener(listener, { handshakeTimeoutMs: 60_000 });
    const a = listener.incomingConnection('ua', '10.0.0.1', 1, never);
    await listener.close();
    await expect(a).rejects.toThrow('closing');
    expect(signals.get('10.0.0.1:1:ua')!.aborted).toBe(true);
    expect(listener.pendingAtClose).toBe(0);
    await listener.incomingConnection('ub', '10.0.0.1', 1, never);
    expect(listener.calls).toBe(1);
  });

  it('fails loudly when the listener internals it hooks are missing', () => {
    const cases: unknown[] = [
      {},
      { ...fakeListener().listener, connections: {} },
      { ...fakeListener().listener, startUDPMuxServer: () => 'cb(ufrag)' },
      { ...fakeListener().listener, incomingConnection: (u: string) => u },
      { ...fakeListener().listener, close: undefined },
    ];
    for (const l of cases) expect(() => guardListener(l)).toThrow(WebRTCGuardUnsupported);
  });
});
