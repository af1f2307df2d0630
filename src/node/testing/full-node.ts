/**
 * A full-node process for tests: `node full-node.ts <dataDir> [proofsync node options...]` runs
 * `proofsync node --data <dataDir> ...` (it prints "ready <peerId>" once serving) and, unlike
 * the CLI, also stops when its stdin closes, so it never outlives the test that started it.
 */
import { main } from '../../cli/main.ts';
import '../../cli/commands.ts';

const [dataDir, ...rest] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: full-node.ts <dataDir> [proofsync node options...]\n');
  process.exit(2);
}
const stop = (): void => {
  process.kill(process.pid, 'SIGTERM');
};
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
const code = await main(['node', '--data', dataDir, ...rest]);
process.exit(code);
