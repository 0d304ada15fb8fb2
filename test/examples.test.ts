// The server examples under examples/ (Node's http, Express 5, Fastify 5), each started as its
// own process on an ephemeral port and driven over HTTP: an upload is counted and hashed, an echo
// comes back whole, a body over the limit is a 413. They import `memsys` by its package name,
// as a user's program does (the package refers to itself).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { pattern } from './helpers.js';

const dir = fileURLToPath(new URL('../examples/', import.meta.url));

async function start(file: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before listening: ${out}`)));
  });
  return { url, stop: () => child.kill() };
}

// The status of a POST that declares `length` bytes and sends none of them.
function declared(url: string, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': length } }, (res) => {
      resolve(res.statusCode!);
      res.resume();
      req.destroy();
    });
    req.on('error', (e) => { if (!req.destroyed) reject(e); });
    req.flushHeaders();
  });
}

for (const file of ['http.mjs', 'express.mjs', 'fastify.mjs']) {
  test(`examples/${file}: upload, echo, and a 413 over the limit`, async () => {
    const { url, stop } = await start(file);
    try {
      const data = Uint8Array.from(pattern(3 << 20, 11));
      const headers = { 'content-type': 'application/octet-stream' };
      const up = await fetch(`${url}/upload`, { method: 'POST', headers, body: data });
      assert.is(up.status, 200);
      assert.equal(await up.json(), { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
      const echo = await fetch(`${url}/echo`, { method: 'POST', headers, body: data });
      assert.is(echo.status, 200);
      assert.is(echo.headers.get('content-length'), String(data.length));
      assert.ok(Buffer.from(await echo.arrayBuffer()).equals(data));
      // Over the limit by its declared length: answered before a byte of it is sent (a client that
      // kept sending a refused body could have its connection closed under it, and fetch would fail).
      assert.is(await declared(`${url}/echo`, (64 << 20) + 1), 413);
    } finally {
      stop();
    }
  });
}

test.run();
