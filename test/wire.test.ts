// takeBodies(): request bodies read off a node:http server's connections straight into SGLs.
// Real servers on 127.0.0.1, driven by node:http's client, fetch, and raw sockets that write
// requests byte for byte: Content-Length and chunked bodies (extensions, trailers, one byte per
// write), pipelining, keep-alive, the server's and readBody's limits, framings left to Node
// (and Node's answer to them, compared with a server that does not take bodies), broken chunked
// bodies, Upgrade and Expect: 100-continue, clients that go away, bodies never read or read late,
// `filter`, headersTimeout and requestTimeout, Express and Fastify, argument errors, the server's
// connections, close() and its 'connection' and 'request' listeners, and SGLs echoed with
// sendSGL. Every case checks the bytes that went through (sha256), the status codes, and that the
// pool holds nothing afterwards. A request that gets no answer
// fails its test after about 5 s instead of hanging the suite.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import express from 'express';
import Fastify from 'fastify';
import {
  BodyError, MMSA, SGL, expressBody, fastifyBody, readBody, sendSGL, takeBodies,
} from '../src/node/index.js';
import { closeServer, inUse, listen, pattern, request, sglSha, sha, throwsCode, tick, until } from './helpers.js';
import {
  type Handler, Raw, type Seen, answerError, answerTo, bytes, chunked, clientErrors, describe, drained, head, json, mm, pieces, serving, settles,
} from './wire-client.js';

// ---- Content-Length and chunked bodies -------------------------------------------------------------

test('Content-Length bodies of 0, 1, 64 KiB and 5 MiB arrive whole; the request shows the Content-Length the client sent', () => serving({}, async ({ port, errors }) => {
  for (const n of [0, 1, 64 << 10, 5 << 20]) {
    const data = pattern(n, n + 1);
    const a = await request(port, 'POST', '/cl', data);
    assert.is(a.status, 200, `${n} bytes`);
    const seen: Seen = json(a.body);
    assert.is(seen.len, n);
    assert.is(seen.sha, sha(data), `the SGL holds the ${n} bytes sent`);
    assert.is(seen.cl, String(n), "req.headers['content-length'] as sent, not Node's zeros");
    assert.is(seen.rawCl, String(n), 'req.rawHeaders as sent');
    assert.is(seen.te, null);
    assert.is(seen.hasBody, true);
    await drained(`${n} bytes`);
  }
  // A header name in odd case and a value with leading zeros come back as they were written.
  const c = await Raw.open(port);
  c.send(`${head('POST', '/odd', { 'content-LENGTH': '0005' })}hello`);
  const seen: Seen = json((await c.answer('odd Content-Length')).body);
  assert.equal([seen.len, seen.sha, seen.cl, seen.rawCl], [5, sha(bytes('hello')), '0005', '0005']);
  c.destroy();
  assert.equal(errors, []);
}));

test('chunked bodies: fetch with a ReadableStream, raw chunks with extensions, upper-case hex and trailers, and all of it one byte per write', () => serving({}, async ({ port, errors }) => {
  // fetch streams its body chunked (undici), in writes of the sizes the stream gives.
  const data = pattern(300_000, 21);
  const parts = pieces(data, [1, 7000, 65536, 13, 100_000]);
  const stream = new ReadableStream<Uint8Array>({
    pull(ctl) { const p = parts.shift(); if (p) ctl.enqueue(p); else ctl.close(); },
  });
  const r = await fetch(`http://127.0.0.1:${port}/fetch`, {
    method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(5000),
  } as RequestInit);
  assert.is(r.status, 200);
  const f: Seen = await r.json();
  assert.equal([f.len, f.sha, f.te, f.cl, f.hasBody], [data.length, sha(data), 'chunked', null, true]);

  // Raw: chunk extensions, upper- and lower-case hex sizes, trailers.
  const body = pattern(5000, 22);
  const framed = chunked(pieces(body, [26, 255, 4096, 1]), { ext: ';a=b;c="d e"', upper: true, trailers: ['X-Trailer: 1', 'X-Other: two'] });
  const lower = chunked(pieces(body, [171, 3000]), { ext: ';x' });
  const c = await Raw.open(port);
  c.send(Buffer.concat([bytes(head('POST', '/raw', { 'Transfer-Encoding': 'chunked' })), framed,
    bytes(head('POST', '/lower', { 'transfer-encoding': 'Chunked' })), lower]));
  const [a, b] = await c.answers(2, 'raw chunked');
  for (const x of [a, b]) {
    assert.is(x.status, 200);
    assert.equal([json(x.body).len, json(x.body).sha], [body.length, sha(body)]);
  }
  assert.is(c.closed, false, 'the connection stays open after the trailers');

  // A chunked request and a Content-Length one, one byte per write: heads, size lines, CRLFs and
  // trailers split everywhere.
  const slow = await Raw.open(port);
  await slow.trickle(Buffer.concat([bytes(head('POST', '/trickle', { 'Transfer-Encoding': 'chunked' })),
    chunked(pieces(body.subarray(0, 300), [26, 255, 19]), { ext: ';a=b', upper: true, trailers: ['X-T: 1'] }),
    bytes(head('POST', '/trickle-cl', { 'Content-Length': 40 })), body.subarray(0, 40)]));
  const [t1, t2] = await slow.answers(2, 'byte by byte');
  assert.equal([t1.status, json(t1.body).len, json(t1.body).sha], [200, 300, sha(body.subarray(0, 300))]);
  assert.equal([t2.status, json(t2.body).len, json(t2.body).sha], [200, 40, sha(body.subarray(0, 40))]);
  c.destroy();
  slow.destroy();
  assert.equal(errors, []);
  await drained('chunked');
}));

// ---- one connection, many requests -----------------------------------------------------------------

test('pipelining: Content-Length, chunked and bodiless requests in one write are answered in order; a head split across writes', () => serving({}, async ({ port, errors }) => {
  const a = pattern(10_000, 31);
  const b = pattern(70_000, 32);
  const d = pattern(3, 33);
  const c = await Raw.open(port);
  c.send(Buffer.concat([
    bytes(head('POST', '/a?delay=60', { 'Content-Length': a.length })), a,            // answered last of all, yet first
    bytes(head('POST', '/b', { 'Transfer-Encoding': 'chunked' })), chunked(pieces(b, [30_000])),
    bytes(head('GET', '/c')),
    bytes(head('POST', '/d?delay=20', { 'Content-Length': d.length })), d,
    bytes(head('POST', '/e', { 'Content-Length': 0 })),
  ]));
  const replies = await c.answers(5, 'five pipelined requests');
  assert.equal(replies.map((r) => r.status), [200, 200, 200, 200, 200]);
  const seen: Seen[] = replies.map((r) => json(r.body));
  assert.equal(seen.map((s) => s.url), ['/a?delay=60', '/b', '/c', '/d?delay=20', '/e'], 'in the order sent');
  assert.equal(seen.map((s) => s.sha), [a, b, new Uint8Array(0), d, new Uint8Array(0)].map(sha));
  assert.equal(seen.map((s) => s.hasBody), [true, true, false, true, true]);

  // A head in pieces, its body after it: the parts meet.
  c.send('POST /split HTTP/1.1\r\nHo');
  await tick(20);
  c.send('st: x\r\nContent-Len');
  await tick(20);
  c.send('gth: 4\r\n\r');
  await tick(20);
  c.send('\nab');
  await tick(20);
  c.send('cd');
  const split = (await c.answers(6, 'the split head'))[5];
  assert.equal([split.status, json(split.body).url, json(split.body).sha], [200, '/split', sha(bytes('abcd'))]);
  c.destroy();
  assert.equal(errors, []);
}));

