/**
 * The full node's long-lived identity: an Ed25519 libp2p key kept in `DIR/identity.key`
 * (libp2p's protobuf private-key encoding, file mode 0600), created on first start and read
 * back afterwards, so the node's peer id, and with it every multiaddr clients were given,
 * survives restarts.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorClass, ProofsyncError } from '../core/errors.ts';

/**
 * Thrown by `loadOrCreateIdentity` when the identity file exists but is unreadable as a key, or
 * is readable by others.
 *
 * @example
 * try {
 *   await loadOrCreateIdentity(dataDir);
 * } catch (err) {
 *   if (err instanceof InvalidIdentityFile) console.error(`fix or remove ${join(dataDir, IDENTITY_FILE)}: ${err.message}`);
 *   throw err;
 * }
 */
export const InvalidIdentityFile = errorClass(ProofsyncError, 'InvalidIdentityFile');

/** The node key's file in the data directory (`DIR/identity.key`, mode 0600). */
export const IDENTITY_FILE = 'identity.key';

/**
 * Loads the node key from `dataDir`, creating the directory and an Ed25519 key on first use.
 *
 * @example
 * const privateKey = await loadOrCreateIdentity('/var/lib/proofsync');
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<PrivateKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, IDENTITY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (bytes) {
    if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) {
      throw new InvalidIdentityFile(`${file} is readable by other users: run chmod 600 ${file}`, { file });
    }
    try {
      return privateKeyFromProtobuf(bytes);
    } catch (err) {
      throw new InvalidIdentityFile(`${file} does not hold a libp2p private key: move it away to create a new identity`, { file }, { cause: err });
    }
  }
  const key = await generateKeyPair('Ed25519');
  // 'wx': never overwrite a key another process wrote meanwhile
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(privateKeyToProtobuf(key));
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateIdentity(dataDir);
    throw err;
  }
  await chmod(file, 0o600); // umask cannot loosen it, but be explicit
  return key;
}
