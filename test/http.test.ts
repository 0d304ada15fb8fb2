// Bodies of real servers on 127.0.0.1 as SGLs: readBody / sendSGL / freeOnClose with Node's http
// and HTTP/2's compatibility API, expressBody with Express 5, fastifyBody with Fastify 5. Every
// case checks the bytes that went through and that the pool holds nothing afterwards: over the
// limit, cut short, a client that goes away before its body is read, before its answer or while
// it is being sent, a handler that fails. A request that gets no answer fails its test after 5 s
// of silence rather than hanging the suite.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { BodyError, MAX_SIZE, MMSA, type SGL, expressBody, fastifyBody, freeOnClose, readBody, sendSGL } from '../src/node/index.js';
import { closeServer, drainer, inUse, listen, pattern, request, sglSha, sha, throwsCode, tick, until } from './helpers.js';

const mm = new MMSA({ name: 'http', arenaSize: 64 << 20, env: {}, housekeeping: false });
mm.init();

const drained = drainer(mm);

// A raw connection that sends a head declaring `declared` bytes, then `sent` of them, then goes away.
async function cutShort(port: number, declared: number, sent: number, path = '/up'): Promise<void> {
  const s: Socket = connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
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
    assert.is(e1.type, 'entity.too.large', "body-parser's name, for handlers written against it");
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

test('http: a client that goes away mid-body is a 400 BodyError and nothing is held; the pool goes on serving', async () => {
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
    assert.is(e.type, 'request.aborted');
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
    throwsCode(() => readBody(mm, fake, { inflate: 'yes' as never }), 'ERR_MEMSYS_INVALID_ARG', 'option inflate', 'boolean');
    throwsCode(() => expressBody(mm, { inflate: 1 as never }), 'ERR_MEMSYS_INVALID_ARG', 'option inflate');
    throwsCode(() => fastifyBody(mm, { inflate: null as never }), 'ERR_MEMSYS_INVALID_ARG', 'option inflate');
    throwsCode(() => sendSGL({} as ServerResponse, mm.newSGL()), 'ERR_MEMSYS_INVALID_ARG', 'response');
    assert.is(inUse(mm), 0);
    throwsCode(() => expressBody(mm, { type: 'octet' }), 'ERR_MEMSYS_INVALID_ARG', 'option type');
    throwsCode(() => fastifyBody(mm, { limit: -5 }), 'ERR_MEMSYS_INVALID_ARG', 'option limit');
    // The adapters check what they will pass to readBody when they are made, not per request.
    throwsCode(() => expressBody({} as MMSA), 'ERR_MEMSYS_INVALID_ARG', 'mm', 'must be an MMSA');
    throwsCode(() => fastifyBody({} as MMSA), 'ERR_MEMSYS_INVALID_ARG', 'mm', 'must be an MMSA');
    throwsCode(() => expressBody(mm, { sbufSize: 3 }), 'ERR_MEMSYS_INVALID_SIZE', 'size 3', 'not a slab size');
    throwsCode(() => fastifyBody(mm, { sbufSize: 5000 }), 'ERR_MEMSYS_INVALID_SIZE', 'size 5000', 'not a slab size');
    for (const contentTypes of [[], '', 7, [null]]) {
      throwsCode(() => fastifyBody(mm, { contentTypes: contentTypes as string }), 'ERR_MEMSYS_INVALID_ARG', 'option contentTypes');
    }
    const s = mm.newSGL();
    const fakeRes = { setHeader() {}, end() {}, once() {} } as unknown as ServerResponse;
    throwsCode(() => freeOnClose({} as ServerResponse, s), 'ERR_MEMSYS_INVALID_ARG', 'response');
    throwsCode(() => freeOnClose(fakeRes, {} as SGL), 'ERR_MEMSYS_INVALID_ARG', 'sgl', 'must be an SGL');
    for (const contentType of [7, '', 'a\nb']) throwsCode(() => sendSGL(fakeRes, s, { contentType: contentType as string }), 'ERR_MEMSYS_INVALID_ARG', 'option contentType');
    for (const status of [99, 100, 101, 199, 1000, 200.5]) throwsCode(() => sendSGL(fakeRes, s, { status }), 'ERR_MEMSYS_INVALID_ARG', 'option status', '200 … 999');
    assert.ok(!s.freed, 'a refused call leaves the SGL alone');
    s.free();
    const away = mm.newSGL();
    away.write(pattern(10, 3));
    const ticket = away.handoff();
    throwsCode(() => sendSGL(fakeRes, away), 'ERR_MEMSYS_MOVED');
    mm.receive(ticket).free();

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

// A raw connection that sends `text`, and the text that comes back once `until` holds of it (or
// the server closes); bounded by two seconds.
async function exchange(port: number, text: string, until: (got: string) => boolean): Promise<string> {
  const s: Socket = connect(port, '127.0.0.1');
  let got = '';
  let ended = false;
  s.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  s.on('close', () => { ended = true; });
  s.on('error', () => {});
  s.write(text);
  for (let i = 0; i < 200 && !ended && !until(got); i++) await tick(10);
  s.destroy();
  return got;
}

// Bytes of the buffers the pool has given out.
const bytesInUse = (m: MMSA) => m.stats().classes.reduce((n, c) => n + c.inUse * c.size, 0);

test('http: a client gone before readBody is called is a 400 at once (its whole body sent or not); nothing is held', async () => {
  const errors: unknown[] = [];
  const server = http.createServer((req) => {
    // The handler reaches readBody only after the client went away (it awaited something else).
    req.once('close', () => readBody(mm, req).then((b) => { b.free(); errors.push('resolved'); }, (e) => errors.push(e)));
  });
  const port = await listen(server);
  try {
    for (const [sent, declared] of [[10, 10], [4, 10]]) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write(`POST /late HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n${'x'.repeat(sent)}`);
      await tick(30);
      s.destroy();
      const n = errors.length;
      await until(() => errors.length > n, `readBody settles for a client gone after ${sent} of ${declared} bytes`);
      const e = errors[n] as BodyError;
      assert.instance(e, BodyError);
      assert.is(e.code, 'ERR_MEMSYS_BODY');
      assert.is(e.status, 400);
      assert.is(e.length, declared);
      assert.match(e.message, /went away before its request body was read/);
      assert.is(inUse(mm), 0);
    }
  } finally {
    await closeServer(server);
  }
});

test('http: readBody reads a request paused before it; refuses one read in part, or with an encoding set, leaving it to be read', async () => {
  const seen: unknown[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      if (req.url === '/paused') req.pause();
      if (req.url === '/part') {
        await new Promise((r) => req.once('readable', r));
        req.read(5);
        throwsCode(() => readBody(mm, req), 'ERR_MEMSYS_STATE', 'already being read');
      }
      if (req.url === '/utf8') {
        req.setEncoding('utf8');
        throwsCode(() => readBody(mm, req), 'ERR_MEMSYS_INVALID_ARG', 'request', 'encoding "utf8"', 'setEncoding');
        // What the request holds is unread yet: another reader takes all of it.
        let text = '';
        for await (const c of req) text += c;
        seen.push(text);
        return void res.end();
      }
      if (req.url === '/sbuf') {
        // A bad option throws before the request is touched: a good call then reads it whole.
        throwsCode(() => readBody(mm, req, { sbufSize: 3 }), 'ERR_MEMSYS_INVALID_SIZE', 'size 3', 'not a slab size');
        const b = await readBody(mm, req, { sbufSize: 8192 });
        seen.push(b.slab.size);
        return void sendSGL(res, b);
      }
      if (req.url === '/part') return void res.end('refused');
      const b = await readBody(mm, req);
      seen.push(b.len);
      void sendSGL(res, b);
    } catch (e) {
      seen.push(e);
      res.statusCode = 500;
      res.end();
    }
  });
  const port = await listen(server);
  try {
    const data = pattern(200_000, 12);
    const paused = await request(port, 'POST', '/paused', data);
    assert.ok(paused.body.equals(data), 'a paused request is read whole');
    const part = await request(port, 'POST', '/part', data, { chunked: true });
    assert.is(String(part.body), 'refused');
    await request(port, 'POST', '/utf8', new TextEncoder().encode('héllo'));
    const sbuf = await request(port, 'POST', '/sbuf', data);
    assert.ok(sbuf.body.equals(data), 'the body is whole after the bad call');
    assert.equal(seen, [data.length, 'héllo', 8192]);
    await drained('paused, part, utf8, sbuf');
  } finally {
    await closeServer(server);
  }
});