test('pipelining: requests Node holds back (its socket paused while answers queue) are read once it resumes', async () => {
  let paused = 0;
  await serving({
    handler: async (req, res) => {
      if (req.url === '/slow') {
        req.socket.on('pause', () => { paused++; });
        await tick(200);
        return void res.end('slow');
      }
      const b = await readBody(mm, req);
      const s = sglSha(b);
      b.free();
      res.end(`${req.url} ${s} ${'x'.repeat(4000)}`);   // forty of these pass the socket's highWaterMark
    },
  }, async ({ port, errors }) => {
    const c = await Raw.open(port);
    c.send(head('GET', '/slow'));
    const sent: string[] = [];
    for (let batch = 0, k = 0; batch < 4; batch++) {
      const out: Uint8Array[] = [];
      for (let i = 0; i < 10; i++, k++) {
        const body = pattern(100 + k, k);
        sent.push(`/p${k} ${sha(body)}`);
        out.push(k % 2 ? bytes(head('POST', `/p${k}`, { 'Content-Length': body.length })) : bytes(head('POST', `/p${k}`, { 'Transfer-Encoding': 'chunked' })),
          k % 2 ? body : chunked(pieces(body, [50])));
      }
      c.send(Buffer.concat(out));
      await tick(30);
    }
    const replies = await c.answers(41, 'forty-one pipelined requests');
    assert.ok(paused > 0, 'Node paused the socket (else this test tests nothing)');
    assert.equal(replies.slice(1).map((r) => r.body.toString('latin1').split(' ').slice(0, 2).join(' ')), sent);
    assert.equal(errors, []);
    c.destroy();
  });
});

test('pipelining: requests whose bodies are left to Node (filter) while Node holds the socket back', () => {
  // A filtered head can make Node pause the socket (answers queued past the highWaterMark); the
  // body's bytes must then wait too, or Node's socketOnData asserts and the process dies. In a
  // child process, so that such a death fails the test rather than the suite.
  const script = fileURLToPath(new URL('./fixtures/wire-flood.ts', import.meta.url));
  return new Promise<void>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', script], { timeout: 10_000 }, (err, stdout, stderr) => {
      try {
        assert.ok(!err, `the server process failed: ${stderr.split('\n').filter((l) => /Error|at /.test(l)).slice(0, 4).join(' / ') || String(err)}`);
        const out = JSON.parse(stdout) as { statuses: string[]; bodies: string[] };
        assert.is(out.statuses.length, 41);
        assert.ok(out.statuses.every((s) => s === 'HTTP/1.1 200'), out.statuses.join(','));
        assert.equal(out.bodies, Array.from({ length: 40 }, (_, k) => `/node${k} 5`));
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
});

test('keep-alive: forty requests in turn, Content-Length and chunked, over one connection', () => serving({}, async ({ port, errors, connections }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 40; i++) {
      const data = pattern([0, 1, 1000, 70_000, 300_000][i % 5], i);
      const a = await request(port, 'POST', `/ka${i}`, data, { agent, chunked: i % 2 === 1 });
      assert.is(a.status, 200);
      assert.is(json(a.body).sha, sha(data), `request ${i}`);
    }
    assert.is(connections(), 1, 'one connection served them all');
    assert.equal(errors, []);
    await drained('keep-alive');
  } finally {
    agent.destroy();
  }
}));

test('concurrent connections: eight large uploads at once, Content-Length and chunked, each body whole', () => serving({}, async ({ port, errors }) => {
  const datas = Array.from({ length: 8 }, (_, i) => pattern((2 << 20) + i * 4099, 40 + i));
  const answers = await Promise.all(datas.map((d, i) => request(port, 'POST', `/up${i}`, d, { chunked: i % 2 === 0 })));
  assert.equal(answers.map((a) => json(a.body).sha), datas.map(sha));
  assert.equal(errors, []);
}));

// ---- limits -------------------------------------------------------------------------------------

// Requests on one keep-alive connection: [path, bytes, chunked, expected status].
async function limitCases(port: number, connections: () => number, cases: [string, number, boolean, number][]): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const [path, n, isChunked, status] of cases) {
      const data = pattern(n, n);
      const a = await request(port, 'POST', path, data, { agent, chunked: isChunked });
      const what = `${n} bytes${isChunked ? ', chunked' : ''}`;
      assert.is(a.status, status, what);
      if (status === 200) assert.is(json(a.body).sha, sha(data), what);
      else assert.is(json(a.body).code, 'ERR_MEMSYS_BODY_TOO_LARGE', what);
      await drained(what);
    }
    assert.is(connections(), 1, 'the connection outlived every 413');
  } finally {
    agent.destroy();
  }
}

test("limits: the server's limit, by Content-Length before a byte is read and by the bytes of a chunked body; exactly the limit passes; the connection is reused", () => serving({ take: { limit: 1000 } }, async ({ port, errors, connections }) => {
  await limitCases(port, connections, [
    ['/over', 1001, false, 413], ['/ok', 1000, false, 200], ['/over', 1001, true, 413], ['/ok', 1000, true, 200],
    ['/big', 3 << 20, false, 413], ['/big', 3 << 20, true, 413], ['/after', 10, false, 200],
  ]);
  const [declared, counted] = errors as BodyError[];
  assert.instance(declared, BodyError);
  assert.equal([declared.code, declared.type, declared.status, declared.limit, declared.length, declared.received],
    ['ERR_MEMSYS_BODY_TOO_LARGE', 'entity.too.large', 413, 1000, 1001, 0], 'refused on its Content-Length');
  assert.equal([counted.code, counted.length], ['ERR_MEMSYS_BODY_TOO_LARGE', undefined]);
  assert.is(counted.received, 0, 'refused at the size line of its one chunk of 1001 bytes');
  assert.match(counted.message, /0 bytes arrived, then a chunk of 1001 was declared/);
  assert.is(errors.length, 4);
}));

test('limits: a chunk declared past the limit is refused at its size line; the error counts the bytes that arrived, not the declared size', () => serving({ take: { limit: 1000 } }, async ({ port, errors }) => {
  const c = await Raw.open(port);
  c.send(`${head('POST', '/huge-chunk', { 'Transfer-Encoding': 'chunked' })}a\r\n0123456789\r\nffffffff\r\nabc`);
  assert.is((await c.answer('a 413')).status, 413);
  c.destroy();
  const [e] = errors as BodyError[];
  assert.equal([e.code, e.limit, e.length, e.received], ['ERR_MEMSYS_BODY_TOO_LARGE', 1000, undefined, 10]);
  assert.match(e.message, /larger than its limit of 1000 bytes: 10 bytes arrived, then a chunk of 4294967295 was declared/);
  await drained('a huge chunk');
}));

