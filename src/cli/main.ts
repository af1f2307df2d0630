/**
 * The `proofsync` command. Exit codes: 0 success, 1 a proof was rejected (or a command failed),
 * 2 a usage error naming the bad argument.
 */
import { proofCommands } from './proof-commands.ts';
import { UsageError } from './io.ts';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, Command> = { ...proofCommands };
const usageLines: Record<string, string> = {};

/** Further command groups register here (the node, the writer client, fetch-range), with their usage lines. */
export function registerCommands(more: Record<string, Command>, usage: Record<string, string> = {}): void {
  Object.assign(commands, more);
  Object.assign(usageLines, usage);
}

const USAGE = `usage: proofsync <command> [options]

  root [--in FILE]                                   root of JSON-lines key-values
  range-proof --db FILE [--start HEX] [--end HEX] [--key-limit N] [--byte-limit N] [--out FILE]
  verify-range --root HEX [--start HEX] [--end HEX] [--key-limit N] [--proof FILE]
  change-proof --from FILE --to FILE [--start HEX] [--end HEX] [--key-limit N] [--byte-limit N] [--out FILE]
  verify-change --local FILE --root HEX [--start HEX] [--end HEX] [--key-limit N] [--proof FILE]
  log-root [--in FILE] [--all]                       MMR root of hex elements, one per line
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help') {
    process.stdout.write(USAGE + Object.keys(commands).filter((c) => !(c in proofCommands)).map((c) => `  ${usageLines[c] ?? c}\n`).join(''));
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  try {
    if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    return await cmd(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`proofsync ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`proofsync ${name}: ${(err as Error).name}: ${(err as Error).message}\n`);
    return 1;
  }
}
