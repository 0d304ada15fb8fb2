// Serving files to a browser, for the live view (scripts/demo-web.js) and the browser tests.
import { readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';

// Headers that make a page cross-origin isolated (SharedArrayBuffer, shared memories).
export const ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.css': 'text/css',
  '.wasm': 'application/wasm', '.map': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
};

/**
 * A request's path, or null where its URL does not parse (a request line may hold anything).
 * @param {import('node:http').IncomingMessage} req
 * @returns {string | null}
 */
export function pathOf(req) {
  try {
    return new URL(req.url ?? '/', 'http://x').pathname;
  } catch {
    return null;
  }
}

/**
 * The file a URL path names under `root`, or null where it would leave it.
 * @param {string} root
 * @param {string} urlPath
 * @returns {string | null}
 */
export function fileUnder(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const file = join(root, normalize(path));
  return file === root || file.startsWith(root.endsWith(sep) ? root : root + sep) ? file : null;
}

/**
 * Sends a file with its type; a 404 for anything that is not a file (missing, a directory, null).
 * @param {import('node:http').ServerResponse} res
 * @param {string | null} file
 * @param {Record<string, string>} [headers]
 */
export function sendFile(res, file, headers = {}) {
  let body;
  try {
    if (file && statSync(file).isFile()) body = readFileSync(file);
  } catch {
    // unreadable: a 404 like a missing file
  }
  if (!body) {
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
  res.end(body);
}