test("limits: readBody's lower limit, asked for while the socket's next read is already aimed into the body, still holds", () => serving({
  take: { limit: 8 << 20 },
  handler: async (req, res) => { await tick(150); return describe({ limit: 1000 })(req, res); },
}, async ({ port, errors }) => {
  const c = await Raw.open(port);
  // One chunk of 1500 bytes: 500 arrive with the head, the rest once the handler has asked.
  c.send(Buffer.concat([bytes(`${head('POST', '/late', { 'Transfer-Encoding': 'chunked' })}5dc\r\n`), pattern(500, 1)]));
  await tick(400);
  c.send(pattern(1000, 2));
  await tick(50);
  c.send('\r\n0\r\n\r\n');
  assert.is((await c.answer('the answer')).status, 413);
  c.destroy();
  const [e] = errors as BodyError[];
  assert.equal([e.code, e.limit], ['ERR_MEMSYS_BODY_TOO_LARGE', 1000]);
  await drained('a limit lowered late');
}));

test("limits: readBody's own limit, lower than the server's, applies (and exactly it passes)", () => serving({ take: { limit: 1 << 20 }, handler: describe({ limit: 1000 }) }, async ({ port, errors, connections }) => {
  await limitCases(port, connections, [
    ['/over', 1001, false, 413], ['/ok', 1000, false, 200], ['/over', 1001, true, 413], ['/ok', 1000, true, 200], ['/big', 2 << 20, true, 413],
  ]);
  assert.equal((errors as BodyError[]).map((e) => e.limit), [1000, 1000, 1000]);
}));

test('limits: a pool without room refuses the body (the pool error), holds nothing, and the connection goes on', async () => {
  const tight = new MMSA({ name: 'wire-tight', arenaSize: 4 << 20, env: {}, housekeeping: false, budget: { floor: 4 << 20, ceiling: 4 << 20 } });
  tight.init();
  const errors: unknown[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      const b = await readBody(tight, req, { limit: Infinity });
      res.end(sglSha(b));
      b.free();
    } catch (e) {
      errors.push(e);
      answerError(res, e);
    }
  });
  takeBodies(tight, server, { limit: Infinity });
  const port = await listen(server);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await request(port, 'POST', '/huge', pattern(6 << 20, 1), { agent, chunked: true });
    assert.is(a.status, 500);
    assert.is((errors[0] as { code?: string }).code, 'ERR_MEMSYS_BUDGET', String(errors[0]));
    for (let i = 0; i < 100 && inUse(tight) !== 0; i++) await tick(10);
    assert.is(inUse(tight), 0, 'what was taken before the budget refused went back');
    const data = pattern(100_000, 2);
    const b = await request(port, 'POST', '/after', data, { agent });
    assert.equal([b.status, b.body.toString()], [200, sha(data)]);
  } finally {
    agent.destroy();
    await closeServer(server);
    tight.terminate();
  }
});

// ---- framings left to Node ----------------------------------------------------------------------

const hostile: Record<string, string> = {
  'Content-Length with Transfer-Encoding': `${head('POST', '/h', { 'Content-Length': 5, 'Transfer-Encoding': 'chunked' })}5\r\nhello\r\n0\r\n\r\n`,
  'two Content-Lengths': `${head('POST', '/h', { 'Content-Length': 5, 'content-length': 5 })}hello`,
  'two Content-Lengths, no body': head('POST', '/h', { 'Content-Length': 0, 'content-length': 0 }),
  'Content-Length: abc': head('POST', '/h', { 'Content-Length': 'abc' }),
  'an obs-fold header': `POST /h HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello`,
  'Transfer-Encoding: gzip, chunked': `${head('POST', '/h', { 'Transfer-Encoding': 'gzip, chunked' })}5\r\nhello\r\n0\r\n\r\n`,
  'chunked in HTTP/1.0': `${head('POST', '/h', { 'Transfer-Encoding': 'chunked' }, 'HTTP/1.0')}5\r\nhello\r\n0\r\n\r\n`,
  'a space in a header name': `${head('POST', '/h', { 'Content-Length ': 5 })}hello`,
  'a head over twice maxHeaderSize': head('GET', '/h', { 'X-Big': 'a'.repeat(40_000) }),
};

test('framings not plain enough to take go to Node as they came, and Node answers them as it answers without takeBodies', async () => {
  // Each head reaches Node whole, with what follows it: the statuses (and Node's parse errors) are
  // those of a server that does not take bodies.
  const answers = async (take: boolean) => {
    const out: Record<string, number | string> = {};
    let reasons = new Map<number, string>();
    await serving({ take: take ? undefined : false, setup: (s) => { reasons = clientErrors(s); } }, async ({ port }) => {
      await Promise.all(Object.entries(hostile).map(async ([k, text]) => { out[k] = await answerTo(port, text, reasons); }));
    });
    return out;
  };
  const plainStatus = await answers(false);
  const takenStatus = await answers(true);
  // What Node itself says, so that a change in Node shows here rather than as a difference.
  assert.equal(Object.fromEntries(Object.entries(plainStatus).map(([k, v]) => [k, parseInt(String(v), 10)])), {
    'Content-Length with Transfer-Encoding': 400, 'two Content-Lengths': 400, 'two Content-Lengths, no body': 400,
    'Content-Length: abc': 400, 'an obs-fold header': 400, 'Transfer-Encoding: gzip, chunked': 200,
    'chunked in HTTP/1.0': 200, 'a space in a header name': 400, 'a head over twice maxHeaderSize': 431,
  });
  assert.equal(takenStatus, plainStatus);
});

test("an Upgrade request reaches the server's 'upgrade' listener with its socket and head; bytes go both ways through 'data' events", async () => {
  const upgrades: { url: string; head: string }[] = [];
  await serving({
    setup: (server) => server.on('upgrade', (req: IncomingMessage, socket: Socket, early: Buffer) => {
      upgrades.push({ url: req.url!, head: early.toString('latin1') });
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (c: Buffer) => socket.write(Buffer.from(c).reverse()));
      socket.on('end', () => socket.end());   // the server's side ends with the client's
    }),
  }, async ({ port }) => {
    const c = await Raw.open(port);
    c.send(`${head('GET', '/ws', { Connection: 'Upgrade', Upgrade: 'websocket' })}early`);
    assert.ok(await settles(() => c.text.includes('\r\n\r\n'), 5000), `no answer to the Upgrade after 5 s: ${JSON.stringify(c.text)}`);
    assert.match(c.text, /^HTTP\/1\.1 101 /);
    c.send('ping');
    assert.ok(await settles(() => c.text.endsWith('gnip'), 5000), `the upgraded socket echoes: ${JSON.stringify(c.text)}`);
    assert.equal(upgrades, [{ url: '/ws', head: 'early' }]);
    c.destroy();
  });
});

