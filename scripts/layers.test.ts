// The layers of src/ (docs/design.md): core <- protocol <- sync <- {client, node} <- cli. A layer
// imports only the layers below it and itself: the node never imports the browser client or
// back, and the core imports nothing outside itself. Core, protocol and sync also run in the
// browser, so they import no Node built-in module (their tests may). Every import form counts:
// `import`/`export ... from`, `import type`, `import('...')` in code and in types, and the
// `new URL('./x.ts', import.meta.url)` that starts a worker. Run: npx vitest run scripts/layers.test.ts
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

type Layer = 'core' | 'protocol' | 'sync' | 'client' | 'node' | 'cli';

/** What each layer may import (itself included). */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  core: ['core'],
  protocol: ['core', 'protocol'],
  sync: ['core', 'protocol', 'sync'],
  client: ['core', 'protocol', 'sync', 'client'],
  node: ['core', 'protocol', 'sync', 'node'],
  cli: ['core', 'protocol', 'sync', 'client', 'node', 'cli'],
};

/**
 * What a layer's tests and test helpers may import besides: the node's start a node the way
 * `proofsync node` does (testing/full-node.ts runs the CLI's `main`; cli.test.ts its binary).
 */
const TEST_ALLOWED: Partial<Record<Layer, readonly Layer[]>> = {
  node: ['cli'],
};

/** Layers whose code also runs in a browser or a worker. */
const ISOMORPHIC: ReadonlySet<Layer> = new Set(['core', 'protocol', 'sync']);

const BUILTINS = new Set(builtinModules);

/** The layer a path (relative to the repository, `/`-separated) belongs to, if it is in src/. */
function layerOf(path: string): Layer | undefined {
  const m = /^src\/([^/]+)\//.exec(path);
  return m && m[1]! in ALLOWED ? (m[1] as Layer) : undefined;
}

/** Tests and test helpers (a `testing` folder or `testing.ts`). */
const isTestCode = (path: string): boolean => /\.test\.ts$|(^|\/)testing(\/|\.ts$)/.test(path);

/** Every module specifier in a file, with its 1-based line. */
export function specifiers(text: string): { spec: string; line: number }[] {
  const lineAt = (pos: number): number => text.slice(0, pos).split('\n').length;
  const out = ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ spec: f.fileName, line: lineAt(f.pos) }));
  for (const m of text.matchAll(/new URL\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*,\s*import\.meta\.url/g)) {
    const start = text.lastIndexOf('\n', m.index) + 1;
    if (!/^\s*(\*|\/\/|\/\*)/.test(text.slice(start, m.index))) out.push({ spec: m[2]!, line: lineAt(m.index) });
  }
  return out.sort((a, b) => a.line - b.line);
}

/**
 * The imports that break the layering, as `file:line: message`, for files given by their path
 * relative to the repository (`/`-separated) and their text.
 */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    const from = layerOf(path);
    if (!from) continue;
    for (const { spec, line } of specifiers(text)) {
      if (spec.startsWith('.')) {
        const target = normalize(join(dirname(path), spec)).split(sep).join('/');
        const to = layerOf(target);
        if (!to) out.push(`${path}:${line}: imports ${target}, outside the layers of src/`);
        else if (!ALLOWED[from].includes(to) && !(isTestCode(path) && TEST_ALLOWED[from]?.includes(to))) out.push(`${path}:${line}: imports ${target} (src/${from} may import only ${ALLOWED[from].map((l) => `src/${l}`).join(', ')})`);
      } else if (ISOMORPHIC.has(from) && !isTestCode(path) && (spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0]!))) {
        out.push(`${path}:${line}: imports the Node built-in ${spec} (src/${from} also runs in the browser)`);
      }
    }
  }
  return out;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('layers of src/', () => {
  it('no file imports a layer above its own, and core, protocol and sync use no Node built-in', async () => {
    const files = new Map<string, string>();
    for (const f of await sourceFiles(join(root, 'src'))) files.set(relative(root, f).split(sep).join('/'), await readFile(f, 'utf8'));
    expect(files.size).toBeGreaterThan(100);
    expect(layerViolations(files)).toEqual([]);
  });

  it('reports each offending import with its file and line', () => {
    const files = new Map([
      ['src/node/a.ts', "import { x } from '../core/x.ts';\n\nimport { LightClient } from '../client/light-client.ts';\n"],
      ['src/client/b.ts', "// import { y } from '../node/y.ts';\nexport type { Y } from '../node/y.ts';\n"],
      ['src/core/c.ts', "import { sha256 } from '@noble/hashes/sha2.js';\nconst p: import('../protocol/ids.ts').Id = 1;\nimport { readFile } from 'node:fs/promises';\n"],
      ['src/core/c.test.ts', "import { readFile } from 'node:fs/promises';\n"],
      ['src/protocol/d.ts', "const s = await import('../sync/index.ts');\n"],
      ['src/sync/e.ts', "import { delay } from './delay.ts';\nimport { x } from '../../e2e/harness.ts';\nimport { Worker } from 'worker_threads';\n"],
      ['src/client/f.ts', "const w = new Worker(new URL('../node/sign-worker.ts', import.meta.url));\n"],
      ['src/cli/g.ts', "import { createFullNode } from '../node/full-node.ts';\nimport { LightClient } from '../client/light-client.ts';\n"],
      ['src/node/testing/h.ts', "import { main } from '../../cli/main.ts';\nimport { LightClient } from '../../client/light-client.ts';\n"],
      ['src/node/i.ts', "import { main } from '../cli/main.ts';\n"],
    ]);
    expect(layerViolations(files)).toEqual([
      'src/node/a.ts:3: imports src/client/light-client.ts (src/node may import only src/core, src/protocol, src/sync, src/node)',
      'src/client/b.ts:2: imports src/node/y.ts (src/client may import only src/core, src/protocol, src/sync, src/client)',
      'src/core/c.ts:2: imports src/protocol/ids.ts (src/core may import only src/core)',
      'src/core/c.ts:3: imports the Node built-in node:fs/promises (src/core also runs in the browser)',
      'src/protocol/d.ts:1: imports src/sync/index.ts (src/protocol may import only src/core, src/protocol)',
      'src/sync/e.ts:2: imports e2e/harness.ts, outside the layers of src/',
      'src/sync/e.ts:3: imports the Node built-in worker_threads (src/sync also runs in the browser)',
      'src/client/f.ts:1: imports src/node/sign-worker.ts (src/client may import only src/core, src/protocol, src/sync, src/client)',
      'src/node/testing/h.ts:2: imports src/client/light-client.ts (src/node may import only src/core, src/protocol, src/sync, src/node)',
      'src/node/i.ts:1: imports src/cli/main.ts (src/node may import only src/core, src/protocol, src/sync, src/node)',
    ]);
  });
});
