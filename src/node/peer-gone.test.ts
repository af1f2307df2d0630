import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isPeerGone } from './peer-gone.ts';
import { RequestTimeout, StreamReset } from '../protocol/stream.ts';

const MODULE = fileURLToPath(new URL('./peer-gone.ts', import.meta.url));
const STREAM = fileURLToPath(new URL('../protocol/stream.ts', import.meta.url));

/** Runs a child Node process that installs the guard, leaves `rejection` unhandled, then prints "alive". */
function child(rejection: string): Promise<{ code: number | null; out: string }> {
  const script = `
    const { guardPeerGone } = await import(${JSON.stringify(MODULE)});
    const { StreamReset } = await import(${JSON.stringify(STREAM)});
    void StreamReset;
    guardPeerGone((line) => process.stderr.write(line + '\\n'));
    void Promise.reject(${rejection});
    setTimeout(() => { process.stdout.write('alive'); process.exit(0); }, 200);
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (out += b));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

describe('guardPeerGone', () => {
  it('keeps the process alive when a peer-gone stream error is left unhandled', async () => {
    const r = await child(`new StreamReset('stream closed by the remote before the frame ended')`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('alive');
    expect(r.out).toContain('ignored 1 stream error(s)');
  });

  it('still ends the process with code 1 on any other unhandled rejection', async () => {
    const r = await child(`new TypeError('a bug')`);
    expect(r.code, r.out).toBe(1);
    expect(r.out).not.toContain('alive');
    expect(r.out).toContain('TypeError: a bug');
  });

  it('tells peer-gone errors from others by name', () => {
    expect(isPeerGone(new StreamReset('x'))).toBe(true);
    expect(isPeerGone(new RequestTimeout('x'))).toBe(true);
    expect(isPeerGone(Object.assign(new Error('x'), { name: 'StreamResetError' }))).toBe(true);
    expect(isPeerGone(new RangeError('x'))).toBe(false);
    expect(isPeerGone('StreamReset')).toBe(false);
    expect(isPeerGone(null)).toBe(false);
  });
});
