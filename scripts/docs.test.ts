/**
 * The API reference stays complete: TypeDoc, with the project's typedoc.json (four entry points,
 * `validation.notDocumented`), must convert and validate without a warning, and every exported
 * function and class must carry an `@example` (docs/style.md: "Public functions get TSDoc with a short
 * example"), which TypeDoc does not check by itself. A conversion of the four entry points takes
 * ~13 s (`npx typedoc --emit none`, measured on a shared 2-core machine), so it runs once for the
 * file; the whole file takes ~24 s (`npx vitest run scripts/docs.test.ts`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, Logger, LogLevel, ReflectionKind, TSConfigReader, TypeDocReader, type ProjectReflection, type Reflection, type TypeDocOptions } from 'typedoc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Keeps warnings and errors instead of printing them. */
class CollectingLogger extends Logger {
  readonly messages: string[] = [];
  override log(message: string, level: LogLevel): void {
    if (level >= LogLevel.Warn) this.messages.push(message);
  }
}

/**
 * Converts and validates with typedoc.json (and `overrides`); returns the project and what was
 * logged. With `ownTsconfig`, the tsconfig typedoc.json names is not read (a fixture outside
 * `src` brings its compiler options in `overrides`).
 */
async function runTypeDoc(overrides: TypeDocOptions = {}, ownTsconfig = false): Promise<{ project: ProjectReflection | undefined; messages: string[] }> {
  const readers = ownTsconfig ? [new TypeDocReader()] : [new TypeDocReader(), new TSConfigReader()];
  const app = await Application.bootstrapWithPlugins({ options: join(root, 'typedoc.json'), ...overrides }, readers);
  const logger = new CollectingLogger();
  app.logger = logger;
  const project = await app.convert();
  if (project) app.validate(project);
  return { project, messages: logger.messages };
}

/** The comment of a reflection, or of its first signature (functions keep theirs there). */
function commentOf(r: Reflection): Reflection['comment'] {
  const signatures = (r as { signatures?: Reflection[] }).signatures;
  return r.comment ?? signatures?.[0]?.comment;
}

describe('API reference', () => {
  let project: ProjectReflection | undefined;
  let messages: string[] = [];

  beforeAll(async () => {
    ({ project, messages } = await runTypeDoc());
  });

  it('documents every public export: no TypeDoc warning or error', () => {
    expect(project).toBeDefined();
    expect(messages).toEqual([]);
  });

  it('gives every exported function and class an @example', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const mod of project!.children ?? []) {
      for (const r of mod.children ?? []) {
        if (!r.kindOf(ReflectionKind.Function | ReflectionKind.Class)) continue;
        checked++;
        if (!commentOf(r)?.getTag('@example')) missing.push(`${mod.name}.${r.name}`);
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });

  describe('on an undocumented export', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'proofsync-docs-'));
      await writeFile(join(dir, 'index.ts'), '/** Documented. */\nexport const documented = 1;\nexport function undocumented(): void {}\n');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('is reported: typedoc.json turns on validation.notDocumented', async () => {
      const { messages } = await runTypeDoc({ entryPoints: [join(dir, 'index.ts')], compilerOptions: { strict: true, skipLibCheck: true } }, true);
      expect(messages.some((m) => m.includes('undocumented') && m.includes('does not have any documentation'))).toBe(true);
      expect(messages.some((m) => m.includes('documented (Variable)'))).toBe(false);
    });
  });
});