test('http: a declared length reserves at most one buffer of the largest size before the bytes arrive', async () => {
  let reading = false;
  const { server, errors } = plain(async (req) => {
    const p = readBody(mm, req, { limit: 64 << 20 });
    reading = true;
    await p;
  });
  const port = await listen(server);
  try {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write('POST /idle HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 16777216\r\n\r\n');
    await until(() => reading, 'the handler is reading');
    assert.ok(bytesInUse(mm) <= MAX_SIZE, `a client that declared 16 MiB and sent nothing holds ${bytesInUse(mm)} bytes`);
    s.destroy();
    await until(() => errors.length === 1, 'readBody rejects when the client goes');
    await drained('idle client gone');
  } finally {
    await closeServer(server);
  }
});

test('http: a limit of 0 takes an empty body and refuses a byte; Infinity takes what comes', async () => {
  const { server } = plain(async (req, res) => {
    const b = await readBody(mm, req, { limit: req.url === '/zero' ? 0 : Infinity });
    void sendSGL(res, b);
  });
  const port = await listen(server);
  try {
    assert.is((await request(port, 'POST', '/zero', new Uint8Array(0))).status, 200);
    assert.is((await request(port, 'POST', '/zero', new Uint8Array(0), { chunked: true })).status, 200);
    assert.is((await request(port, 'POST', '/zero', pattern(1, 1))).status, 413);
    assert.is((await request(port, 'POST', '/zero', pattern(1, 1), { chunked: true })).status, 413);
    const data = pattern(5 << 20, 19);
    assert.ok((await request(port, 'POST', '/inf', data, { chunked: true })).body.equals(data));
    await drained('limits 0 and Infinity');
  } finally {
    await closeServer(server);
  }
});

