/**
 * A full node under attack (`npm run bench -- hostile`): an honest client's verified range-proof
 * round trip (heads once, then range proofs of 256 key-values from random keys, each verified),
 * median over N, first on a quiet node, then while the node holds 1,000 idle TCP sockets,
 * slow-loris WebSocket upgrade headers, garbage on real libp2p streams and a STUN flood on its
 * WebRTC-Direct port; the node's RSS growth with the 1,000 idle connections open; and how many
 * connections and streams its limits refused meanwhile.
 *
 * The node is a child process on loopback; attackers and the honest client share this process.
 * Attack sockets come from 127.0.0.2-127.0.0.101 (ten per address, as from many hosts), so
 * per-IP limits do not refuse them all and the RSS figure is for connections the node holds.
 * The honest client connects before the attack starts and keeps its connection.
 *
 * Refused counts are read from the node's GET /metrics before and after: every series whose
 * metric name contains `refused` is summed; a series counts as streams when its name or its
 * labels mention `stream` (`proofsync_streams_refused_total`, a muxer's `too_many_streams`),
 * as connections otherwise (connections, upgrades, WebRTC-Direct handshakes, oversized frames).
 * BENCH_ROUNDS (default 60) sets N.
 */
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { randomBytes } from 'node:crypto';
import { verifyRangeProof } from '../src/core/proof.ts';
import { createClientNode } from '../src/node/host.ts';
import { FULL_NODE_SCRIPT, startNodeProcess, type NodeProcess } from '../src/node/testing/process.ts';
import { fetchHeads, fetchRangeProof } from '../src/protocol/client.ts';
import { PROTOCOLS } from '../src/protocol/ids.ts';
import { garbageStreams, hostPort, idleSockets, procStatus, slowLoris, stunFlood, sumSeries, type SocketAttack, type StunFlood } from '../e2e/hostile/attacks.ts';
import { type Figure, now, writeResults } from './lib.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 60);
const KEY_LIMIT = 256;
const IDLE = 1000;
const SOURCES = Array.from({ length: 100 }, (_, i) => `127.0.0.${i + 2}`);
const figures: Figure[] = [];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function refusedCounts(node: NodeProcess): Promise<{ connections: number; streams: number }> {
  const text = await (await fetch(`${node.file.http}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const all = sumSeries(text, /refused/);
  const streams = sumSeries(text, /refused/, /stream/) + sumSeries(text, /stream.*refused|refused.*stream/, /^(?!.*stream)/);
  return { connections: all - streams, streams };
}

const node = await startNodeProcess({
  script: FULL_NODE_SCRIPT,
  args: ['--generate', '20000', '--peer-rate', '100000:100000', '--peer-streams', '64'],
  readyTimeoutMs: 120_000,
});
const pid = node.child.pid!;
const ws = multiaddr(node.file.ws!);
const writerKey = peerIdFromString(node.file.peerId).publicKey!.raw;
const honest = await createClientNode();
const attacker = await createClientNode();
const attacks: (SocketAttack | StunFlood)[] = [];
try {
  const ann = await fetchHeads(honest, ws, { writerPublicKey: writerKey });
  // the stream attacker connects first too: past the connection limits its streams never land
  await fetchHeads(attacker, ws);
  const roundTrips = async (label: string): Promise<number[]> => {
    const ms: number[] = [];
    let failures = 0;
    for (let i = 0; ms.length < ROUNDS && i < ROUNDS * 3; i++) {
      const start = randomBytes(32);
      const t = now();
      try {
        const proof = await fetchRangeProof(honest, ws, { rootHash: ann.stateRoot, startKey: start, endKey: undefined, keyLimit: KEY_LIMIT, bytesLimit: 1 << 20 }, { timeoutMs: 30_000 });
        verifyRangeProof(proof, { root: ann.stateRoot, start, end: undefined, keyLimit: KEY_LIMIT });
        ms.push(now() - t);
      } catch (err) {
        failures++;
        if (node.child.exitCode !== null || node.child.signalCode !== null) throw new Error(`${label}: the node exited (${node.child.exitCode ?? node.child.signalCode}):\n${node.output().slice(-3000)}`, { cause: err });
        if (failures <= 5) console.warn(`${label}: round trip failed: ${String((err as Error).name)}: ${(err as Error).message}`);
      }
    }
    if (ms.length < ROUNDS) throw new Error(`${label}: only ${ms.length} of ${ROUNDS} round trips succeeded (${failures} failures)`);
    return ms;
  };
  await roundTrips('warm-up');
  const quiet = median(await roundTrips('quiet'));
  figures.push({ name: `honest proof round trip without attack (median of ${ROUNDS}, ${KEY_LIMIT} kvs)`, value: quiet, unit: 'ms', goal: null });

  const refusedBefore = await refusedCounts(node);
  const rssBefore = (await procStatus(pid)).rssMB;
  const tcp = hostPort(node.file.ws!);
  const idle = await idleSockets(tcp.host, tcp.port, IDLE, { sources: SOURCES });
  attacks.push(idle);
  // let the node take in what it accepts, then sample its RSS
  await new Promise((r) => setTimeout(r, 3000));
  const rssIdle = (await procStatus(pid)).rssMB;
  console.log(`idle sockets: ${idle.connected()} connected, ${idle.open()} still open; RSS ${rssBefore.toFixed(0)} -> ${rssIdle.toFixed(0)} MB`);
  figures.push({ name: `node RSS growth under ${IDLE.toLocaleString('en')} idle connections`, value: rssIdle - rssBefore, unit: 'MB', goal: '<= 200' });
  figures.push({ name: 'idle connections still open after 3 s', value: idle.open(), unit: 'sockets', goal: null });
  const loris = await slowLoris(tcp.host, tcp.port, 200, { sources: SOURCES, intervalMs: 1000 });
  attacks.push(loris);
  // the attack mix builds up, with a round-trip median after each step, so the figure that
  // misses its goal says which attack costs the honest client most
  const idleAndLoris = median(await roundTrips('idle + slow loris'));
  figures.push({ name: `honest proof round trip with 1,000 idle sockets + 200 slow loris (median of ${ROUNDS})`, value: idleAndLoris, unit: 'ms', goal: null });

  const garbage = garbageStreams(attacker, ws, PROTOCOLS, { concurrency: 8 });
  attacks.push(garbage);
  const withGarbage = median(await roundTrips('+ garbage streams'));
  figures.push({ name: `honest proof round trip with + 8 garbage stream loops (median of ${ROUNDS})`, value: withGarbage, unit: 'ms', goal: null });

  const udp = hostPort(node.file.webrtcDirect!);
  const flood = stunFlood(udp.host, udp.port, { count: 10_000_000, perTick: 5, sources: SOURCES.slice(0, 16), sockets: 16 });
  attacks.push(flood);
  const attacked = median(await roundTrips('under attack'));
  figures.push({ name: `honest proof round trip under the whole attack mix, + STUN flood (median of ${ROUNDS}, ${KEY_LIMIT} kvs)`, value: attacked, unit: 'ms', goal: null });
  figures.push({ name: 'honest proof round trip under attack / without attack (median)', value: attacked / quiet, unit: 'ratio', goal: '<= 2' });
  figures.push({ name: 'node RSS growth at the end of the attack', value: (await procStatus(pid)).rssMB - rssBefore, unit: 'MB', goal: null });

  console.log(`under attack: ${garbage.connected()} garbage streams opened, ${flood.sent()} STUN datagrams sent`);
  const refusedAfter = await refusedCounts(node);
  figures.push({ name: 'connections refused by limits', value: refusedAfter.connections - refusedBefore.connections, unit: 'count', goal: null });
  figures.push({ name: 'streams refused by limits', value: refusedAfter.streams - refusedBefore.streams, unit: 'count', goal: null });
  if (node.child.exitCode !== null) throw new Error(`the node exited during the attack:\n${node.output().slice(-2000)}`);
} finally {
  await Promise.allSettled(attacks.map((a) => a.close()));
  await Promise.allSettled([honest.stop(), attacker.stop()]);
  await node.stop({ graceMs: 15_000 });
}

writeResults('hostile', figures);
