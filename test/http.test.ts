// Bodies of real servers on 127.0.0.1 as SGLs: readBody / sendSGL / freeOnClose with Node's http,
// expressBody with Express 5, fastifyBody with Fastify 5. Every case checks the bytes that went
// through and that the pool holds nothing afterwards: over the limit, cut short, or a client that
// goes away while its response is being sent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { BodyError, MMSA, type SGL, expressBody, fastifyBody, freeOnClose, readBody, sendSGL } from '../src/node/index.js';
import { inUse, pattern, throwsCode } from './helpers.js';

const mm = new MMSA({ name: 'http', arenaSize: 64 << 20, env: {}, housekeeping: false });
mm.init();

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sglSha = (s: SGL) => { const h = createHash('sha256'); for (let c = s.nextChunk(); c; c = s.nextChunk()) h.update(c); s.rewind(); return h.digest('hex'); };
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

// Waits until the pool holds nothing (frees happen on 'close', a tick after the client has its
// answer); fails after a second.
async function drained(what: string): Promise<void> {
  for (let i = 0; i < 100 && inUse(mm) !== 0; i++) await tick(10);
  assert.is(inUse(mm), 0, `${what}: the pool still holds ${inUse(mm)} buffers`);
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: { close(cb: () => void): unknown; closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((r) => server.close(() => r()));
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

// One request; `chunked` sends the body without a Content-Length, in 64 KiB writes.
function request(port: number, method: string, path: string, body?: Uint8Array, opts: { chunked?: boolean; type?: string; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': opts.type ?? 'application/octet-stream' };
    if (body && !opts.chunked) headers['content-length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: opts.agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    req.end();
  });
}

// A raw connection that sends a head declaring `declared` bytes, then `sent` of them, then goes away.
async function cutShort(port: number, declared: number, sent: number): Promise<void> {
  const s: Socket = connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
  s.write(Buffer.alloc(sent, 7));
  await tick(50);
  s.destroy();
}

// A plain http server whose handler is `h`, with the outcome of each request's readBody kept.
function plain(h: (req: IncomingMessage, res: ServerResponse) => Promise<void>) {
  const errors: unknown[] = [];
  const server = http.createServer((req, res) => {
    h(req, res).catch((e) => {
      errors.push(e);
      res.statusCode = e instanceof BodyError ? e.status : 500;
      res.end(String((e as Error).message));
    });
  });
  return { server, errors };
}

// ---- Node's http -----------------------------------------------------------------------------------

test('http: readBody collects a body by Content-Length and chunked; sendSGL echoes it with its length and frees it', async () => {
  let sent: Promise<boolean> | undefined;
  let body: SGL | undefined;
  const { server, errors } = plain(async (req, res) => {
    body = await readBody(mm, req, { limit: 4 << 20 });
    res.setHeader('x-sha', sglSha(body));
    sent = sendSGL(res, body);
  });
  const port = await listen(server);
  try {
    for (const [n, chunked] of [[0, false], [1, false], [200_000, false], [3 << 20, true], [4 << 20, false]] as const) {
      const data = pattern(n, n + 3);
      const a = await request(port, 'POST', '/echo', data, { chunked });
      assert.is(a.status, 200, `${n} bytes`);
      assert.is(a.headers['x-sha'], sha(data), `the server's SGL holds the ${n} bytes sent`);
      assert.is(a.headers['content-length'], String(n));
      assert.is(a.headers['content-type'], 'application/octet-stream');
      assert.ok(Buffer.from(data).equals(a.body), `${n} bytes echoed`);
      assert.is(await sent, true);
      await drained(`${n} bytes`);
      assert.ok(body!.freed);
    }
    assert.equal(errors, []);
  } finally {
    await closeServer(server);
  }
});

test('http: over the limit is a 413 BodyError, by Content-Length before reading and by the bytes of a chunked body; nothing held, the connection reused', async () => {
  const { server, errors } = plain(async (req, res) => {
    const b = await readBody(mm, req, { limit: 1 << 20 });
    await sendSGL(res, b);
  });
  const port = await listen(server);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const big = pattern((1 << 20) + 1, 9);
    const declared = await request(port, 'POST', '/up', big, { agent });
    assert.is(declared.status, 413);
    const e1 = errors[0] as BodyError;
    assert.instance(e1, BodyError);
    assert.is(e1.code, 'ERR_MEMSYS_BODY_TOO_LARGE');
    assert.is(e1.statusCode, 413);
    assert.is(e1.limit, 1 << 20);
    assert.is(e1.length, (1 << 20) + 1);
    assert.is(e1.received, 0, 'refused before a byte was read');
    assert.match(e1.message, /limit of 1048576 bytes: its Content-Length is 1048577/);
    await drained('declared over the limit');

    const chunked = await request(port, 'POST', '/up', pattern(3 << 20, 2), { chunked: true, agent });
    assert.is(chunked.status, 413);
    const e2 = errors[1] as BodyError;
    assert.is(e2.code, 'ERR_MEMSYS_BODY_TOO_LARGE');
    assert.is(e2.length, undefined);
    assert.ok(e2.received > 1 << 20 && e2.received <= (1 << 20) + 65536, `stopped at the chunk past the limit (${e2.received})`);
    await drained('chunked over the limit');

    // The same keep-alive connection serves the next request (the server discarded the rest).
    const ok = pattern(1000, 5);
    const after = await request(port, 'POST', '/up', ok, { agent });
    assert.is(after.status, 200);
    assert.ok(after.body.equals(ok));
    assert.is(errors.length, 2);
    await drained('after');
  } finally {
    agent.destroy();
    await closeServer(server);
  }
});

test('http: a client that goes away mid-body is a 400 BodyError and nothing is held; so is a Content-Length that is not a number', async () => {
  const { server, errors } = plain(async (req, res) => {
    const b = await readBody(mm, req, { limit: 8 << 20 });
    await sendSGL(res, b);
  });
  const port = await listen(server);
  try {
    await cutShort(port, 4 << 20, 300_000);
    for (let i = 0; i < 100 && errors.length === 0; i++) await tick(10);
    const e = errors[0] as BodyError;
    assert.instance(e, BodyError);
    assert.is(e.code, 'ERR_MEMSYS_BODY');
    assert.is(e.status, 400);
    assert.is(e.length, 4 << 20);
    assert.ok(e.received > 0 && e.received <= 300_000, `received ${e.received}`);
    assert.match(e.message, /went away after \d+ of 4194304 bytes/);
    await drained('cut short');
    // The pool goes on serving.
    const data = pattern(100_000, 4);
    const a = await request(port, 'POST', '/up', data);
    assert.ok(a.body.equals(data));
    await drained('after the cut');
  } finally {
    await closeServer(server);
  }
});

test('http: sendSGL to a client that goes away resolves false and frees the SGL; HEAD sends the length only', async () => {
  let sent: Promise<boolean> | undefined;
  let out: SGL | undefined;
  const server = http.createServer((_req, res) => {
    out = mm.newSGL(16 << 20);
    out.write(pattern(16 << 20, 8));
    sent = sendSGL(res, out, { status: 201, contentType: 'application/x-test' });
  });
  const port = await listen(server);
  try {
    // Reads 100 KB of 16 MiB, then closes: the response cannot finish.
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/big' }, (res) => {
        assert.is(res.statusCode, 201);
        assert.is(res.headers['content-type'], 'application/x-test');
        assert.is(res.headers['content-length'], String(16 << 20));
        let got = 0;
        res.on('data', (c: Buffer) => { got += c.length; if (got > 100_000) { req.destroy(); resolve(); } });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    assert.is(await sent, false);
    await drained('client gone');
    assert.ok(out!.freed);

    const head = await request(port, 'HEAD', '/big');
    assert.is(head.headers['content-length'], String(16 << 20));
    assert.is(head.body.length, 0);
    assert.is(await sent, true);
    await drained('HEAD');
  } finally {
    await closeServer(server);
  }
});

test('http: freeOnClose frees at the end of the exchange; a body taken over with handoff() stays', async () => {
  let kept: SGL | undefined;
  const server = http.createServer(async (req, res) => {
    const b = await readBody(mm, req);
    freeOnClose(res, b);
    if (req.url === '/keep') kept = mm.receive(b.handoff()) as SGL;
    res.end(String(b.freed));
  });
  const port = await listen(server);
  try {
    const data = pattern(50_000, 1);
    assert.is(String((await request(port, 'POST', '/drop', data)).body), 'false');
    await drained('dropped');
    await request(port, 'POST', '/keep', data);
    await tick(50);
    assert.ok(kept && !kept.freed);
    assert.is(sglSha(kept), sha(data));
    kept.free();
    await drained('kept, then freed');
  } finally {
    await closeServer(server);
  }
});

test('http: bad arguments are typed errors that change nothing; a pool out of room rejects and holds nothing', async () => {
  const tight = new MMSA({ name: 'http-tight', arenaSize: 4 << 20, env: {}, housekeeping: false, budget: { floor: 4 << 20, ceiling: 4 << 20 } });
  tight.init();
  const seen: unknown[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/tight') await readBody(tight, req, { limit: Infinity });
      else {
        const b = await readBody(mm, req);
        throwsCode(() => readBody(mm, req), 'ERR_MEMSYS_STATE', 'already');
        await sendSGL(res, b);
        throwsCode(() => sendSGL(res, b), 'ERR_MEMSYS_SGL_FREED');
        return;
      }
    } catch (e) {
      seen.push(e);
    }
    res.statusCode = 507;
    res.end();
  });
  const port = await listen(server);
  try {
    const fake = { headers: {}, on() {}, pause() {} } as unknown as IncomingMessage;
    throwsCode(() => readBody({} as MMSA, fake), 'ERR_MEMSYS_INVALID_ARG', 'mm', 'must be an MMSA');
    throwsCode(() => readBody(mm, {} as IncomingMessage), 'ERR_MEMSYS_INVALID_ARG', 'request');
    for (const limit of [-1, 1.5, '1mb', NaN]) throwsCode(() => readBody(mm, fake, { limit: limit as number }), 'ERR_MEMSYS_INVALID_ARG', 'option limit');
    throwsCode(() => readBody(mm, fake, null as never), 'ERR_MEMSYS_INVALID_ARG', 'options');
    throwsCode(() => sendSGL({} as ServerResponse, mm.newSGL()), 'ERR_MEMSYS_INVALID_ARG', 'response');
    assert.is(inUse(mm), 0);
    throwsCode(() => expressBody(mm, { type: 'octet' }), 'ERR_MEMSYS_INVALID_ARG', 'option type');
    throwsCode(() => fastifyBody(mm, { limit: -5 }), 'ERR_MEMSYS_INVALID_ARG', 'option limit');

    const a = await request(port, 'POST', '/x', pattern(10, 1));
    assert.is(a.status, 200);
    const t = await request(port, 'POST', '/tight', pattern(6 << 20, 1), { chunked: true });
    assert.is(t.status, 507);
    assert.is((seen[0] as { code?: string }).code, 'ERR_MEMSYS_BUDGET', String(seen[0]));
    assert.is(inUse(tight), 0, 'what was taken before the budget refused went back');
    assert.is(seen.length, 1);
    await drained('bad arguments');
  } finally {
    await closeServer(server);
    tight.terminate();
  }
});