test('http: a pipelined request after a 413 is parsed and answered in turn', async () => {
  const { server } = plain(async (req, res) => {
    const b = await readBody(mm, req, { limit: 10 });
    res.setHeader('x-url', req.url!);
    void sendSGL(res, b);
  });
  const port = await listen(server);
  try {
    for (const first of ['Content-Length: 20\r\n\r\n01234567890123456789', 'Transfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n']) {
      const got = await exchange(port, `POST /a HTTP/1.1\r\nHost: x\r\n${first}POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`, (g) => g.endsWith('\r\n\r\nabc'));
      assert.match(got, /^HTTP\/1\.1 413 [^]*larger than its limit of 10 bytes[^]*HTTP\/1\.1 200 OK\r\nx-url: \/b\r\n[^]*content-length: 3\r\n[^]*\r\n\r\nabc$/, got);
    }
    await drained('pipelined');
  } finally {
    await closeServer(server);
  }
});

test("http: sendSGL keeps to the client's pace: to a client that stops reading it hands the socket what it takes and 4 MiB more, then the rest once it reads", async () => {
  const n = 48 << 20;
  const data = pattern(n, 21);
  let sent: SGL | undefined;
  // The socket's queue after each write (bytes written and not yet taken by the kernel), and the
  // most at once: what sendSGL holds there beyond what the kernel takes. The kernel's part (the
  // socket buffers of both ends) is the host's: tcp_rmem lets one grow to 32 MiB.
  let queued = 0;
  let most = 0;
  let chunk = 0;
  const server = http.createServer((_req, res) => {
    sent = mm.newSGL(n);
    sent.write(data);
    const write = res.write.bind(res) as (c: Uint8Array, cb?: (e?: Error | null) => void) => boolean;
    res.write = ((c: Uint8Array, cb?: (e?: Error | null) => void) => {
      const more = write(c, cb);
      queued = res.socket!.writableLength;
      most = Math.max(most, queued);
      chunk = Math.max(chunk, c.length);
      return more;
    }) as typeof res.write;
    void sendSGL(res, sent);
  });
  const port = await listen(server);
  const c = connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  c.on('data', (d: Buffer) => got.push(d));
  try {
    await new Promise((r) => c.once('connect', r));
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => got.length > 0, 'the response began');
    c.pause();   // the kernel's buffers fill, then the socket's queue
    let handed = 0;
    for (let i = 0; i < 30; i++) {
      await tick(20);
      handed = n - sent!.len;
    }
    assert.ok(handed < n, `all ${n >> 20} MiB handed to a socket whose client reads nothing`);
    assert.ok(queued > 0, 'the socket\'s queue holds what the kernel does not take');
    // The response's head goes out with the first chunk: a few hundred bytes.
    assert.ok(most <= (4 << 20) + chunk + 1024, `${most} B in the socket's queue at once: at most the 4 MiB window, one ${chunk}-byte chunk and the head`);
    c.resume();
    await until(() => got.reduce((k, b) => k + b.length, 0) >= n, 'the whole body arrived once the client read', 10_000);
    const all = Buffer.concat(got);
    assert.is(sha(all.subarray(all.indexOf('\r\n\r\n') + 4)), sha(data));
  } finally {
    c.destroy();
    await closeServer(server);
  }
  await drained('paced send');
});

