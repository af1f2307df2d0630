/**
 * `npm run build` (and `prepack`): compiles src/ into dist/ as ES modules with `.d.ts`
 * declarations and source maps, one output file per source module (tsc, tsconfig.build.json).
 *
 * Why tsc and no bundler: a library's consumers bundle it themselves; per-module output keeps
 * their tree-shaking and code splitting (the WebRTC bridge stays a lazy chunk, the worker its
 * own entry) and keeps the `.d.ts` files next to the code they describe.
 *
 * tsc rewrites relative `.ts` specifiers in imports (`rewriteRelativeImportExtensions`), not
 * the `new URL('./x.ts', import.meta.url)` that starts a worker: bundlers need that literal to
 * find the worker, so the sources keep `.ts` (Vite, Vitest and Node run them in development)
 * and this script rewrites those literals in dist/ to `.js` (same length, so the source maps
 * stay exact), failing if the file named is missing or if any relative `.ts` specifier is left.
 */
import { spawnSync } from 'node:child_process';
import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

async function* jsFiles(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* jsFiles(p);
    else if (e.name.endsWith('.js')) yield p;
  }
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** `new URL('./x.ts', import.meta.url)` → `.js`; returns the new text and the URLs rewritten. */
export async function rewriteWorkerUrls(file: string, text: string): Promise<{ text: string; rewritten: string[] }> {
  const rewritten: string[] = [];
  const missing: string[] = [];
  const pattern = /new URL\((['"])(\.{1,2}\/[^'"]+)\.ts\1, import\.meta\.url\)/g;
  const isComment = (line: string): boolean => /^\s*(\*|\/\*|\/\/)/.test(line);
  const out = text
    .split('\n')
    .map((line) =>
      isComment(line)
        ? line
        : line.replace(pattern, (_m, q: string, base: string) => {
            rewritten.push(`${base}.js`);
            return `new URL(${q}${base}.js${q}, import.meta.url)`;
          }),
    )
    .join('\n');
  for (const r of rewritten) if (!(await exists(resolve(dirname(file), r)))) missing.push(r);
  if (missing.length) throw new Error(`${relative(root, file)}: new URL() names ${missing.join(', ')}, which the build did not emit`);
  return { text: out, rewritten };
}

/** A relative `.ts` specifier left in code (not in comments) would fail at run time. */
function leftoverTsSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(/(?:from\s*|import\s*\(\s*|new URL\(\s*)(['"])(\.{1,2}\/[^'"]+\.ts)\1/g)].map((m) => m[2]!);
}

export async function build(): Promise<void> {
  await rm(dist, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status})`);
  const problems: string[] = [];
  for await (const file of jsFiles(dist)) {
    const before = await readFile(file, 'utf8');
    const { text } = await rewriteWorkerUrls(file, before);
    for (const s of leftoverTsSpecifiers(text)) problems.push(`${relative(root, file)}: ${s}`);
    if (text !== before) await writeFile(file, text);
  }
  if (problems.length) throw new Error(`relative .ts specifiers left in dist:\n${problems.join('\n')}`);
  await chmod(join(dist, 'cli/bin.js'), 0o755);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await build();
}
