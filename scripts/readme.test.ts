// The README's code is code that runs: every TypeScript or JavaScript block in it is preceded by
// `<!-- snippet: FILE#REGION[,REGION...] -->` and equals those `// #region` parts of FILE (example
// apps that e2e/package.test.ts builds from the packed tarball and runs), or says why it is not
// run with `<!-- not run: REASON -->`.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Block {
  line: number;
  marker: string | undefined;
  code: string;
}

/** The fenced ts/js blocks of a markdown text, each with the HTML comment just before it. */
export function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|js|typescript|javascript)\s*$/.exec(lines[i]!);
    if (!open) {
      if (/^```/.test(lines[i]!)) for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
      continue;
    }
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = before >= 0 ? /^<!-- (snippet: .+|not run: .+) -->$/.exec(lines[before]!.trim())?.[1] : undefined;
    const start = i + 1;
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
    blocks.push({ line: start, marker, code: lines.slice(start, i).join('\n') });
  }
  return blocks;
}

/** The text between `// #region NAME` and `// #endregion NAME`, without those lines. */
export function region(source: string, name: string): string {
  const m = new RegExp(`^[ \\t]*// #region ${name}\\n([\\s\\S]*?)^[ \\t]*// #endregion ${name}$`, 'm').exec(source);
  if (!m) throw new Error(`no region ${name}`);
  return m[1]!.replace(/\n$/, '');
}

describe('README code blocks', () => {
  it('finds markers and regions', () => {
    const md = '<!-- snippet: f.ts#a -->\n```ts\nx\n```\n\n```sh\nnot code\n```\n```js\ny\n```\n';
    expect(codeBlocks(md)).toEqual([
      { line: 2, marker: 'snippet: f.ts#a', code: 'x' },
      { line: 9, marker: undefined, code: 'y' },
    ]);
    expect(region('a\n// #region r\nb\nc\n// #endregion r\nd', 'r')).toBe('b\nc');
    expect(() => region('a', 'r')).toThrow(/no region r/);
  });

  it('are the marked regions of the example files, or say why they are not run', async () => {
    const blocks = codeBlocks(await readFile(`${root}README.md`, 'utf8'));
    expect(blocks.length).toBeGreaterThan(0);
    const unmarked = blocks.filter((b) => !b.marker).map((b) => `README.md:${b.line}`);
    expect(unmarked, 'every ts/js block needs <!-- snippet: FILE#REGION --> or <!-- not run: REASON -->').toEqual([]);
    let snippets = 0;
    for (const b of blocks) {
      const m = /^snippet: ([^#]+)#(.+)$/.exec(b.marker!);
      if (!m) continue;
      const source = await readFile(`${root}${m[1]}`, 'utf8');
      const expected = m[2]!.split(',').map((name) => region(source, name.trim())).join('\n\n');
      expect(b.code, `README.md:${b.line} differs from ${m[1]}#${m[2]}`).toBe(expected);
      snippets++;
    }
    expect(snippets).toBeGreaterThanOrEqual(3);
  });
});
