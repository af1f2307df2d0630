/**
 * The HTTP API's bearer token, kept in `DIR/token` (mode 0600) so that scripts on the same
 * machine can read it and it survives restarts, created on first start.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The HTTP API's bearer token file in the data directory (`DIR/token`, mode 0600). */
export const TOKEN_FILE = 'token';

/**
 * Reads `DIR/token`, creating it (32 random bytes, hex, mode 0600) on first use.
 *
 * @example
 * const token = await loadOrCreateToken(dataDir);
 * await fetch(`${node.httpUrl}/v1/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
 */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('hex');
  try {
    const h = await open(file, 'wx', 0o600);
    try {
      await h.writeFile(token + '\n');
    } finally {
      await h.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateToken(dataDir);
    throw err;
  }
  await chmod(file, 0o600);
  return token;
}