test('Expect: 100-continue gets its 100 Continue and the body is read; an unknown expectation gets Node\'s 417', () => serving({}, async ({ port }) => {
  // Node answers these itself only while the server has no 'checkContinue' / 'checkExpectation'
  // listener: takeBodies must not add one. curl sends this header for large uploads.
  const cont = await Raw.open(port);
  const other = await Raw.open(port);
  cont.send(head('POST', '/continue', { 'Content-Length': 5, Expect: '100-continue' }));
  other.send(`${head('POST', '/expect', { 'Content-Length': 5, Expect: 'x-unknown' })}hello`);
  const [gotContinue] = await Promise.all([
    settles(() => cont.text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 5000),
    other.answers(1, 'an unknown expectation').catch(() => []),   // its outcome is read below
  ]);
  const outcome: Record<string, unknown> = { continue: gotContinue, unknown: other.replies[0]?.status ?? 'none' };
  if (gotContinue) {
    cont.send('hello');
    const r = await cont.answer('the body after 100 Continue');
    outcome.body = json(r.body).sha === sha(bytes('hello'));
  }
  assert.equal(outcome, { continue: true, unknown: 417, body: true });
  cont.destroy();
  other.destroy();
}));

// ---- broken bodies, clients that go away -----------------------------------------------------------

test('a malformed chunked body: readBody rejects with a 400 BodyError, the answer goes out, the connection ends, nothing is held', async () => {
  // A chunk line with extensions over 16 KiB is refused whether it arrives in pieces or whole in one read.
  const chunkHead = head('POST', '/bad', { 'Transfer-Encoding': 'chunked' });
  const longLine = `5;${'a'.repeat(17_000)}\r\nhello\r\n0\r\n\r\n`;
  const cases: Record<string, (c: Raw) => Promise<void>> = {
    'a size that is not hex': async (c) => c.send(`${chunkHead}5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n`),
    'no CRLF after the chunk data': async (c) => c.send(`${chunkHead}5\r\nhelloXX\r\n0\r\n\r\n`),
    'a bare LF line ending': async (c) => c.send(`${chunkHead}5\nhello\r\n0\r\n\r\n`),
    'extensions over 16 KiB, in pieces': async (c) => {
      c.send(chunkHead + longLine.slice(0, 9000));
      await tick(30);
      c.send(longLine.slice(9000));
    },
    'extensions over 16 KiB, in one write': async (c) => c.send(chunkHead + longLine),
  };
  const outcomes: Record<string, unknown> = {};
  await serving({}, async ({ port, errors }) => {
    for (const [what, send] of Object.entries(cases)) {
      const c = await Raw.open(port);
      await send(c);
      await settles(() => c.replies.length > 0 || c.closed, 5000);
      const r = c.replies[0];
      const ended = await c.ends(2000);
      const e = errors.shift() as BodyError | undefined;
      outcomes[what] = {
        status: r?.status ?? 'none',
        code: r ? json(r.body).code ?? null : null,
        error: e ? [e instanceof BodyError, e.code, e.status, e.type] : null,
        ended,
      };
      c.destroy();
      await drained(what);
    }
  });
  const refused = () => ({ status: 400, code: 'ERR_MEMSYS_BODY', error: [true, 'ERR_MEMSYS_BODY', 400, 'request.size.invalid'], ended: true });
  assert.equal(outcomes, Object.fromEntries(Object.keys(cases).map((k) => [k, refused()])));
});

test("a client that goes away mid-body (Content-Length and chunked; read at once or later): readBody rejects, 'request.aborted', nothing held", () => serving({}, async ({ port, errors }) => {
  const cuts: [string, string | Uint8Array][] = [
    ['/cl', Buffer.concat([bytes(head('POST', '/cl', { 'Content-Length': 1 << 20 })), pattern(100_000, 1)])],
    ['/chunked', Buffer.concat([bytes(head('POST', '/chunked', { 'Transfer-Encoding': 'chunked' })), chunked([pattern(1000, 2)]).subarray(0, -5), bytes('10000\r\n'), pattern(30_000, 3)])],
    ['/cl?late=150', Buffer.concat([bytes(head('POST', '/cl?late=150', { 'Content-Length': 1 << 20 })), pattern(100_000, 4)])],
  ];
  for (const [path, text] of cuts) {
    const c = await Raw.open(port);
    c.send(text);
    await tick(50);
    c.destroy();
    await until(() => errors.length === 1, `${path}: readBody settled`, 3000);
    const e = errors.shift() as BodyError;
    assert.instance(e, BodyError, path);
    assert.equal([e.code, e.type, e.status], ['ERR_MEMSYS_BODY', 'request.aborted', 400], path);
    assert.ok(e.received > 0, `${path}: ${e.received} bytes had arrived`);
    await drained(path);
  }
  // The server goes on.
  const data = pattern(50_000, 5);
  assert.is(json((await request(port, 'POST', '/after', data)).body).sha, sha(data));
}));

// ---- bodies never read, read late, read twice --------------------------------------------------

test('a body no one reads is freed when its response closes, whether it had arrived or not; the next request on the connection is served', () => serving({
  handler: async (req, res) => {
    if (req.url === '/read') return describe()(req, res);
    res.end('not read');
  },
}, async ({ port, connections }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const [n, isChunked] of [[100, false], [3 << 20, false], [2 << 20, true], [0, false]] as const) {
      const a = await request(port, 'POST', '/ignore', pattern(n, 1), { agent, chunked: isChunked });
      assert.equal([a.status, a.body.toString()], [200, 'not read']);
      await drained(`${n} bytes not read`);
      const data = pattern(5000, n);
      const b = await request(port, 'POST', '/read', data, { agent });
      assert.is(json(b.body).sha, sha(data), `the request after ${n} bytes not read`);
      await drained(`after ${n} bytes not read`);
    }
    assert.is(connections(), 1);
  } finally {
    agent.destroy();
  }
}));

test('a handler that reads 50 ms late, after the whole body arrived, gets its bytes; a lower limit then still applies', async () => {
  await serving({}, async ({ port, errors }) => {
    for (const isChunked of [false, true]) {
      const data = pattern(200_000, 7);
      const a = await request(port, 'POST', '/x?late=50', data, { chunked: isChunked });
      assert.equal([a.status, json(a.body).sha], [200, sha(data)]);
      await drained(`late, chunked ${isChunked}`);
    }
    assert.equal(errors, []);
  });
  await serving({ handler: describe({ limit: 1000 }) }, async ({ port, errors }) => {
    const a = await request(port, 'POST', '/x?late=50', pattern(5000, 8));
    assert.is(a.status, 413);
    assert.equal([(errors[0] as BodyError).code, (errors[0] as BodyError).limit], ['ERR_MEMSYS_BODY_TOO_LARGE', 1000]);
  });
});