test('http: sendSGL leaves Content-Length to a set Transfer-Encoding and out of a 204, sends what is unread, after sent headers too', async () => {
  const server = http.createServer(async (req, res) => {
    const b = await readBody(mm, req);
    if (req.url === '/te') res.setHeader('transfer-encoding', 'chunked');
    if (req.url === '/unread') b.read(new Uint8Array(4));
    if (req.url === '/sent') res.writeHead(202, { 'content-type': 'text/plain' });
    void sendSGL(res, b, { status: req.url === '/204' ? 204 : undefined });
  });
  const port = await listen(server);
  try {
    const data = pattern(100_000, 13);
    const te = await request(port, 'POST', '/te', data);
    assert.is(te.headers['transfer-encoding'], 'chunked');
    assert.is(te.headers['content-length'], undefined);
    assert.ok(te.body.equals(data));
    const none = await request(port, 'POST', '/204', data);
    assert.is(none.status, 204);
    assert.is(none.headers['content-length'], undefined);
    const unread = await request(port, 'POST', '/unread', data);
    assert.is(unread.headers['content-length'], String(data.length - 4));
    assert.ok(unread.body.equals(data.subarray(4)));
    const sent = await request(port, 'POST', '/sent', data);
    assert.is(sent.status, 202);
    assert.is(sent.headers['content-type'], 'text/plain');
    assert.ok(sent.body.equals(data));
    await drained('sendSGL headers');
  } finally {
    await closeServer(server);
  }
});

test('http: sendSGL sends no body with HEAD, 204 or 304 even where Node refuses one; a write Node throws at ends the response, resolves false and frees', async () => {
  const results: string[] = [];
  const server = http.createServer({ rejectNonStandardBodyWrites: true }, async (req, res) => {
    const b = await readBody(mm, req);
    if (req.url === '/mismatch') {
      res.strictContentLength = true;
      res.writeHead(200, { 'content-length': '3' });
    }
    const sent = sendSGL(res, b, { status: req.url === '/204' ? 204 : req.url === '/304' ? 304 : undefined });
    results.push(`${req.method} ${req.url} ${await sent} ${b.freed}`);
  });
  const port = await listen(server);
  try {
    const data = pattern(100_000, 15);
    const head = await request(port, 'HEAD', '/head', data);
    assert.is(head.status, 200);
    assert.is(head.headers['content-length'], String(data.length));
    assert.is(head.body.length, 0);
    assert.is((await request(port, 'POST', '/204', data)).status, 204);
    assert.is((await request(port, 'POST', '/304', data)).status, 304);
    await request(port, 'POST', '/mismatch', data).catch(() => {});
    await until(() => results.length === 4, 'every sendSGL settled');
    assert.equal(results, ['HEAD /head true true', 'POST /204 true true', 'POST /304 true true', 'POST /mismatch false true']);
    await drained('sendSGL without a body');
  } finally {
    await closeServer(server);
  }
});

