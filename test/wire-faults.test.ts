// takeBodies() when things go wrong: clients that leave with bodies unread, a `filter` that throws,
// chunked framing and heads that Node's parser refuses (each compared with a server that does not
// take bodies), servers with the insecure parser, timeouts with a response in flight, with a
// 'clientError' listener (and reads that land after one) and while Node holds the socket back,
// what a 'connection' listener does with its socket, a socket handed in with bytes already read,
// bodies no one reads yet, which must not hold more than the read-ahead (also when the pool
// refuses one), and server.close(). Every case checks what the client got and that the pool holds
// nothing afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { MMSA, readBody, takeBodies } from '../src/node/index.js';
import { closeServer, inUse, listen, pattern, request, sglSha, sha, throwsCode, tick, until } from './helpers.js';
import { Raw, answerError, answerTo, bytes, describe, drained, head, json, mm, serving, settles } from './wire-client.js';

// Bytes the pool has handed out.
function heldBytes(): number {
  return mm.stats().classes.reduce((n, c) => n + c.inUse * c.size, 0);
}

// The largest heldBytes() seen, sampled every 5 ms until `p` settles.
async function peakWhile(p: Promise<unknown>): Promise<number> {
  let peak = 0;
  let done = false;
  void p.finally(() => { done = true; }).catch(() => {});
  while (!done) {
    peak = Math.max(peak, heldBytes());
    await tick(5);
  }
  return peak;
}

// Errors thrown out of libuv callbacks (a server process would die of them).
async function catchingUncaught<T>(run: (uncaught: unknown[]) => Promise<T>): Promise<T> {
  const uncaught: unknown[] = [];
  const catcher = (e: unknown) => { uncaught.push(e); };
  process.prependListener('uncaughtException', catcher);
  try {
    return await run(uncaught);
  } finally {
    process.removeListener('uncaughtException', catcher);
  }
}

// ---- clients that leave ----------------------------------------------------------------------------

test('a body that arrived whole is freed when the client leaves before its response ends, alone or with pipelined ones', () => serving({
  handler: async (_req, res) => {
    await tick(300);   // answers late, never reading the body
    res.end('late');
  },
}, async ({ port }) => {
  const one = await Raw.open(port);
  one.send(`${head('POST', '/one', { 'Content-Length': 1000 })}${'a'.repeat(1000)}`);
  await until(() => inUse(mm) > 0, 'the body was taken');
  await tick(30);
  one.destroy();
  await drained('one body, whole, the client gone');

  const three = await Raw.open(port);
  three.send([1, 2, 3].map((i) => `${head('POST', `/p${i}`, { 'Content-Length': 5000 })}${'b'.repeat(5000)}`).join(''));
  await tick(50);
  three.send(head('POST', '/p4', { 'Transfer-Encoding': 'chunked' }) + '5\r\nhello\r\n0\r\n\r\n');
  await tick(50);
  three.destroy();
  await drained('pipelined bodies, whole, the client gone');
  await tick(400);   // the handlers answer into closed connections
  await drained('after the late answers');
}));

// ---- a filter that throws --------------------------------------------------------------------------

test("a throwing filter: its error is thrown (uncaught, as a throwing 'request' listener's), the request goes to Node whole, and its body is never read as a request", async () => {
  const seen: string[] = [];
  const uncaught = await catchingUncaught(async (thrown) => {
    await serving({
      take: { limit: 8 << 20, filter: (_m, url) => { if (url === '/boom') throw new Error('filter failed'); return true; } },
      handler: async (req, res) => {
        seen.push(req.url!);
        return describe()(req, res);
      },
    }, async ({ port }) => {
      // The body of /boom is a request head: read as one, it would be a request smuggled past the filter.
      const smuggled = `${head('POST', '/smuggled', { 'Content-Length': 0 })}`;
      const c = await Raw.open(port);
      c.send(head('POST', '/boom', { 'Content-Length': smuggled.length }));
      await tick(30);
      c.send(smuggled);
      await tick(30);
      c.send(head('POST', '/after', { 'Content-Length': 3 }) + 'abc');
      const [a, b] = await c.answers(2, 'the two requests');
      c.destroy();
      assert.equal([a.status, json(a.body).url, json(a.body).sha], [200, '/boom', sha(bytes(smuggled))]);
      assert.equal([b.status, json(b.body).url, json(b.body).sha], [200, '/after', sha(bytes('abc'))]);
    });
    return thrown;
  });
  assert.equal(seen, ['/boom', '/after'], 'no request was read out of a body');
  assert.equal(uncaught.map((e) => (e as Error).message), ['filter failed']);
});

