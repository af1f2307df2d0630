/**
 * Starts e2e/hostile-peers/gossip-attacker.ts as a child process for tests and benchmarks, and
 * talks to it: commands on its stdin, its `stats` and `done` lines read back from its output.
 */
import { fileURLToPath } from 'node:url';
import { startNodeProcess, type NodeProcess } from '../../src/node/testing/process.ts';

export const ATTACKER_SCRIPT = fileURLToPath(new URL('./gossip-attacker.ts', import.meta.url));

export interface AttackerStats {
  /** Messages published, by kind. */
  published: { invalid: number; foreign: number; chain: number };
  /** Ids asked for over /delta in all, and those of the deep chain among them. */
  requestedIds: number;
  chainIdsRequested: number;
  deltaRequests: number;
  /** Peers on the topic, as the attacker's gossipsub sees them. */
  subscribers: number;
}

export interface Attacker {
  process: NodeProcess;
  /** The newest stats line. */
  stats(): AttackerStats;
  /** Sends a command; resolves once the attacker reports it done (a flood: all published). */
  run(line: string, timeoutMs?: number): Promise<void>;
  /** Sends a command without waiting (`chain` runs until the attacker stops). */
  send(line: string): void;
}

const NO_STATS: AttackerStats = { published: { invalid: 0, foreign: 0, chain: 0 }, requestedIds: 0, chainIdsRequested: 0, deltaRequests: 0, subscribers: 0 };

/**
 * @example
 * const attacker = await startAttacker(writer, [replica.file.ws!]);
 * await attacker.run('invalid 10000');
 */
export async function startAttacker(writer: NodeProcess, dial: string[] = []): Promise<Attacker> {
  const p = await startNodeProcess({ script: ATTACKER_SCRIPT, args: [writer.dataDir, writer.file.db!, ...dial], readyTimeoutMs: 30_000 });
  const lines = () => p.output().split('\n');
  const stats = (): AttackerStats => {
    const s = lines().filter((l) => l.startsWith('stats ')).at(-1);
    return s ? (JSON.parse(s.slice(6)) as AttackerStats) : NO_STATS;
  };
  const done = (cmd: string) => lines().filter((l) => l === `done ${cmd}`).length;
  const send = (line: string) => void p.child.stdin!.write(`${line}\n`);
  const run = async (line: string, timeoutMs = 120_000): Promise<void> => {
    const cmd = line.split(' ')[0];
    const before = done(cmd);
    send(line);
    const deadline = Date.now() + timeoutMs;
    while (done(cmd) === before) {
      if (Date.now() > deadline) throw new Error(`the attacker did not finish "${line}": ${p.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100)); // polling the child's output
    }
  };
  return { process: p, stats, run, send };
}
