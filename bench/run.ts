/**
 * `npm run bench` runs every suite under bench/ (files NAME.bench.ts), each in its own process;
 * `npm run bench -- NAME` runs one. Results go to bench/results/NAME.json.
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const suite of wanted.length ? wanted : all) {
  console.log(`\n== bench ${suite}`);
  const r = spawnSync(process.execPath, ['--max-old-space-size=8192', join(dir, `${suite}.bench.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`suite ${suite} failed with ${r.status ?? r.signal}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