// ---- framing Node refuses --------------------------------------------------------------------------

// Chunked bodies by what Node's parser (llhttp, strict) does with them.
const refusedChunks: Record<string, string> = {
  'a space after the size': '5 \r\nhello\r\n0\r\n\r\n',
  'a tab after the size': '5\t\r\nhello\r\n0\r\n\r\n',
  'junk after a space': '5 junk\r\nhello\r\n0\r\n\r\n',
  'a space before an extension': '5 ;a\r\nhello\r\n0\r\n\r\n',
  'a space in an extension': '5; a\r\nhello\r\n0\r\n\r\n',
  'an extension with a space in it': '5;a b\r\nhello\r\n0\r\n\r\n',
  'an empty extension': '5;\r\nhello\r\n0\r\n\r\n',
  'a bare CR in an extension': '5;a\rb\r\nhello\r\n0\r\n\r\n',
  'a NUL in an extension': '5;a\x00\r\nhello\r\n0\r\n\r\n',
  'an extension with ==': '5;a==b\r\nhello\r\n0\r\n\r\n',
  'a quote inside a token value': '5;a=b"c\r\nhello\r\n0\r\n\r\n',
  'extensions over 16 KiB': `5;${'a'.repeat(17_000)}\r\nhello\r\n0\r\n\r\n`,
  'a 0x prefix': '0x5\r\nhello\r\n0\r\n\r\n',
  'a size past 64 bits': 'fffffffffffffffff\r\nhello\r\n0\r\n\r\n',
  'a trailer that is not a field': '5\r\nhello\r\n0\r\nnot a field\r\n\r\n',
  'a trailer without a colon': '5\r\nhello\r\n0\r\nnotafield\r\n\r\n',
  'a trailer with an empty name': '5\r\nhello\r\n0\r\n: v\r\n\r\n',
  'a trailer with a bare CR': '5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n',
  'a trailer with a NUL': '5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n',
  'a folded trailer': '5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n',
  'a Content-Length trailer': '5\r\nhello\r\n0\r\nContent-Length: 3\r\n\r\n',
  'trailers over maxHeaderSize': `5\r\nhello\r\n0\r\n${Array.from({ length: 20 }, (_, i) => `X-${i}: ${'a'.repeat(1000)}\r\n`).join('')}\r\n`,
};
const acceptedChunks: Record<string, string> = {
  'an extension': '5;a\r\nhello\r\n0\r\n\r\n',
  'an extension with a value': '5;a=b\r\nhello\r\n0\r\n\r\n',
  'an extension with an empty value': '5;a=\r\nhello\r\n0\r\n\r\n',
  'a quoted extension value': '5;a="b c"\r\nhello\r\n0\r\n\r\n',
  'a quoted value with an escape': '5;a="b\\"c"\r\nhello\r\n0\r\n\r\n',
  'two extensions': '5;a=1;b=2\r\nhello\r\n0\r\n\r\n',
  'extensions of 5000 bytes': `5;${'a'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`,
  'leading zeros, seventeen digits': '00000000000000005\r\nhello\r\n0\r\n\r\n',
  'a last chunk of 00': '5\r\nhello\r\n00\r\n\r\n',
  'a last chunk with an extension': '5\r\nhello\r\n0;a=b\r\n\r\n',
  'a trailer': '5\r\nhello\r\n0\r\nX-T: v\r\n\r\n',
  'trailers of 10 KB': `5\r\nhello\r\n0\r\n${Array.from({ length: 10 }, (_, i) => `X-${i}: ${'a'.repeat(1000)}\r\n`).join('')}\r\n`,
};