// How a call settles: 'an SGL', 'undefined', or the code it threw or rejected with.
async function outcomeOf(f: () => Promise<SGL>): Promise<string> {
  try {
    const b = await f();
    if (b instanceof SGL) b.free();
    return b instanceof SGL ? 'an SGL' : String(b);
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

test('readBody after the response closed fails with ERR_MEMSYS_STATE, whether the body had all arrived or not', async () => {
  // As on a server that does not take bodies: once the response closed, an unread body is gone.
  const outcomes: Record<string, string> = {};
  await serving({
    handler: async (req, res) => {
      res.end('answered');
      await new Promise((r) => res.once('close', r));
      outcomes[req.url!] = await outcomeOf(() => readBody(mm, req, { limit: 8 << 20 }));
    },
  }, async ({ port }) => {
    await request(port, 'POST', '/whole', pattern(100, 1));
    await request(port, 'POST', '/whole-chunked', pattern(100, 1), { chunked: true });
    await request(port, 'POST', '/arriving', pattern(4 << 20, 1));
    await until(() => Object.keys(outcomes).length === 3, 'the handlers settled');
  });
  assert.equal(outcomes, { '/whole': 'ERR_MEMSYS_STATE', '/whole-chunked': 'ERR_MEMSYS_STATE', '/arriving': 'ERR_MEMSYS_STATE' });
});

test('readBody twice on a request throws ERR_MEMSYS_STATE; with another MMSA, ERR_MEMSYS_INVALID_ARG (and the body is still there)', async () => {
  const other = new MMSA({ name: 'wire-other', arenaSize: 4 << 20, env: {}, housekeeping: false });
  other.init();
  try {
    await serving({
      handler: async (req, res) => {
        throwsCode(() => readBody(other, req), 'ERR_MEMSYS_INVALID_ARG', 'mm');
        const first = readBody(mm, req);
        throwsCode(() => readBody(mm, req), 'ERR_MEMSYS_STATE', 'already');
        const b = await first;
        throwsCode(() => readBody(mm, req), 'ERR_MEMSYS_STATE', 'already');
        res.end(sglSha(b));
        b.free();
      },
    }, async ({ port, errors }) => {
      for (const isChunked of [false, true]) {
        const data = pattern(10_000, 9);
        const a = await request(port, 'POST', '/twice', data, { chunked: isChunked });
        assert.equal([a.status, a.body.toString()], [200, sha(data)], String(errors[0]));
      }
      assert.equal(errors, []);
      assert.is(inUse(other), 0);
    });
  } finally {
    other.terminate();
  }
});

// ---- filter, timeouts --------------------------------------------------------------------------

test("filter: bodies it refuses are Node's to read (the request stream, or readBody through it); the others are taken; it sees method, target and lower-case headers", async () => {
  const calls: [string, string, Record<string, string>][] = [];
  await serving({
    take: { limit: 8 << 20, filter: (method, url, headers) => { calls.push([method, url, { ...headers }]); return !url.startsWith('/node'); } },
    handler: async (req, res) => {
      if (req.url === '/node/stream') {
        const parts: Buffer[] = [];
        for await (const c of req) parts.push(c as Buffer);
        const all = Buffer.concat(parts);
        return void res.end(JSON.stringify({ len: all.length, sha: sha(all), cl: req.headers['content-length'] ?? null }));
      }
      return describe()(req, res);
    },
  }, async ({ port, errors }) => {
    const data = pattern(300_000, 11);
    const headers = { 'X-Custom-Header': 'Mixed Case Value' };
    for (const isChunked of [false, true]) {
      const s = await request(port, 'POST', '/node/stream', data, { chunked: isChunked, headers });
      assert.equal([s.status, json(s.body).len, json(s.body).sha, json(s.body).cl], [200, data.length, sha(data), isChunked ? null : String(data.length)], 'read by for await');
      const r = await request(port, 'PUT', '/node/readBody', data, { chunked: isChunked, headers });
      assert.equal([r.status, json(r.body).sha], [200, sha(data)], 'readBody through Node');
      const t = await request(port, 'POST', '/taken', data, { chunked: isChunked, headers });
      assert.equal([t.status, json(t.body).sha], [200, sha(data)], 'taken');
    }
    await request(port, 'GET', '/no-body');
    assert.equal(calls.map(([m, u]) => `${m} ${u}`), ['POST /node/stream', 'PUT /node/readBody', 'POST /taken', 'POST /node/stream', 'PUT /node/readBody', 'POST /taken'],
      'called once per request with a body, not for a GET without one');
    for (const [, , h] of calls) {
      assert.is(h['x-custom-header'], 'Mixed Case Value');
      assert.is(h['content-type'], 'application/octet-stream');
      assert.ok(Object.keys(h).every((k) => k === k.toLowerCase()), Object.keys(h).join());
    }
    assert.is(calls[0][2]['content-length'], String(data.length));
    assert.is(calls[3][2]['transfer-encoding'], 'chunked');
    assert.equal(errors, []);
  });
});

test('headersTimeout: a head that stops half-way gets a 408 and the connection closes', () => serving({ setup: (s) => { s.headersTimeout = 300; } }, async ({ port }) => {
  const c = await Raw.open(port);
  c.send('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Le');
  const r = await c.answer('a 408 within 5 s');
  assert.is(r.status, 408);
  assert.ok(await c.ends(3000), 'the connection closes');
  c.destroy();
}));

test('requestTimeout: a body that stops half-way: readBody rejects, the socket is closed, nothing held', () => serving({ setup: (s) => { s.requestTimeout = 500; } }, async ({ port, errors }) => {
  const c = await Raw.open(port);
  c.send(Buffer.concat([bytes(head('POST', '/slow', { 'Content-Length': 1 << 20 })), pattern(100_000, 1)]));
  await until(() => errors.length > 0, 'readBody rejected within 3 s', 3000);
  const e = errors[0] as BodyError;
  assert.equal([e.code, e.type, e.status], ['ERR_MEMSYS_BODY', 'request.aborted', 400]);
  assert.match(e.message, /requestTimeout of 500 ms/);
  assert.ok(await c.ends(2000), 'the socket is closed');
  await drained('requestTimeout');
  c.destroy();
}));

// ---- Content-Encoding ---------------------------------------------------------------------------

test('Content-Encoding: gzip, deflate and br bodies are decoded under the limit, taken or read through Node; others (and any, with inflate: false) are a 415; a bomb is a 413, corrupt data a 400', async () => {
  const data = pattern(300_000, 9);
  const decoding: Handler = (req, res) => describe({ limit: 1 << 20, inflate: !req.url!.startsWith('/raw') })(req, res);
  for (const take of [false, { limit: 8 << 20 }] as const) {
    const what = take ? 'taken' : 'read through Node';
    await serving({ take, handler: decoding }, async ({ port, errors }) => {
      const encoded: [string, Buffer][] = [['gzip', zlib.gzipSync(data)], ['x-gzip', zlib.gzipSync(data)], ['deflate', zlib.deflateSync(data)], ['br', zlib.brotliCompressSync(data)], ['GZip', zlib.gzipSync(data)]];
      for (const [enc, body] of encoded) {
        for (const isChunked of [false, true]) {
          const a = await request(port, 'POST', '/in', body, { chunked: isChunked, headers: { 'content-encoding': enc } });
          assert.equal([a.status, json(a.body).len, json(a.body).sha], [200, data.length, sha(data)], `${what}: ${enc}, chunked ${isChunked}`);
        }
      }
      const id = await request(port, 'POST', '/in', data, { headers: { 'content-encoding': 'identity' } });
      assert.equal([id.status, json(id.body).sha], [200, sha(data)], `${what}: identity is the bytes as sent`);
      for (const [path, enc, body] of [['/in', 'compress', data], ['/in', 'gzip, br', zlib.brotliCompressSync(zlib.gzipSync(data))], ['/raw', 'gzip', zlib.gzipSync(data)]] as const) {
        const r = await request(port, 'POST', path, body, { headers: { 'content-encoding': enc } });
        assert.equal([r.status, json(r.body).code, json(r.body).type], [415, 'ERR_MEMSYS_BODY_ENCODING', 'encoding.unsupported'], `${what}: ${path} ${enc}`);
        assert.match(json(r.body).message, new RegExp(`Content-Encoding "${enc}"`));
      }
      const blank = await request(port, 'POST', '/in', data, { headers: { 'content-encoding': '' } });
      assert.equal([blank.status, json(blank.body).sha], [200, sha(data)], `${what}: an empty Content-Encoding is identity`);
      // 2 MB of empty stored blocks: nothing decoded, the encoded bytes alone pass the limit.
      const empty = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]), ...Array<Buffer>(400_000).fill(Buffer.from([0, 0, 0, 0xff, 0xff])), Buffer.from([3, 0]), Buffer.alloc(8)]);
      for (const isChunked of [false, true]) {
        const e = await request(port, 'POST', '/in', empty, { chunked: isChunked, headers: { 'content-encoding': 'gzip' } });
        assert.equal([e.status, json(e.body).code], [413, 'ERR_MEMSYS_BODY_TOO_LARGE'], `${what}: encoded bytes past the limit, chunked ${isChunked}`);
      }
      const bomb = await request(port, 'POST', '/in', zlib.gzipSync(Buffer.alloc(8 << 20)), { headers: { 'content-encoding': 'gzip' } });
      assert.equal([bomb.status, json(bomb.body).code], [413, 'ERR_MEMSYS_BODY_TOO_LARGE'], `${what}: a body that decodes past the limit`);
      assert.match(json(bomb.body).message, /once decoded \(gzip\)/);
      const bad = await request(port, 'POST', '/in', Buffer.concat([zlib.gzipSync(data).subarray(0, 1000), pattern(5000, 3)]), { headers: { 'content-encoding': 'gzip' } });
      assert.equal([bad.status, json(bad.body).code, json(bad.body).type], [400, 'ERR_MEMSYS_BODY', 'encoding.invalid'], `${what}: corrupt gzip`);
      assert.is(errors.length, 7);
      await drained(`Content-Encoding, ${what}`);
    });
  }
});