// ---- Express 5 ------------------------------------------------------------------------------------

test('express: expressBody gives req.body as an SGL, frees it when the response closes, 413 through the error handler', async () => {
  const app = express();
  app.set('env', 'test'); // Express's error handler logs every error elsewhere
  app.post('/echo', expressBody(mm, { limit: 2 << 20 }), (req, res) => { void sendSGL(res, req.body as SGL); });
  app.all('/type', expressBody(mm, { type: ['image/*', 'application/octet-stream'] }), (req, res) => {
    res.json({ sgl: req.body !== undefined && typeof (req.body as SGL).nextChunk === 'function', len: (req.body as SGL | undefined)?.len ?? null });
  });
  const server = http.createServer(app);
  const port = await listen(server);
  try {
    const data = pattern(1 << 20, 6);
    const a = await request(port, 'POST', '/echo', data);
    assert.is(a.status, 200);
    assert.ok(a.body.equals(data));
    await drained('express echo');

    const tooBig = await request(port, 'POST', '/echo', pattern(3 << 20, 1), { chunked: true });
    assert.is(tooBig.status, 413);
    assert.match(String(tooBig.body), /larger than its limit of 2097152 bytes/);
    await drained('express 413');

    assert.equal(JSON.parse(String((await request(port, 'POST', '/type', pattern(10, 1), { type: 'image/png' })).body)), { sgl: true, len: 10 });
    assert.equal(JSON.parse(String((await request(port, 'POST', '/type', pattern(10, 1), { type: 'application/json; charset=utf-8' })).body)), { sgl: false, len: null });
    assert.equal(JSON.parse(String((await request(port, 'GET', '/type')).body)), { sgl: false, len: null });
    await drained('express types');
  } finally {
    await closeServer(server);
  }
});

