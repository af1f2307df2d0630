/** The CLI's proof commands, exercised as a user would: a child process, files, exit codes. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = join(import.meta.dirname, 'bin.ts');
const dir = mkdtempSync(join(tmpdir(), 'proofsync-cli-'));

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout.trim().split('\n').at(-1)!) : undefined };
}

function file(name: string, kvs: [string, string][]): string {
  const p = join(dir, name);
  writeFileSync(p, kvs.map(([key, value]) => JSON.stringify({ key, value })).join('\n') + '\n');
  return p;
}

const before = file('before.jsonl', [['00', '00'], ['0001', '0001'], ['0008', '0008'], ['000102', '000102']]);
const after = file('after.jsonl', [['00', '00'], ['0001', 'ff'], ['000102', '000102'], ['30', '']]);

describe('proofsync CLI', () => {
  it('root: the spec vector from a file and from stdin', () => {
    expect(run(['root', '--in', before])).toMatchObject({ code: 0, json: { root: 'a683b4881cb540b969f885f538ba5904699d480152f350659475a962d6240ef9' } });
    expect(run(['root'], '{"key":"00","value":"00"}\n').json).toEqual({ root: '073615413d814b23383fc2c8d8af13abfffcb371b654b98dbf47dd74b1e4d1b9' });
  });

  it('range-proof then verify-range: key-values, next key, and a rejected tampered proof', () => {
    const root = run(['root', '--in', before]).json.root;
    const proof = join(dir, 'range.bin');
    expect(run(['range-proof', '--db', before, '--key-limit', '2', '--out', proof]).code).toBe(0);
    const ok = run(['verify-range', '--root', root, '--key-limit', '2', '--proof', proof]);
    expect(ok.code).toBe(0);
    expect(ok.json).toEqual({ ok: true, keyValues: [{ key: '00', value: '00' }, { key: '0001', value: '0001' }], nextKey: expect.any(String) });
    // the next key must not skip 000102 or 0008
    expect(ok.json.nextKey <= '000102').toBe(true);
    const bytes = readFileSync(proof);
    bytes[bytes.length - 1] ^= 1; // alter the last value byte
    writeFileSync(proof, bytes);
    const bad = run(['verify-range', '--root', root, '--key-limit', '2', '--proof', proof]);
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ ok: false, error: expect.stringMatching(/^[A-Z][A-Za-z]+$/) });
  });

  it('change-proof then verify-change against the local file', () => {
    const root = run(['root', '--in', after]).json.root;
    const proof = join(dir, 'change.bin');
    expect(run(['change-proof', '--from', before, '--to', after, '--out', proof]).code).toBe(0);
    const ok = run(['verify-change', '--local', before, '--root', root, '--proof', proof]);
    expect(ok.code).toBe(0);
    expect(ok.json.keyChanges).toEqual([
      { key: '0001', value: 'ff' },
      { key: '0008', value: null },
      { key: '30', value: '' },
    ]);
    // verifying against a local state that is not the proof's starting state fails
    const other = file('other.jsonl', [['00', '00'], ['0001', '0001'], ['0002', '0002'], ['0008', '0008'], ['000102', '000102']]);
    const wrong = run(['verify-change', '--local', other, '--root', root, '--proof', proof]);
    expect(wrong.code).toBe(1);
    expect(wrong.json.ok).toBe(false);
  });

  it('log-root: the spec MMR vectors', () => {
    const elems = Array.from({ length: 11 }, (_, i) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(i));
      return b;
    });
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    const lines = elems.map((e) => createHash('sha256').update(e).digest('hex')).join('\n');
    expect(run(['log-root'], lines).json.root).toBe('a39bd2d0f3ca6dd403db3177a55ade675a4a03dd2e764077e0d9ef76ab346fc1');
    const all = run(['log-root', '--all'], lines.split('\n').slice(0, 3).join('\n')).json.roots;
    expect(all).toEqual([
      'af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc',
      '7676407563b96f8f78658b5b6fd523b190634cf5435393a66d62986a35cdd838',
      'df6cbde68147ea5ad3282787273c2570137d8ac55e9815049cf8098aed18bff1',
      '9298d0091664cf4cce531b3e9e63aabd9b4782ba78d5512ddb5d8a2a3b7adbdf',
    ]);
  });

  it('usage errors exit 2 and name the bad argument', () => {
    expect(run(['verify-range', '--root', 'zz'])).toMatchObject({ code: 2, err: expect.stringContaining('--root') });
    expect(run(['range-proof'])).toMatchObject({ code: 2, err: expect.stringContaining('--db') });
    expect(run(['range-proof', '--db', before, '--key-limit', '0'])).toMatchObject({ code: 2, err: expect.stringContaining('--key-limit') });
    expect(run(['bogus'])).toMatchObject({ code: 2, err: expect.stringContaining('bogus') });
    expect(run(['root', '--nope'])).toMatchObject({ code: 2, err: expect.stringContaining('nope') });
  });

  it('node limit flags out of range are usage errors, before anything starts', () => {
    const data = join(tmpdir(), 'proofsync-cli-never-created');
    const cases: [string[], string][] = [
      [['--stream-window', '1024'], '--stream-window'],
      [['--conn-streams', '0'], '--conn-streams'],
      [['--stream-buffer', 'lots'], '--stream-buffer'],
      [['--protocol-streams', '-1'], '--protocol-streams'],
      [['--http-max-body', '0'], '--http-max-body'],
      [['--http-headers-timeout', '1.5'], '--http-headers-timeout'],
    ];
    for (const [flags, name] of cases) expect(run(['node', '--data', data, ...flags])).toMatchObject({ code: 2, err: expect.stringContaining(name) });
    expect(existsSync(data)).toBe(false);
  });
});