// ---- frameworks ---------------------------------------------------------------------------------

test('Express 5: expressBody over taken bodies gives req.body as an SGL, freed when the response closes; 413 through the error handler', async () => {
  const app = express();
  app.set('env', 'test');
  const kinds: boolean[] = [];
  app.post('/echo', expressBody(mm, { limit: 2 << 20 }), (req, res) => {
    kinds.push(req.body instanceof SGL);
    void sendSGL(res, req.body as SGL);
  });
  const server = http.createServer(app);
  takeBodies(mm, server, { limit: 8 << 20 });
  const port = await listen(server);
  try {
    for (const isChunked of [false, true]) {
      const data = pattern(1 << 20, 12);
      const a = await request(port, 'POST', '/echo', data, { chunked: isChunked });
      assert.is(a.status, 200);
      assert.ok(a.body.equals(data));
      await drained('express echo');
    }
    const big = await request(port, 'POST', '/echo', pattern(3 << 20, 1));
    assert.is(big.status, 413);
    assert.match(big.body.toString(), /larger than its limit of 2097152 bytes/);
    assert.equal(kinds, [true, true]);
    await drained('express 413');
  } finally {
    await closeServer(server);
  }
});

test('Express 5: expressBody passes a request through when a middleware before it read the taken body, as body-parser skips a read body', async () => {
  const app = express();
  app.set('env', 'test');
  app.post('/first', async (req, _res, next) => {
    const b = await readBody(mm, req);
    (req as { mine?: string }).mine = sglSha(b);
    b.free();
    next();
  }, expressBody(mm, { type: '*/*' }), (req, res) => {
    res.json({ body: req.body === undefined ? 'untouched' : typeof req.body, mine: (req as { mine?: string }).mine });
  });
  const server = http.createServer(app);
  takeBodies(mm, server);
  const port = await listen(server);
  try {
    const data = pattern(100_000, 13);
    const a = await request(port, 'POST', '/first', data);
    assert.equal([a.status, json(a.body)], [200, { body: 'untouched', mine: sha(data) }]);
    await drained('express after another reader');
  } finally {
    await closeServer(server);
  }
});

test("other readers of a taken body get its bytes through the request stream: express.json(), express.raw(), for await; over the takeBodies limit, its 413", async () => {
  const app = express();
  app.set('env', 'test');
  app.post('/json', express.json(), (req, res) => { res.json({ body: req.body as unknown }); });
  app.post('/raw', express.raw({ limit: '4mb' }), (req, res) => { res.json({ len: (req.body as Buffer).length, sha: sha(req.body as Buffer) }); });
  app.post('/stream', async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    res.json({ len: Buffer.concat(parts).length, sha: sha(Buffer.concat(parts)) });
  });
  const server = http.createServer(app);
  takeBodies(mm, server, { limit: 2 << 20 });
  const port = await listen(server);
  try {
    for (const isChunked of [false, true]) {
      const j = await request(port, 'POST', '/json', bytes('{"a":1}'), { chunked: isChunked, type: 'application/json' });
      assert.equal([j.status, json(j.body)], [200, { body: { a: 1 } }], `express.json(), chunked ${isChunked}`);
      const data = pattern(1_500_000, 5);
      const r = await request(port, 'POST', '/raw', data, { chunked: isChunked });
      assert.equal([r.status, json(r.body)], [200, { len: data.length, sha: sha(data) }], `express.raw(), chunked ${isChunked}`);
      const s = await request(port, 'POST', '/stream', data, { chunked: isChunked });
      assert.equal([s.status, json(s.body)], [200, { len: data.length, sha: sha(data) }], `for await, chunked ${isChunked}`);
      const big = await request(port, 'POST', '/raw', pattern(3 << 20, 2), { chunked: isChunked });
      assert.is(big.status, 413, `over takeBodies' limit through express.raw(), chunked ${isChunked}`);
      await drained(`other readers, chunked ${isChunked}`);
    }
  } finally {
    await closeServer(server);
  }
});