// ---- Fastify 5 ------------------------------------------------------------------------------------

test('fastify: fastifyBody parses into an SGL under the route bodyLimit, freed when the response closes; other types keep Fastify parsers', async () => {
  const app = Fastify();
  await app.register(fastifyBody(mm));
  app.post('/echo', { bodyLimit: 2 << 20 }, (req, reply) => {
    const b = req.body as SGL;
    return reply.header('content-length', b.len).type('application/octet-stream').send(b.toReadable());
  });
  app.post('/json', (req) => ({ got: req.body }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  try {
    const data = pattern(1_500_000, 3);
    const a = await request(port, 'POST', '/echo', data);
    assert.is(a.status, 200);
    assert.is(a.headers['content-length'], String(data.length));
    assert.ok(a.body.equals(data));
    await drained('fastify echo');

    const big = await request(port, 'POST', '/echo', pattern(3 << 20, 1));
    assert.is(big.status, 413);
    assert.is(JSON.parse(String(big.body)).code, 'ERR_MEMSYS_BODY_TOO_LARGE');
    await drained('fastify 413');

    const j = await request(port, 'POST', '/json', new TextEncoder().encode('{"a":1}'), { type: 'application/json' });
    assert.equal(JSON.parse(String(j.body)), { got: { a: 1 } });
  } finally {
    await app.close();
  }
});

test.run();