test('http: a second sendSGL on a response, during the first or after it, and a bad contentType throw and change nothing', async () => {
  let other: SGL | undefined;
  const seen: string[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      const b = await readBody(mm, req);
      other = mm.newSGL();
      other.write(pattern(10, 1));
      throwsCode(() => sendSGL(res, b, { contentType: 'text/plain\r\nx-injected: 1' }), 'ERR_MEMSYS_INVALID_ARG', 'option contentType', 'header value');
      seen.push(`headers ${res.getHeaderNames().join(',')}`);
      const first = sendSGL(res, b);
      throwsCode(() => sendSGL(res, other!), 'ERR_MEMSYS_STATE', 'already being sent');
      seen.push(`first ${await first}`);
      throwsCode(() => sendSGL(res, other!), 'ERR_MEMSYS_STATE', 'already ended');
      seen.push(`other ${other!.freed} ${other!.len}`);
    } catch (e) {
      seen.push(String(e));
      res.destroy();
    }
  });
  const port = await listen(server);
  try {
    const data = pattern(300_000, 14);
    const a = await request(port, 'POST', '/twice', data);
    assert.ok(a.body.equals(data), 'the first SGL went out alone');
    assert.is(a.headers['x-injected'], undefined);
    await until(() => seen.length === 3, 'the handler ran to its end');
    assert.equal(seen, ['headers ', 'first true', 'other false 10']);
    other!.free();
    await drained('twice');
  } finally {
    await closeServer(server);
  }
});

// ---- HTTP/2 (the compatibility API) ---------------------------------------------------------------

