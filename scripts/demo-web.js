// `npm run demo:web`: serves the live view (demo/web) and the built bundle on localhost, with the
// headers that make the page cross-origin isolated (shared memories, Web Workers on one pool).
//   node scripts/demo-web.js [--port N]     (default 8080; 0: any free port)
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const at = process.argv.indexOf('--port');
const port = at > 0 ? Number(process.argv[at + 1]) : 8080;
if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
  console.error(`demo:web: --port ${process.argv[at + 1]} must be an integer 0 … 65535`);
  process.exit(2);
}
const types = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.map': 'application/json' };

const server = createServer((req, res) => {
  const path = normalize(new URL(req.url ?? '/', 'http://x').pathname).replace(/^(\.\.[/\\])+/, '');
  const file = path.startsWith('/build/') ? join(root, path) : join(root, 'demo/web', path === '/' ? 'index.html' : path);
  if (!existsSync(file) || !(file.startsWith(join(root, 'build')) || file.startsWith(join(root, 'demo/web')))) {
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200, {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
    'cache-control': 'no-store',
  });
  res.end(readFileSync(file));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`memsys live view: http://127.0.0.1:${server.address().port}/  (Ctrl-C stops it)`);
});
