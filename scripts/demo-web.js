// `npm run demo:web`: serves the live view (demo/web) and the built bundle on localhost, with the
// headers that make the page cross-origin isolated (shared memories, Web Workers on one pool).
//   node scripts/demo-web.js [--port N]     (default 8080; 0: any free port)
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ISOLATED, fileUnder, pathOf, sendFile } from './serve.js';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const at = process.argv.indexOf('--port');
const port = at > 0 ? Number(process.argv[at + 1]) : 8080;
if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
  console.error(`demo:web: --port ${process.argv[at + 1]} must be an integer 0 … 65535`);
  process.exit(2);
}

const server = createServer((req, res) => {
  const path = pathOf(req);
  const file = path === null ? null
    : path.startsWith('/build/') ? fileUnder(join(root, 'build'), path.slice('/build'.length))
      : fileUnder(join(root, 'demo/web'), path === '/' ? 'index.html' : path);
  sendFile(res, file, { ...ISOLATED, 'cache-control': 'no-store' });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`memsys live view: http://127.0.0.1:${server.address().port}/  (Ctrl-C stops it)`);
});