test('http2: readBody and sendSGL over h2c; a client gone mid-body, before the answer or during it leaves nothing held', async () => {
  const outcomes: unknown[] = [];
  let bodyRead: () => void = () => {};
  const server = http2.createServer(async (req, res) => {
    try {
      const b = await readBody(mm, req, { limit: 4 << 20 });
      if (req.url === '/late') {
        bodyRead();
        await new Promise((r) => res.once('close', r));
        const kept = mm.newSGL();
        kept.write(pattern(10, 1));
        freeOnClose(res, kept);
        outcomes.push(`late freeOnClose ${kept.freed}`);
      }
      if (req.url === '/big') {
        const big = mm.newSGL(16 << 20);
        big.write(pattern(16 << 20, 2));
        b.free();
        outcomes.push(`big ${await sendSGL(res, big)}`);
        return;
      }
      outcomes.push(`${req.url} ${await sendSGL(res, b)}`);
    } catch (e) {
      outcomes.push(e);
      if (!res.headersSent && !res.stream.closed) { res.statusCode = e instanceof BodyError ? e.status : 500; res.end(); }
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => {});
  const post = (path: string, headers: http2.OutgoingHttpHeaders = {}) => client.request({ ':method': 'POST', ':path': path, ...headers });
  try {
    const data = pattern(1 << 20, 15);
    const echo = post('/echo', { 'content-length': data.length });
    const got: Buffer[] = [];
    const head = new Promise<http2.IncomingHttpHeaders>((r) => echo.once('response', r));
    echo.on('data', (c: Buffer) => got.push(c));
    echo.end(data);
    await new Promise((r) => echo.once('end', r));
    assert.is((await head)['content-length'], String(data.length));
    assert.ok(Buffer.concat(got).equals(data));
    await until(() => outcomes.length === 1, 'echo answered');
    assert.is(outcomes[0], '/echo true');

    const cut = post('/cut', { 'content-length': data.length });
    cut.on('error', () => {});
    cut.write(data.subarray(0, 1000));
    await tick(30);
    cut.close(http2.constants.NGHTTP2_CANCEL);
    await until(() => outcomes.length === 2, 'cut short settles');
    assert.is((outcomes[1] as BodyError).code, 'ERR_MEMSYS_BODY');
    await drained('h2 cut');

    const late = post('/late');
    late.on('error', () => {});
    const read = new Promise<void>((r) => { bodyRead = r; });
    late.end(data.subarray(0, 10));
    await read;
    late.close(http2.constants.NGHTTP2_CANCEL);
    await until(() => outcomes.length === 4, 'sendSGL settles on a closed response');
    assert.equal(outcomes.slice(2), ['late freeOnClose true', '/late false']);
    await drained('h2 gone before the answer');

    const big = post('/big');
    big.on('error', () => {});
    let n = 0;
    big.on('data', (c: Buffer) => { n += c.length; if (n > 100_000) big.close(http2.constants.NGHTTP2_CANCEL); });
    big.end();
    await until(() => outcomes.length === 5, 'the big answer settles');
    assert.is(outcomes[4], 'big false');
    await drained('h2 gone during the answer');
  } finally {
    client.close();
    await new Promise((r) => server.close(r));
  }
});

// ---- Express 5 ------------------------------------------------------------------------------------

test('express: expressBody gives req.body as an SGL, frees it when the response closes, 413 through the error handler', async () => {
  const app = express();
  app.set('env', 'test'); // Express's error handler logs every error elsewhere
  app.post('/echo', expressBody(mm, { limit: 2 << 20 }), (req, res) => { void sendSGL(res, req.body as SGL); });
  app.all('/type', expressBody(mm, { type: ['image/*', 'application/octet-stream', 'application/*+cbor'] }), (req, res) => {
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
    assert.equal(JSON.parse(String((await request(port, 'POST', '/type', pattern(10, 1), { type: 'application/vnd.thing+cbor' })).body)), { sgl: true, len: 10 }, 'a +suffix wildcard');
    assert.equal(JSON.parse(String((await request(port, 'POST', '/type', pattern(10, 1), { type: 'application/cbor' })).body)), { sgl: false, len: null }, 'the suffix alone is another type');
    assert.equal(JSON.parse(String((await request(port, 'GET', '/type')).body)), { sgl: false, len: null });
    await drained('express types');
  } finally {
    await closeServer(server);
  }
});

test('pipelining: a response queued behind a slow one, whose client leaves before it gets the socket, frees its SGL (sendSGL resolves false) and its expressBody body', async () => {
  const outcomes: boolean[] = [];
  const app = express();
  app.set('env', 'test');
  let bodies = 0;
  app.post('/slow', (_req, res) => { setTimeout(() => res.end('late'), 400); });
  app.post('/send', expressBody(mm), (req, res) => { void sendSGL(res, req.body as SGL).then((r) => outcomes.push(r)); });
  app.post('/held', expressBody(mm), () => { bodies++; });   // never answers: its body waits for the response to close
  const server = http.createServer(app);
  const port = await listen(server);
  try {
    for (const path of ['/send', '/held']) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      const post = (p: string, body: string) => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      s.write(post('/slow', '') + post(path, 'x'.repeat(100_000)));
      await until(() => inUse(mm) > 0, `${path}: the second request's body is in an SGL`);
      await tick(50);
      s.destroy();
      await until(() => inUse(mm) === 0, `${path}: the queued response's SGL is freed once the client left`, 3000);
    }
    // Fifteen responses queued on one connection: one 'close' listener of memsys's on its socket.
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    const socks: Socket[] = [];
    server.on('request', (req: IncomingMessage) => { if (!socks.includes(req.socket)) socks.push(req.socket); });
    const one = (p: string, n: number) => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\n\r\n${'y'.repeat(n)}`;
    s.write(one('/slow', 0) + Array.from({ length: 15 }, () => one('/send', 1000)).join(''));
    await until(() => inUse(mm) === 15, 'fifteen queued responses hold their bodies');
    assert.ok(socks[0].listenerCount('close') <= 3, `listeners on the socket: ${socks[0].listenerCount('close')}`);
    s.destroy();
    await until(() => inUse(mm) === 0, 'all fifteen freed when the client left', 3000);
    assert.equal(outcomes, Array(16).fill(false), 'sendSGL resolved false: the client went away');
    assert.is(bodies, 1);
  } finally {
    await closeServer(server);
  }
});

test('express: a body read by an earlier reader passes through; a handler that fails after req.body is set, a client gone before the answer or in the middle of the body, frees it', async () => {
  const app = express();
  app.set('env', 'test');
  let inHandler: () => void = () => {};
  app.post('/consumed', async (req, _res, next) => { for await (const _ of req) { /* another reader takes it all */ } next(); }, expressBody(mm), (req, res) => {
    res.json({ body: req.body ?? null });
  });
  app.post('/throw', expressBody(mm), () => { throw new Error('the handler failed'); });
  app.post('/next', expressBody(mm), (_req, _res, next) => next(new Error('the handler failed')));
  app.post('/never', expressBody(mm), () => inHandler()); // never answers
  const errs: unknown[] = [];
  app.use((err: unknown, _req: IncomingMessage, res: ServerResponse, _next: unknown) => {
    if (err instanceof BodyError) errs.push(err);
    res.statusCode = (err as { status?: number }).status ?? 500;
    res.end();
  });
  const server = http.createServer(app);
  const port = await listen(server);
  try {
    const data = pattern(100_000, 16);
    const consumed = await request(port, 'POST', '/consumed', data);
    assert.is(consumed.status, 200);
    assert.equal(JSON.parse(String(consumed.body)), { body: null });
    for (const path of ['/throw', '/next']) {
      assert.is((await request(port, 'POST', path, data)).status, 500);
      await drained(`express ${path}`);
    }
    const handled = new Promise<void>((r) => { inHandler = r; });
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write(`POST /never HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n0123456789`);
    await handled;
    assert.is(inUse(mm), 1, 'req.body holds its buffer while the handler runs');
    s.destroy();
    await drained('express: client gone before the answer');

    await cutShort(port, 800_000, 300_000, '/never');
    await until(() => errs.length === 1, 'the error handler saw the body cut short');
    assert.equal([(errs[0] as BodyError).type, (errs[0] as BodyError).status], ['request.aborted', 400]);
    await drained('express: client gone mid-body');
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

test("fastify: contentTypes '*' in an encapsulated context only; inject's unchecked Content-Length is a 400; a client gone mid-body or during reply.send(toReadable()) leaves nothing held", async () => {
  const app = Fastify();
  let aborts = 0;
  app.addHook('onRequestAbort', (_req, done) => { aborts++; done(); });
  await app.register(async (child) => {
    await child.register(fastifyBody(mm, { contentTypes: '*' }));
    child.post('/any', (req) => ({ len: (req.body as SGL).len, type: req.headers['content-type'] ?? null }));
  });
  app.post('/root', (req) => ({ body: req.body ?? null }));
  await app.register(async (child) => {
    await child.register(fastifyBody(mm));
    child.post('/echo', { bodyLimit: 64 << 20 }, (req, reply) => {
      const b = req.body as SGL;
      return reply.header('content-length', b.len).type('application/octet-stream').send(b.toReadable());
    });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  try {
    const data = pattern(10, 17);
    assert.equal(JSON.parse(String((await request(port, 'POST', '/any', data, { type: 'application/x-thing' })).body)), { len: 10, type: 'application/x-thing' });
    assert.is((await request(port, 'POST', '/root', data, { type: 'application/x-thing' })).status, 415, 'the parser stays in its context');
    await drained('fastify *');

    // Node's parser refuses such a header before a handler runs; inject (light-my-request) does not.
    const bad = await app.inject({ method: 'POST', url: '/any', headers: { 'content-type': 'application/x-thing', 'content-length': '12x' }, payload: 'abc' });
    assert.is(bad.statusCode, 400);
    assert.is(bad.json().code, 'ERR_MEMSYS_BODY');
    assert.match(bad.json().message, /Content-Length "12x" is not a byte count/);
    const huge = await app.inject({ method: 'POST', url: '/any', headers: { 'content-type': 'application/x-thing', 'content-length': '18014398509481984' }, payload: 'abc' });
    assert.equal([huge.statusCode, huge.json().code], [413, 'ERR_MEMSYS_BODY_TOO_LARGE'], 'a Content-Length past 2^53 is too large, not malformed');
    assert.match(huge.json().message, /its Content-Length is 18014398509481984/);
    await drained('fastify inject');

    await cutShort(port, 4 << 20, 100_000, '/echo');
    await until(() => aborts === 1, 'onRequestAbort ran');
    await drained('fastify cut short');

    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/echo', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => { got += c.length; if (got > 100_000) { req.destroy(); resolve(); } });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
      req.end(pattern(16 << 20, 18));
    });
    await drained('fastify: client gone during the answer');
  } finally {
    await app.close();
  }
});

test.run();