test("a refused taken body read through the request stream: a reader with an 'error' listener gets the error and no 'end'; one without sees its request close, never a complete body; the connection goes on; expressBody before express.json() leaves it skipped", async () => {
  const events: string[] = [];
  const app = express();
  app.set('env', 'test');
  app.post('/listens', (req, res) => {
    req.on('data', () => {});
    req.on('end', () => { events.push('end'); res.end('complete'); });
    req.on('error', (e) => { events.push(`error ${(e as BodyError).status}`); setImmediate(() => { res.statusCode = 413; res.end('refused'); }); });
  });
  app.post('/deaf', (req, res) => {
    req.on('data', () => {});
    req.on('end', () => { events.push('deaf end'); res.end('complete'); });
    req.on('close', () => { if (!req.complete || req.readableEnded) return; events.push('deaf closed'); res.statusCode = 400; res.end('no body'); });
  });
  app.post('/piped', (req, res) => { req.pipe(new PassThrough()).resume(); res.end('ok'); });
  app.post('/both', expressBody(mm, { type: '*/*' }), express.json({ type: '*/*' }), (req, res) => { res.json({ sgl: req.body instanceof SGL }); });
  const server = http.createServer(app);
  takeBodies(mm, server, { limit: 1000 });
  const port = await listen(server);
  try {
    for (const isChunked of [false, true]) {
      const a = await request(port, 'POST', '/listens', pattern(5000, 1), { chunked: isChunked });
      assert.equal([a.status, a.body.toString()], [413, 'refused'], `chunked ${isChunked}`);
      await tick(50);
      assert.equal(events.splice(0), ['error 413'], "the error, and no 'end' after it");
      const d = await request(port, 'POST', '/deaf', pattern(5000, 1), { chunked: isChunked });
      assert.equal([d.status, d.body.toString()], [400, 'no body'], "a reader without an 'error' listener sees its request close, not a complete body");
      assert.equal(events.splice(0), ['deaf closed']);
      // A reader that pipes the request and answers at once: the connection carries the next one.
      const c = await Raw.open(port);
      const body = pattern(5000, 2);
      c.send(Buffer.concat([bytes(head('POST', '/piped', { 'Content-Length': body.length })), body, bytes(head('POST', '/piped', { 'Content-Length': 3 })), bytes('abc')]));
      assert.equal((await c.answers(2, 'both piped requests answered on one connection')).map((r) => r.status), [200, 200]);
      c.destroy();
      const b = await request(port, 'POST', '/both', bytes('{"a":1}'), { chunked: isChunked, type: 'application/json' });
      assert.equal([b.status, json(b.body)], [200, { sgl: true }], 'express.json() skips a body expressBody took, as a read one');
      await drained(`refused through the stream, chunked ${isChunked}`);
    }
  } finally {
    await closeServer(server);
  }
});

// A Fastify app on a server whose bodies are taken (limit 8 MiB), with fastifyBody registered.
async function takenFastify() {
  const app = Fastify({
    serverFactory: (handler) => {
      const s = http.createServer(handler);
      takeBodies(mm, s, { limit: 8 << 20 });
      return s;
    },
  });
  await app.register(fastifyBody(mm));
  return app;
}

async function listenFastify(app: Awaited<ReturnType<typeof takenFastify>>): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}

// What a route answers of the SGL it was given.
const sglSummary = (body: unknown) => ({ sgl: body instanceof SGL, len: (body as SGL).len, sha: sglSha(body as SGL) });

test("Fastify 5 with taken bodies: its own JSON and text parsers get the bytes; fastifyBody reads a body a preParsing hook replaced", async () => {
  const app = await takenFastify();
  app.post('/json', (req) => ({ body: req.body }));
  app.post('/sgl', (req) => sglSummary(req.body));
  app.post('/passed', {
    preParsing: (_req, _reply, payload, done) => { const p = new PassThrough(); payload.pipe(p); done(null, p); },
  }, (req) => sglSummary(req.body));
  app.post('/json-piped', {
    preParsing: (_req, _reply, payload, done) => done(null, payload.pipe(new PassThrough())),
  }, (req) => ({ body: req.body }));
  app.post('/gunzipped', {
    preParsing: (_req, _reply, payload, done) => done(null, payload.pipe(zlib.createGunzip())),
  }, (req) => ({ len: (req.body as SGL).len }));
  const port = await listenFastify(app);
  try {
    for (const isChunked of [false, true]) {
      const j = await request(port, 'POST', '/json', bytes('{"a":1}'), { chunked: isChunked, type: 'application/json' });
      assert.equal([j.status, json(j.body)], [200, { body: { a: 1 } }], `Fastify's JSON parser, chunked ${isChunked}`);
      const t = await request(port, 'POST', '/json', bytes('plain words'), { chunked: isChunked, type: 'text/plain' });
      assert.equal([t.status, json(t.body)], [200, { body: 'plain words' }], `Fastify's text parser, chunked ${isChunked}`);
      const data = pattern(300_000, 7);
      const p = await request(port, 'POST', '/passed', data, { chunked: isChunked });
      assert.equal([p.status, json(p.body)], [200, { sgl: true, len: data.length, sha: sha(data) }], `preParsing PassThrough, chunked ${isChunked}`);
      const corrupt = await request(port, 'POST', '/gunzipped', Buffer.concat([zlib.gzipSync(data).subarray(0, 500), pattern(3000, 4)]), { chunked: isChunked });
      assert.is(corrupt.status, 400, `a preParsing decoder's error is the client's fault, as Fastify answers it, chunked ${isChunked}`);
      const big = await request(port, 'POST', '/passed', pattern(2 << 20, 3), { chunked: isChunked });
      assert.is(big.status, 413, `preParsing PassThrough over the bodyLimit, chunked ${isChunked}`);
      const over = await request(port, 'POST', '/json-piped', pattern(9 << 20, 5), { chunked: isChunked, type: 'application/json' });
      assert.is(over.status, 413, `over takeBodies' limit, through a preParsing pipe into Fastify's JSON parser, chunked ${isChunked}`);
      await drained(`fastify other readers, chunked ${isChunked}`);
    }
  } finally {
    await app.close();
  }
});

test("Fastify 5: fastifyBody on a server from serverFactory whose bodies are taken: SGLs under the route's bodyLimit, freed", async () => {
  const app = await takenFastify();
  app.post('/sum', { bodyLimit: 2 << 20 }, (req) => sglSummary(req.body));
  const port = await listenFastify(app);
  try {
    for (const isChunked of [false, true]) {
      const data = pattern(1_500_000, 13);
      const a = await request(port, 'POST', '/sum', data, { chunked: isChunked });
      assert.is(a.status, 200);
      assert.equal(json(a.body), { sgl: true, len: data.length, sha: sha(data) });
      await drained('fastify');
    }
    const big = await request(port, 'POST', '/sum', pattern(3 << 20, 1));
    assert.is(big.status, 413);
    assert.is(json(big.body).code, 'ERR_MEMSYS_BODY_TOO_LARGE');
    await drained('fastify 413');
  } finally {
    await app.close();
  }
});

// ---- arguments, the server's connections ---------------------------------------------------------

// What takeBodies changes on a server.
function wiring(s: http.Server) {
  return {
    connection: s.listeners('connection'), request: s.listeners('request'),
    checkContinue: s.listenerCount('checkContinue'), checkExpectation: s.listenerCount('checkExpectation'),
    pauseOnConnect: (s as { pauseOnConnect?: boolean }).pauseOnConnect,
  };
}

// A handler that reads the request stream itself.
const streamLength: Handler = async (req, res) => {
  let n = 0;
  for await (const c of req) n += (c as Buffer).length;
  res.end(String(n));
};