test('chunked framing: what Node refuses is refused (a 400 from readBody, the connection ends), what it accepts is read, as on a server that does not take bodies', async () => {
  const chunkHead = head('POST', '/c', { 'Transfer-Encoding': 'chunked' });
  const all = { ...refusedChunks, ...acceptedChunks };
  const answers = async (take: boolean) => {
    const out: Record<string, number | string> = {};
    await serving({ take: take ? undefined : false }, async ({ port }) => {
      for (const [k, body] of Object.entries(all)) out[k] = await answerTo(port, chunkHead + body);
    });
    return out;
  };
  // Node answers its own refusals: 400, and 413 and 431 for the two overflows.
  const own = await answers(false);
  const taken = await answers(true);
  const refused = (status: number | string) => (typeof status === 'number' && status >= 400 && status < 500 ? 'refused' : status);
  const expected = Object.fromEntries(Object.keys(all).map((k) => [k, k in refusedChunks ? 'refused' : 200]));
  assert.equal(Object.fromEntries(Object.entries(own).map(([k, v]) => [k, refused(v)])), expected, "Node's own answers");
  assert.equal(taken, Object.fromEntries(Object.keys(all).map((k) => [k, k in refusedChunks ? 400 : 200])), 'with takeBodies');
});

test('heads with a bare CR or LF, or framing whitespace other than SP and HTAB, go to Node, on strict servers and on insecureHTTPParser ones', async () => {
  // On an insecure parser a bare LF ends a line: the Content-Length below is one for Node, and
  // what follows its 5 bytes is a request of its own.
  const texts: Record<string, string> = {
    'a bare LF before Content-Length': `POST /a HTTP/1.1\r\nHost: x\r\nX: y\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`,
    'a bare CR before Content-Length': `POST /a HTTP/1.1\r\nHost: x\r\nX: y\rContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`,
    'chunked and a no-break space': `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'a Content-Length and a no-break space': `POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\xa0\r\n\r\nhello`,
    'a Content-Length and a vertical tab': `POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\x0b5\r\n\r\nhello`,
    'a NUL in a header value': `POST /a HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\nContent-Length: 5\r\n\r\nhello`,
  };
  for (const insecure of [false, true]) {
    const answers = async (take: boolean) => {
      const out: Record<string, string> = {};
      const seen: string[] = [];
      await serving({
        take: take ? undefined : false,
        setup: (s) => { (s as { insecureHTTPParser?: boolean }).insecureHTTPParser = insecure; },
        handler: async (req, res) => {
          seen.push(req.url!);
          return describe()(req, res);
        },
      }, async ({ port }) => {
        for (const [k, text] of Object.entries(texts)) {
          seen.length = 0;
          const c = await Raw.open(port);
          c.send(text);
          await settles(() => c.closed || c.replies.length >= 2, 1000);
          out[k] = `${c.replies.map((r) => `${r.status} ${r.status === 200 ? json(r.body).url + ':' + json(r.body).len : ''}`).join(', ')} | ${seen.join(' ')}`;
          c.destroy();
        }
      });
      return out;
    };
    assert.equal(await answers(true), await answers(false), `insecureHTTPParser ${insecure}`);
  }
});

// ---- timeouts --------------------------------------------------------------------------------------

test('headersTimeout with a response in flight: no 408 is written into it, the connection closes (as Node does)', () => serving({
  setup: (s) => { s.headersTimeout = 300; },
  handler: async (_req, res) => {
    res.writeHead(200, { 'content-length': 10 });
    res.write('part-');
    await tick(1500);
    res.end('done!');
  },
}, async ({ port }) => {
  const c = await Raw.open(port);
  c.send(head('GET', '/slow'));
  await settles(() => c.text.includes('part-'), 2000);
  c.send('POST /next HTTP/1.1\r\nHost: x\r\n');   // half a head
  assert.ok(await c.ends(3000), 'the connection closed');
  assert.ok(c.text.startsWith('HTTP/1.1 200'), c.text);
  assert.not.match(c.text, /408/, 'nothing written into the response');
  c.destroy();
}));

test("headersTimeout and requestTimeout go through 'clientError' (ERR_HTTP_REQUEST_TIMEOUT), whose listener answers; without one, Node's 408", async () => {
  const half = (c: Raw) => c.send('POST /x HTTP/1.1\r\nHost: x\r\n');
  const stalled = (c: Raw) => c.send(`${head('POST', '/x', { 'Content-Length': 1000 })}${'a'.repeat(100)}`);
  for (const [what, send, setup] of [
    ['a head', half, (s: http.Server) => { s.headersTimeout = 300; }],
    ['a body', stalled, (s: http.Server) => { s.requestTimeout = 400; s.headersTimeout = 300; }],
  ] as const) {
    const codes: string[] = [];
    await serving({
      setup: (s) => {
        setup(s);
        s.on('clientError', (e: { code?: string }, sock: Socket) => {
          codes.push(e.code!);
          sock.end('HTTP/1.1 408 Mine\r\nContent-Length: 4\r\nConnection: close\r\n\r\nmine');
        });
      },
    }, async ({ port, errors }) => {
      const c = await Raw.open(port);
      send(c);
      const r = await c.answer(what);
      assert.equal([r.status, r.body.toString()], [408, 'mine'], what);
      c.destroy();
      if (what === 'a body') await until(() => errors.length === 1, 'readBody rejected');
    });
    assert.equal(codes, ['ERR_HTTP_REQUEST_TIMEOUT'], what);
    await serving({ setup }, async ({ port }) => {
      const c = await Raw.open(port);
      send(c);
      const r = await c.answer(`${what}, no listener`);
      assert.is(r.status, 408, what);
      assert.ok(await c.ends(2000), `${what}: the connection closed`);
      c.destroy();
    });
  }
});

// ---- the 'connection' listener's socket ------------------------------------------------------------

test("a 'connection' listener's socket: setTimeout times the connection's activity, setNoDelay and setKeepAlive reach it, bytesRead and bytesWritten count it", async () => {
  const fired: number[] = [];
  let sock: Socket | undefined;
  const t0 = performance.now();
  await serving({
    setup: (s) => {
      s.keepAliveTimeout = 0;   // else Node sets its own timeout on the connection after each response
      s.on('connection', (so: Socket) => {
        sock = so;
        assert.is(so.setNoDelay(true), so);
        assert.is(so.setKeepAlive(true, 1000), so);
        assert.is(so.setTimeout(200, () => fired.push(performance.now() - t0)), so);
      });
    },
  }, async ({ port }) => {
    const c = await Raw.open(port);
    c.send(`${head('POST', '/first', { 'Content-Length': 3 })}abc`);
    await c.answer('the first request');
    assert.ok(sock!.bytesWritten > 0, `bytesWritten ${sock!.bytesWritten}`);
    const data = pattern(20_000, 3);
    c.send(head('POST', '/t', { 'Content-Length': data.length + 1 }));
    for (let i = 0; i < 10; i++) {   // 600 ms of activity, a write every 60 ms
      c.send(data.subarray(i * 2000, (i + 1) * 2000));
      await tick(60);
    }
    assert.equal(fired, [], 'no timeout while the client was sending');
    assert.ok(sock!.bytesRead >= 20_000, `bytesRead ${sock!.bytesRead}`);
    await until(() => fired.length === 1, 'a timeout once the client stopped, a byte short', 2000);
    c.destroy();
  });
});

test("a socket handed to the server with bytes already read from it (unshift, as protocol sniffers do) is served, its body read by readBody", async () => {
  const server = http.createServer(async (req, res) => {
    const b = await readBody(mm, req);
    res.end(sglSha(b));
    b.free();
  });
  takeBodies(mm, server);
  const sniffer = net.createServer((s) => {
    s.once('data', (first: Buffer) => {
      s.pause();
      s.unshift(first);
      server.emit('connection', s);
      s.resume();
    });
  });
  await new Promise<void>((r) => sniffer.listen(0, '127.0.0.1', r));
  const port = (sniffer.address() as net.AddressInfo).port;
  try {
    const data = pattern(300_000, 4);
    const r = await request(port, 'POST', '/sniffed', data);
    assert.equal([r.status, r.body.toString()], [200, sha(data)]);
  } finally {
    sniffer.close();
    await closeServer(server);
  }
  await drained('sniffed');
});

// ---- bodies no one reads yet -----------------------------------------------------------------------

test('a body no handler has asked for yet is read no further than the read-ahead (1 MiB), then whole once asked, alone or pipelined', () => serving({}, async ({ port, errors }) => {
  const data = pattern(8 << 20, 5);
  const slack = 512 << 10;   // the SGL's reserve and a buffer being read into
  const one = request(port, 'POST', '/one?late=400', data);
  one.catch(() => {});   // awaited below
  const peak = await peakWhile(tick(350));
  assert.ok(peak <= (1 << 20) + slack, `held ${peak} bytes while the body was not asked for`);
  const a = await one;
  assert.equal([a.status, json(a.body).sha], [200, sha(data)]);
  await drained('one');

  const c = await Raw.open(port);
  const parts = [1, 2, 3].map((i) => pattern(4 << 20, 10 + i));
  for (const [i, p] of parts.entries()) c.send(Buffer.concat([bytes(head('POST', `/p${i}?late=300`, { 'Content-Length': p.length })), p]));
  const answering = c.answers(3, 'the pipelined uploads');
  answering.catch(() => {});   // awaited below
  const pipelinedPeak = await peakWhile(tick(250));
  assert.ok(pipelinedPeak <= (1 << 20) + slack, `held ${pipelinedPeak} bytes while no body was asked for`);
  const rs = await answering;
  assert.equal(rs.map((r) => json(r.body).sha), parts.map(sha));
  c.destroy();
  assert.equal(errors, []);
}));

test('takeBodies: a readAhead that is not a byte count is ERR_MEMSYS_INVALID_ARG naming it; a larger one reads further ahead', async () => {
  for (const bad of [-1, 1.5, NaN, '1', null]) {
    throwsCode(() => takeBodies(mm, http.createServer(), { readAhead: bad as number }), 'ERR_MEMSYS_INVALID_ARG', 'readAhead');
  }
  await serving({ take: { limit: 8 << 20, readAhead: 4 << 20 } }, async ({ port }) => {
    const data = pattern(8 << 20, 6);
    const one = request(port, 'POST', '/one?late=500', data);
    one.catch(() => {});   // awaited below
    await tick(400);
    const held = heldBytes();
    assert.ok(held >= 3 << 20 && held <= (4 << 20) + (512 << 10), `held ${held} bytes with a read-ahead of 4 MiB`);
    assert.is(json((await one).body).sha, sha(data));
  });
});

// ---- closing the server ------------------------------------------------------------------------------

test('server.close() spares a keep-alive connection whose next request is arriving (its head or its body), as Node does without takeBodies', async () => {
  const outcomes = async (take: boolean) => {
    const out: Record<string, string> = {};
    for (const mode of ['head', 'body']) {
      const server = http.createServer(async (req, res) => {
        const b = await readBody(mm, req);
        res.end(`got ${b.len}`);
        b.free();
      });
      if (take) takeBodies(mm, server);
      const port = await listen(server);
      const c = await Raw.open(port);
      c.send(`${head('POST', '/a', { 'Content-Length': 2 })}ab`);
      await c.answer('the first request');
      c.send(mode === 'head' ? 'POST /b HTTP/1.1\r\nHost: x\r\n' : `${head('POST', '/b', { 'Content-Length': 10 })}abc`);
      await tick(50);
      server.close();
      await tick(50);
      c.send(mode === 'head' ? 'Content-Length: 3\r\n\r\nxyz' : 'defghij');
      await settles(() => c.closed || c.replies.length >= 2, 2000);
      out[mode] = c.replies.map((r) => r.body.toString()).join(', ');
      c.destroy();
      server.closeAllConnections();
      await drained(`close, ${mode}`);
    }
    return out;
  };
  const expected = { head: 'got 2, got 3', body: 'got 2, got 10' };
  assert.equal(await outcomes(false), expected, 'without takeBodies');
  assert.equal(await outcomes(true), expected, 'with takeBodies');
});


// ---- a read aimed at a body when the connection times out ------------------------------------

// A 'clientError' listener that answers with end() (as Node's documentation does) leaves the
// connection readable (an http server's sockets allow half-open), and the read the socket was
// aimed at (the body's SGL) still arrives after the timeout: it must not bring the framing back.
// A client that keeps writing after the server has ended its side (as a client may).
async function halfOpen(port: number): Promise<{ send(d: string): void; destroy(): void }> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  s.on('data', () => {});
  await new Promise((r) => s.once('connect', r));
  return { send: (d) => { s.write(bytes(d)); }, destroy: () => s.destroy() };
}

// Reads the body; a failure is left to the 'clientError' listener's answer.
const quiet = async (req: http.IncomingMessage, res: http.ServerResponse) => {
  try {
    (await readBody(mm, req, { limit: 8 << 20 })).free();
    res.end('read');
  } catch { /* answered by clientError */ }
};

function timingOut(s: http.Server, seen: string[], codes: string[]): void {
  s.requestTimeout = 300;
  s.headersTimeout = 200;
  s.on('clientError', (e: { code?: string }, sock: Socket) => {
    codes.push(e.code ?? String(e));
    sock.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  s.on('request', (req) => { seen.push(req.url!); });
}

// A body that times out part-way (its 'clientError' listener end()s), the rest of it sent, then
// `after`: what the server's 'request' listener saw, the timeout codes, and what was thrown out of
// the socket's read callback.
async function afterTimeout(after: string, ms: number): Promise<{ seen: string[]; codes: string[]; uncaught: unknown[] }> {
  const seen: string[] = [];
  const codes: string[] = [];
  const uncaught = await catchingUncaught(async (thrown) => {
    await serving({ setup: (s) => timingOut(s, seen, codes), handler: quiet }, async ({ port }) => {
      const c = await halfOpen(port);
      c.send(`${head('POST', '/slow', { 'Content-Length': 1000 })}${'a'.repeat(100)}`);
      await settles(() => codes.length > 0, 2000);
      c.send('b'.repeat(900));   // the rest of the body: lands in the SGL the socket was aimed at
      await tick(50);
      c.send(after);
      await tick(ms);
      c.destroy();
    });
    return thrown;
  });
  return { seen, codes, uncaught };
}

test('requestTimeout mid-body, a clientError listener that end()s: the rest of the body does not bring the connection back to life (no TypeError out of onread)', async () => {
  const { codes, uncaught } = await afterTimeout('\r\n5\r\nhello\r\n', 100);
  assert.equal(codes, ['ERR_HTTP_REQUEST_TIMEOUT'], 'the body timed out');
  assert.equal(uncaught.map((e) => String(e)), [], 'nothing thrown out of the socket\'s read callback');
});

test('requestTimeout mid-body, a clientError listener that end()s: no request is read off the connection afterwards', async () => {
  const { seen, uncaught } = await afterTimeout(`\r\n0\r\n\r\n${head('GET', '/smuggled')}`, 200);
  assert.equal(seen, ['/slow'], 'no request after the timeout');
  assert.equal(uncaught, []);
});

// ---- a body refused in the buffer callback, with reading stopped ------------------------------------

// onStreamRead calls the read callback, then the buffer generator (target()), then readStop() if
// the callback said false: a body refused inside target() (the pool has no room for its next
// buffer) frees the read-ahead before libuv stops, and reading must start again after it.
test('a body refused for want of pool room just as the read-ahead fills: the connection reads on (the rest dropped, the next request answered)', async () => {
  const small = new MMSA({ name: 'oom', arenaSize: 1 << 20, housekeeping: false, env: {}, budget: { ceiling: 1 << 20 } });
  small.init();
  const held: Uint8Array[] = [];
  try { for (;;) held.push(small.allocSize(65536)); } catch { /* full */ }
  const errors: string[] = [];
  const server = http.createServer(async (req, res) => {
    try {
      if (req.method === 'POST') {
        await tick(300);
        (await readBody(small, req, { limit: 8 << 20 })).free();
      }
      res.end('ok');
    } catch (e) {
      errors.push((e as { code?: string }).code ?? String(e));
      answerError(res, e);
    }
  });
  takeBodies(small, server, { limit: 8 << 20, sbufSize: 65536, readAhead: 128 << 10 });
  const port = await listen(server);
  try {
    // Room for two buffers: the SGL's first two; its third is refused, just as the read-ahead fills.
    small.free(held.pop()!);
    small.free(held.pop()!);
    const c = await Raw.open(port);
    c.send(Buffer.concat([bytes(head('POST', '/big', { 'Content-Length': 1 << 20 })), Buffer.alloc(1 << 20, 7), bytes(head('GET', '/after'))]));
    const rs = await c.answers(2, 'the refused upload and the request after it');
    assert.equal(rs.map((r) => r.status), [500, 200]);
    assert.equal(errors.length, 1, 'the upload was refused');
    c.destroy();
  } finally {
    await closeServer(server);
    for (const b of held) small.free(b);
  }
  await settles(() => inUse(small) === 0, 1000);
  assert.is(inUse(small), 0, 'the small pool holds nothing');
  small.terminate();
});

// ---- timeouts while Node holds the socket back --------------------------------------------------

// A client that reads no responses: Node pauses the socket once a request comes with the last
// response unsent (parserOnIncoming), and keeps it paused while that request is unanswered. A
// head begun in the same read is still parsed by Node, and its headersTimeout ends the connection.
test("a head begun while Node has paused the socket (a client that reads no responses) is timed by headersTimeout, as on Node's own server", async () => {
  const closes = async (take: boolean): Promise<boolean> => {
    const server = http.createServer({ connectionsCheckingInterval: 50, headersTimeout: 300, requestTimeout: 600 }, (req, res) => {
      // /two is answered late: until then Node keeps the socket paused (an answer queued at once
      // would let socketOnDrain resume it).
      if (req.url === '/big') res.end(Buffer.alloc(32 << 20));
      else setTimeout(() => { if (!res.destroyed) res.end('late'); }, 3000).unref();
    });
    let closed = false;
    server.on('connection', (s: Socket) => s.on('close', () => { closed = true; }));
    if (take) takeBodies(mm, server);
    const port = await listen(server);
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    await new Promise((r) => c.once('connect', r));
    c.pause();   // reads nothing: the 32 MiB answer backs up
    try {
      c.write(head('GET', '/big'));
      await tick(200);
      c.write(`${head('GET', '/two')}POST /three HTTP/1.1\r\nHost: x\r\n`);
      return await settles(() => closed, 2000);
    } finally {
      c.destroy();
      await closeServer(server);
    }
  };
  assert.ok(await closes(false), "Node's own server ends the connection");
  assert.ok(await closes(true), 'with takeBodies too');
});

test.run();
