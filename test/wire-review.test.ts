// Review of takeBodies(): defects left after "takeBodies under faults and hostile input", each
// shown by a test that fails without its fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { MMSA, readBody, takeBodies } from '../src/node/index.js';
import { closeServer, inUse, listen, tick } from './helpers.js';
import { Raw, answerError, bytes, head, mm, serving, settles } from './wire-client.js';

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

// ---- a read aimed at a body when the connection times out ------------------------------------

// A 'clientError' listener that answers with end() (as Node's documentation does) leaves the
// connection readable (an http server's sockets allow half-open). The read the socket was aimed at
// (the body's SGL) still arrives, and onRead counts it into `left` whatever the phase: a body
// that reaches its end there moves the connection out of Closing into ChunkEnd, and from there
// the client's bytes are parsed again, with no body (a TypeError) or into Node (a request after
// the connection timed out).
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

test('requestTimeout mid-body, a clientError listener that end()s: the rest of the body does not bring the connection back to life (no TypeError out of onread)', () => catchingUncaught(async (uncaught) => {
  const seen: string[] = [];
  const codes: string[] = [];
  await serving({ setup: (s) => timingOut(s, seen, codes), handler: quiet }, async ({ port }) => {
    const c = await halfOpen(port);
    c.send(`${head('POST', '/slow', { 'Content-Length': 1000 })}${'a'.repeat(100)}`);
    await settles(() => codes.length > 0, 2000);
    assert.equal(codes, ['ERR_HTTP_REQUEST_TIMEOUT'], 'the body timed out');
    c.send('b'.repeat(900));   // the rest of the body: lands in the SGL the socket was aimed at
    await tick(50);
    c.send('\r\n5\r\nhello\r\n');
    await tick(100);
    c.destroy();
  });
  assert.equal(uncaught.map((e) => String(e)), [], 'nothing thrown out of the socket\'s read callback');
}));

test('requestTimeout mid-body, a clientError listener that end()s: no request is read off the connection afterwards', () => catchingUncaught(async (uncaught) => {
  const seen: string[] = [];
  const codes: string[] = [];
  await serving({ setup: (s) => timingOut(s, seen, codes), handler: quiet }, async ({ port }) => {
    const c = await halfOpen(port);
    c.send(`${head('POST', '/slow', { 'Content-Length': 1000 })}${'a'.repeat(100)}`);
    await settles(() => codes.length > 0, 2000);
    c.send('b'.repeat(900));
    await tick(50);
    c.send(`\r\n0\r\n\r\n${head('GET', '/smuggled')}`);
    await tick(200);
    c.destroy();
  });
  assert.equal(seen, ['/slow'], 'no request after the timeout');
  assert.equal(uncaught, []);
}));

// ---- a body refused in the buffer callback, with reading stopped ------------------------------------

// onStreamRead calls the read callback, then the buffer generator (target()), then readStop() if
// the callback said false. A body refused inside target() (the pool has no room for its next
// buffer) is settled there: settled() sees the read-ahead free again and calls s.resume(), which
// does nothing (the handle is still reading), and then libuv stops. Nothing starts it again.
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
// response unsent (parserOnIncoming), and keeps it paused while that request is unanswered. A head begun in the same read is still parsed by Node, and
// its headersTimeout ends the connection. takeBodies keeps that head in `pending` without starting
// its clock, and check() skips a paused connection: the connection is held for as long as the
// client likes.
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