test('takeBodies: bad arguments are ERR_MEMSYS_INVALID_ARG, a second call ERR_MEMSYS_STATE, and neither changes the server', async () => {
  const tls = https.createServer();
  const h2 = http2.createServer();
  throwsCode(() => takeBodies({} as MMSA, http.createServer()), 'ERR_MEMSYS_INVALID_ARG', 'mm', 'must be an MMSA');
  throwsCode(() => takeBodies(mm, tls as unknown as http.Server), 'ERR_MEMSYS_INVALID_ARG', 'server', 'node:http Server');
  throwsCode(() => takeBodies(mm, h2 as unknown as http.Server), 'ERR_MEMSYS_INVALID_ARG', 'server', 'node:http Server');
  throwsCode(() => takeBodies(mm, {} as http.Server), 'ERR_MEMSYS_INVALID_ARG', 'server');
  throwsCode(() => takeBodies(mm, null as unknown as http.Server), 'ERR_MEMSYS_INVALID_ARG', 'server');
  assert.is(tls.listenerCount('checkContinue') + h2.listenerCount('checkContinue'), 0);

  // A real server: failed calls leave it as Node made it (Node reads the bodies).
  await serving({ take: false, handler: streamLength }, async ({ server, port }) => {
    const before = wiring(server);
    throwsCode(() => takeBodies(mm, server, { filter: 'all' as never }), 'ERR_MEMSYS_INVALID_ARG', 'option filter', 'function');
    throwsCode(() => takeBodies(mm, server, { limit: -1 }), 'ERR_MEMSYS_INVALID_ARG', 'option limit');
    throwsCode(() => takeBodies(mm, server, { sbufSize: 3 }), 'ERR_MEMSYS_INVALID_SIZE');
    throwsCode(() => takeBodies(mm, server, null as never), 'ERR_MEMSYS_INVALID_ARG', 'options');
    assert.equal(wiring(server), before);
    const a = await request(port, 'POST', '/x', pattern(1000, 1));
    assert.equal([a.status, a.body.toString()], [200, '1000'], 'Node read the body');
  });

  // Taken (after listen), then a second call: refused, the wiring as the first call left it.
  await serving({ take: false, handler: describe() }, async ({ server, port }) => {
    takeBodies(mm, server);
    const once = wiring(server);
    throwsCode(() => takeBodies(mm, server), 'ERR_MEMSYS_STATE', 'taken already');
    throwsCode(() => takeBodies(mm, server, { filter: () => false }), 'ERR_MEMSYS_STATE');
    assert.equal(wiring(server), once);
    const data = pattern(1000, 2);
    const a = await request(port, 'POST', '/x', data);
    assert.equal([a.status, json(a.body).sha], [200, sha(data)]);
  });
});

test("the server's connections: getConnections counts them, close() completes once they end, and a 'connection' listener's socket closes with its connection", async () => {
  const sockets: Socket[] = [];
  let closes = 0;
  const server = http.createServer((req, res) => { describe()(req, res).catch((e) => answerError(res, e)); });
  server.on('connection', (s: Socket) => { sockets.push(s); s.on('close', () => { closes++; }); });
  takeBodies(mm, server);
  const port = await listen(server);
  const count = () => new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  const clients = await Promise.all([0, 1, 2].map(() => Raw.open(port)));
  for (const c of clients) c.send(`${head('POST', '/', { 'Content-Length': 3 })}abc`);
  for (const c of clients) assert.is((await c.answer('one request each')).status, 200);
  assert.is(await count(), 3);
  assert.is(sockets.length, 3);

  clients[0].destroy();
  await until(() => closes === 1, "the listener's socket emits 'close' when its connection ends");
  assert.is(await count(), 2);

  // A request half-way through its body: close() waits for it.
  clients[1].send(`${head('POST', '/half', { 'Content-Length': 10 })}01234`);
  await tick(50);
  let closed = false;
  server.close(() => { closed = true; });
  assert.ok(await clients[2].ends(2000), 'close() ends the idle connection');
  await until(() => closes === 2, 'and its socket closes');
  await tick(200);
  assert.is(closed, false, 'close() waits for the connection in the middle of a request');
  clients[1].send('56789');
  const r = (await clients[1].answers(2, 'the request close() waited for'))[1];
  assert.equal([r.status, json(r.body).sha], [200, sha(bytes('0123456789'))]);
  clients[1].destroy();
  await until(() => closed, "close()'s callback once every connection ended", 3000);
  assert.is(closes, 3);
  assert.is(await count(), 0);
  await drained('connections');
});

test("a 'connection' listener's socket stands for the connection: its remoteAddress is there, and destroy() ends the connection", async () => {
  // As without takeBodies: the listener sees the remote address, and a connection it destroys (as
  // an IP block list does) ends without being served.
  const outcome = async (take: boolean) => {
    const addresses: unknown[] = [];
    let result: unknown;
    await serving({
      take: take ? undefined : false,
      setup: (s) => s.on('connection', (sock: Socket) => {
        addresses.push(sock.remoteAddress);
        if (addresses.length === 1) sock.destroy();   // the first connection is refused
      }),
    }, async ({ port }) => {
      const refused = await answerTo(port, `${head('POST', '/', { 'Content-Length': 3 })}abc`);
      const next = await answerTo(port, `${head('POST', '/', { 'Content-Length': 3 })}abc`);
      result = { addresses, refused, next };
    });
    return result;
  };
  const node = await outcome(false);
  assert.equal(node, { addresses: ['127.0.0.1', '127.0.0.1'], refused: 'closed', next: 200 }, 'Node itself');
  assert.equal(await outcome(true), node);
});

test("a 'request' listener prepended after takeBodies sees the client's Content-Length and gets the body from readBody", async () => {
  // A listener that runs before every other still finds the request's own headers and its body.
  let seen = '';
  await serving({ handler: async () => {} }, async ({ server, port }) => {
    server.prependListener('request', async (req: IncomingMessage, res: ServerResponse) => {
      const cl = req.headers['content-length'];
      const b = await readBody(mm, req);
      seen = `${cl} ${b.len}`;
      b.free();
      res.end();
    });
    await request(port, 'POST', '/', pattern(1000, 1));
  });
  assert.is(seen, '1000 1000');
});

// ---- echo ---------------------------------------------------------------------------------------

test('an echo handler sends the taken SGL back with sendSGL: the bytes round-trip, by Content-Length and chunked', () => serving({
  handler: async (req, res) => { void sendSGL(res, await readBody(mm, req, { limit: 8 << 20 })); },
}, async ({ port, errors }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const n of [0, 1, 100_000, 3 << 20]) {
      for (const isChunked of [false, true]) {
        const data = pattern(n, n + 5);
        const a = await request(port, 'POST', '/echo', data, { agent, chunked: isChunked });
        assert.is(a.status, 200);
        assert.is(a.headers['content-length'], String(n));
        assert.ok(a.body.equals(data), `${n} bytes${isChunked ? ', chunked' : ''} echoed`);
        await drained(`echo ${n}`);
      }
    }
    assert.equal(errors, []);
  } finally {
    agent.destroy();
  }
}));

test.run();
