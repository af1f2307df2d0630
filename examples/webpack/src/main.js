// A dApp on proofsync, bundled by webpack 5: webpack finds the SDK's worker in its
// `new Worker(new URL(...))` and the WebRTC bridge in its `import()`, and emits both as chunks.
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
});
// #endregion client
const show = (id, text) => {
  document.getElementById(id).textContent = text;
};
client.on('peer', (p) => show('peers', `${document.getElementById('peers').textContent}${p.transport} ${p.status}\n`));
client.on('error', ({ error }) => show('error', `${error.name}: ${error.message}`));

const { root } = await client.synced();
show('root', toHex(root));

async function watch(keyHex) {
  const key = fromHex(keyHex);
  const read = async () => {
    const value = await client.get(key);
    show('value', value ? toHex(value) : '(absent)');
  };
  client.subscribe({ start: key, end: key }, read);
  await read();
}
document.querySelector('form').addEventListener('submit', (e) => {
  e.preventDefault();
  void watch(document.getElementById('key').value);
});
