// The server examples under examples/ (Node's http, Express 5, Fastify 5), each started as its
// own process on an ephemeral port and driven over HTTP: an upload is counted and hashed, an echo
// comes back whole, a body over the limit is a 413. They import `memsys` by its package name,
// as a user's program does (the package refers to itself).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
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

for (const file of ['http.mjs', 'express.mjs', 'fastify.mjs']) {
  test(`examples/${file}: upload, echo, and a 413 over the limit`, async () => {
    const { url, stop } = await start(file);
    try {
      const data = new Uint8Array(pattern(3 << 20, 11)); // fetch's BodyInit takes a view of an ArrayBuffer, not of any ArrayBufferLike
      const headers = { 'content-type': 'application/octet-stream' };
      const up = await fetch(`${url}/upload`, { method: 'POST', headers, body: data });
      assert.is(up.status, 200);
      assert.equal(await up.json(), { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
      const echo = await fetch(`${url}/echo`, { method: 'POST', headers, body: data });
      assert.is(echo.status, 200);
      assert.is(echo.headers.get('content-length'), String(data.length));
      assert.ok(Buffer.from(await echo.arrayBuffer()).equals(data));
      const big = await fetch(`${url}/echo`, { method: 'POST', headers, body: new Uint8Array((64 << 20) + 1) });
      assert.is(big.status, 413);
    } finally {
      stop();
    }
  });
}

test.run();
