// `npm run build`: webpack (webpack.config.js), then the page beside the bundles in dist/.
import { copyFile } from 'node:fs/promises';
import webpack from 'webpack';
import config from './webpack.config.js';

const stats = await new Promise((resolve, reject) => webpack(config, (err, s) => (err ? reject(err) : resolve(s))));
if (stats.hasErrors()) {
  console.error(stats.toString({ all: false, errors: true }));
  process.exit(1);
}
await copyFile('index.html', 'dist/index.html');
