// A dApp on proofsync, bundled by Vite: it syncs a verified replica of one database and shows
// its root, its peers, and the value of a key as it changes. `config.json` names the database,
// its writer's peer id and the full nodes to dial (the end-to-end test writes it).
// #region client
import { createLightClient, preloadLightClient } from 'proofsync/client';
import { fromHex, toHex } from 'proofsync/core';

preloadLightClient();                         // optional, first thing: the worker boots meanwhile
const config = await (await fetch('./config.json')).json();
const client = createLightClient({
  db: config.db,                // the database name in the writer's announcements
  writer: config.writer,        // the writer's peer id: the only key trusted
  bootstrap: config.bootstrap,  // full nodes: /ws, /wss or /webrtc-direct multiaddrs with /p2p/<id>
  allowInsecureLoopback: config.local === true, // ws:// and 127.0.0.1: local development only
});
// #endregion client
const show = (id: string, text: string): void => {
  document.getElementById(id)!.textContent = text;
};
client.on('peer', (p) => show('peers', `${document.getElementById('peers')!.textContent}${p.transport} ${p.status}\n`));
client.on('error', ({ error }) => show('error', `${error.name}: ${error.message}`));

// #region read
const { root } = await client.synced();      // the local replica stands at a signed root
show('root', toHex(root));

async function watch(keyHex: string): Promise<void> {
  const key = fromHex(keyHex);
  const read = async (): Promise<void> => {
    const value = await client.get(key);       // from the verified IndexedDB replica
    show('value', value ? toHex(value) : '(absent)');
  };
  client.subscribe({ start: key, end: key }, read); // live: each verified change of that key
  await read();
}
// #endregion read
document.querySelector('form')!.addEventListener('submit', (e) => {
  e.preventDefault();
  void watch((document.getElementById('key') as HTMLInputElement).value);
});
