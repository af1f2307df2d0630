// A dApp on proofsync, bundled by esbuild. esbuild does not bundle workers found in
// `new Worker(new URL(...))`, so the SDK's worker entry is bundled by a second build
// (build.mjs) and handed to the client with the `worker` option.
// `config.json` names the database, its writer's peer id and the full nodes to dial.
// #region client
import { createLightClient } from 'proofsync/client';
import { fromHex, toHex } from 'proofsync/core';

const config = await (await fetch('./config.json')).json();
const client = createLightClient({
  db: config.db,
  writer: config.writer,
  bootstrap: config.bootstrap,
  allowInsecureLoopback: config.local === true,
  // worker.js: the bundle of `proofsync/client/worker` (src/worker.ts), next to this one
  worker: new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'proofsync' }),
});
// #endregion client
const show = (id: string, text: string): void => {
  document.getElementById(id)!.textContent = text;
};
client.on('peer', (p) => show('peers', `${document.getElementById('peers')!.textContent}${p.transport} ${p.status}\n`));
client.on('error', ({ error }) => show('error', `${error.name}: ${error.message}`));

const { root } = await client.synced();
show('root', toHex(root));

async function watch(keyHex: string): Promise<void> {
  const key = fromHex(keyHex);
  const read = async (): Promise<void> => {
    const value = await client.get(key);
    show('value', value ? toHex(value) : '(absent)');
  };
  client.subscribe({ start: key, end: key }, read);
  await read();
}
document.querySelector('form')!.addEventListener('submit', (e) => {
  e.preventDefault();
  void watch((document.getElementById('key') as HTMLInputElement).value);
});
