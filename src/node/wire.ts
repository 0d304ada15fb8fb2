// Request bodies read off the socket straight into pool buffers: takeBodies(mm, server).
//
// Node's HTTP parser copies every chunk of a body into a fresh Buffer (one per read, 64 KiB at
// most), whatever reads the request afterwards; at a server's rate those Buffers are most of its
// garbage. Here the server's connections are read with `onread` (net.Socket's user buffer): the
// kernel writes a body's bytes into the tail of its SGL, and Node's parser is given only the
// request heads, with the body's framing taken out, so it sees requests without bodies. Node still
// parses and checks every head, answers, keeps connections alive and times them out; the body
// waits for readBody() (and so expressBody() and fastifyBody()), which finds it here.
//
// One connection, as it reads:
//
//        ┌───────── head (scratch) ◄──────────────────────────────────────────┐
//        │   a head whose framing is plain: a Content-Length, or chunked alone │
//        ▼                                                                     │
//   body, by length ──── kernel → SGL tail, each read bounded by what is left ─┤
//   chunk size line (scratch) ──► chunk data: kernel → SGL tail ──► CRLF ──┐   │
//        ▲                                                                 │   │
//        └─────────────────────────────────────────────────────────────────┘   │
//   last chunk ──► trailer lines (scratch, dropped) ───────────────────────────┘
//
//   anything else (an Upgrade or CONNECT, a framing that is not plain, a head larger than the
//   buffer) goes to Node's parser as it came, for the rest of the connection: Node decides, and
//   the bytes are copied as Node would.
//
// Reads that are not a body's data land in one scratch buffer the server's connections share
// (libuv reads a socket and hands the bytes over before it reads the next); what is left of a head
// or a chunk line when a read ends is copied aside. Memory a client makes the server hold is bounded
// by what it sends, as in readBody(): an SGL grows one buffer at a time, as bytes arrive; and, of
// bodies no handler has asked for yet, by the read-ahead: past it the connection stops reading
// (its read callback returns false) until a handler asks for one or it is let go.
//
// Node's parser sees a Content-Length of zeros (its digits overwritten, the head's length kept) or
// a chunked head followed by its last chunk; the request's headers are put back before the
// server's 'request' listeners run. readBody() hands over the SGL; any other reader of the request
// stream gets a copy of the body through it (feed), so the frameworks' own parsers work unchanged,
// with Node's copy; a `filter` leaves some bodies to Node, read as usual.
//
// Node's headersTimeout and requestTimeout see a head complete at once and a request without a
// body; they are applied here to the head as it arrives and to the body, and end as Node's own
// timers end a connection (its socket error listener: 'clientError', or a 408).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Writable } from 'node:stream';
import type { MMSA, SGL } from '../index.js';
import { MemsysError, invalidArg } from '../index.js';
import { BodyError, type BodyOptions, type Meter, bodyOptions, bodySGL, setTaken, tooLarge, wentAway } from './http.js';

/** Options of takeBodies(). */
export interface TakeOptions extends BodyOptions {
  /** Which requests' bodies to take (called with the request's method, target and headers, names
   * in lower case); the others are read by Node as usual. Default: every body with a plain
   * framing. */
  filter?: (method: string, url: string, headers: Readonly<Record<string, string>>) => boolean;
  /** Bytes of a connection's bodies read before a handler asks for them (readBody()); past it the
   * connection is not read until one does, as Node stops reading a request no one reads. Default
   * 1 MiB. */
  readAhead?: number;
}

/**
 * Makes `server` (a node:http Server, listening or not) read the bodies of its requests into SGLs
 * of `mm` as they arrive, without Node's copies: readBody(mm, req) (and expressBody, fastifyBody)
 * then resolves to that SGL. `limit` bounds every body (readBody's own limit applies too, the
 * smaller wins); `sbufSize` is the SGL's buffer size (default: from the Content-Length). A
 * connection reads up to `readAhead` bytes of bodies no handler has asked for, then waits for one
 * to. A body no one asks for is freed when its response closes or its client goes away; one over
 * its limit is read and dropped, so the connection stays usable. Other readers of a taken body's
 * request stream (express.json(), Fastify's parsers) get a copy of its bytes once it has all
 * arrived, and its BodyError as the stream's 'error'. A `filter` that throws has its error thrown (uncaught,
 * as a 'request' listener's) and leaves the connection to Node. Throws ERR_MEMSYS_INVALID_ARG for
 * bad arguments (a server that is not node:http's: HTTPS and HTTP/2 servers among them),
 * ERR_MEMSYS_STATE for a server whose bodies are taken already.
 */
export function takeBodies(mm: MMSA, server: http.Server, opts: TakeOptions = {}): void {
  const { limit, sbufSize } = bodyOptions(mm, opts);
  const { filter, readAhead = READ_AHEAD } = opts;
  if (filter !== undefined && typeof filter !== 'function') throw invalidArg('option filter', filter, 'must be a function');
  if (!(Number.isSafeInteger(readAhead) && readAhead >= 0)) throw invalidArg('option readAhead', readAhead, 'must be a non-negative integer (bytes)');
  if (!(server instanceof http.Server)) throw invalidArg('server', server, 'must be a node:http Server');
  const listeners = server.listeners('connection');
  const own = listeners.find((f) => f.name === 'connectionListener') as ((s: net.Socket) => void) | undefined;
  if (taking.has(server)) throw new MemsysError('ERR_MEMSYS_STATE', 'takeBodies: this server\'s bodies are taken already');
  if (!own) throw invalidArg('server', server, 'must be a node:http Server with its own connection listener');
  const t = new Taker(mm, server, own, { limit, sbufSize, filter, readAhead });
  taking.add(server);
  server.removeListener('connection', own);
  server.prependListener('connection', (s: net.Socket) => t.accept(s));
  // A request meets its body before any listener sees it, however the listeners were added; a
  // listener of ours would not do: one prepended later runs first, and a 'checkContinue' listener
  // would stop Node answering 100 Continue itself.
  const emit = server.emit;
  server.emit = function (this: http.Server, ev: string | symbol, ...args: unknown[]): boolean {
    if (ev === 'request' || ev === 'checkContinue' || ev === 'checkExpectation') t.link(args[0] as IncomingMessage, args[1] as ServerResponse);
    return Reflect.apply(emit, this, [ev, ...args]) as boolean;
  };
  // Node counts a connection idle once its parser has a whole request, which here is as soon as a
  // head is: one whose next head or body is still arriving is spared by close(), as Node spares it
  // when its parser is part-way through a request.
  const closeIdle = server.closeIdleConnections;
  server.closeIdleConnections = function (this: http.Server): void {
    const arriving = t.arriving();
    for (const s of arriving) s.destroy = spare;
    try {
      closeIdle.call(this);
    } finally {
      for (const s of arriving) Reflect.deleteProperty(s, 'destroy');
    }
  };
  (server as { pauseOnConnect?: boolean }).pauseOnConnect = true;
}

function spare(this: net.Socket): net.Socket {
  return this;
}

const taking = new WeakSet<http.Server>();

// ---- the server's side ---------------------------------------------------------------------------

const SCRATCH = 64 << 10;
const READ_AHEAD = 1 << 20;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

interface Settings {
  limit: number;
  sbufSize: number | undefined;
  filter: TakeOptions['filter'];
  readAhead: number;
}

// A socket as Node's net makes it, with the parts of it used here (Node has no other way to read an
// accepted connection into a buffer of one's own).
type Accepted = net.Socket & { _handle: (object & { isStreamBase?: boolean; _consumed?: boolean }) | null };

class Taker {
  readonly scratch = Buffer.allocUnsafe(SCRATCH);
  readonly conns = new Set<Conn>();
  current: Body | undefined;        // the body of the head being given to Node's parser
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly mm: MMSA, readonly server: http.Server, private readonly own: (s: net.Socket) => void,
    readonly cfg: Settings) {}

  get maxHeaderSize(): number {
    return (this.server as { maxHeaderSize?: number }).maxHeaderSize ?? http.maxHeaderSize;
  }

  get headMax(): number {
    return 2 * this.maxHeaderSize + 1024;
  }

  accept(s0: Net): void {
    const handle = (s0 as Accepted)._handle;
    // A Duplex injected by hand, or a socket with bytes read from it already (a protocol sniffer's,
    // unshifted): Node's, as it came.
    if (!handle?.isStreamBase || handle._consumed || s0.destroyed || s0.readableLength > 0) return this.own.call(this.server, s0);
    const conn = new Conn(this, s0, handle);
    this.conns.add(conn);
    this.watch();
    this.own.call(this.server, conn.s);
  }

  // The sockets of connections part-way through a request's head or body.
  arriving(): Net[] {
    return [...this.conns].filter((c) => c.arriving).map((c) => c.s);
  }

  // A request Node has parsed: its body (if taken) learns its request and response.
  link(req: IncomingMessage, res: ServerResponse): void {
    const b = this.current;
    if (!b || req.socket !== b.conn.s) return;
    this.current = undefined;
    b.link(req, res);
  }

  // Timeouts, while a connection is in the middle of a head or a body.
  private watch(): void {
    if (this.timer) return;
    const period = Math.max(10, Math.min(1000, (this.server.headersTimeout || 4000) / 4, (this.server.requestTimeout || 4000) / 4));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      for (const c of this.conns) c.check(now);
      if (this.conns.size > 0) this.watch();
    }, period);
    this.timer.unref();
  }
}

type Net = net.Socket;

// How a connection is reading.
const enum Phase {
  Head,         // a request head, into scratch
  Length,       // a body of known length
  ChunkLine,    // a chunk's size line
  ChunkData,    // a chunk's bytes
  ChunkEnd,     // the CRLF after them
  Trailers,     // the lines after the last chunk
  Raw,          // everything to Node's parser, as it comes
  Closing,      // bytes dropped until the client closes
}

// Where a body's bytes go.
const enum Sink { Keep, Drop, Node }

class Conn {
  readonly s: Net;
  private phase = Phase.Head;
  private pending: Buffer | undefined;  // bytes of an unfinished head or chunk line, or held while Node is paused
  private left = 0;                     // bytes of the body (Length) or the chunk (ChunkData) to come
  private sink = Sink.Keep;
  private body: Body | undefined;
  private since = 0;                    // when the head or the body began (performance.now()); 0: neither
  private trailers = 0;                 // bytes of the trailer lines so far
  private holding = false;              // not reading: its bodies no one asked for fill the read-ahead
  readonly unclaimed = new Set<Body>(); // its bodies that hold bytes no handler asked for yet
  // The body whose SGL the socket reads into next (pinned: its buffer stays out of the slab until
  // the socket reads elsewhere, after the next read, or closes).
  private aimed: Body | undefined;

  constructor(readonly t: Taker, s0: Net, handle: object) {
    // The accepted socket stays what the server and its 'connection' listeners hold: its addresses
    // read (and kept) before its handle goes, its destroy() ending the connection.
    void s0.remoteAddress;
    void s0.localAddress;
    (s0 as Accepted)._handle = null;
    s0.once('close', () => this.s.destroy());
    (handle as { _consumed?: boolean })._consumed = true;   // not Node's parser's to read
    this.s = new net.Socket({
      handle, allowHalfOpen: s0.allowHalfOpen,
      onread: { buffer: () => this.target(), callback: (n: number) => this.onRead(n) },
    } as net.SocketConstructorOpts);
    (this.s as { server?: http.Server }).server = t.server;
    stand(s0, this.s);
    this.s.on('close', () => this.closed(s0));
    this.s.on('resume', () => { if (this.pending) this.feed(this.takePending()); });
  }

  get arriving(): boolean {
    return this.since !== 0 && !this.s.destroyed;
  }

  // Where the next read goes: the body's SGL when its bytes come next, else the scratch buffer.
  private target(): Uint8Array {
    this.unaim();
    const b = this.body;
    if (b && this.sink === Sink.Keep && !this.pending && (this.phase === Phase.Length || this.phase === Phase.ChunkData)) {
      const room = b.room(this.left);
      if (room) {
        this.aimed = b;
        return room;
      }
      this.sink = Sink.Drop;   // refused: over its limit, or the pool had no room
    }
    return this.t.scratch;
  }

  private unaim(): void {
    this.aimed?.unpin();
    this.aimed = undefined;
  }

  private onRead(n: number): boolean {
    const a = this.aimed;
    if (a) {
      // The bytes are in the body's SGL (counted in unless it was refused since). A connection
      // that stopped (timed out) since the read was aimed drops them: its phase is Closing.
      a.wrote(n);
      if (this.phase !== Phase.Length && this.phase !== Phase.ChunkData) return this.mayRead();
      this.left -= n;
      if (this.left === 0) this.endOfData();
      return this.mayRead();
    }
    const got = this.t.scratch.subarray(0, n);
    this.feed(this.pending ? Buffer.concat([this.takePending(), got]) : got);
    return this.mayRead();
  }

  // False (the socket stops reading) while the bodies no one asked for fill the read-ahead.
  private mayRead(): boolean {
    let ahead = 0;
    for (const b of this.unclaimed) ahead += b.received;
    this.holding = ahead >= this.t.cfg.readAhead && ahead > 0;
    return !this.holding;
  }

  // A body was asked for or let go: reading goes on if it was held back for it (and Node does not
  // hold the socket back itself: its resume() starts the reads again). On the next tick: this may
  // run inside onStreamRead (a body refused in target()), whose readStop() for a callback that
  // said false comes after it and would undo a resume() made now.
  settled(b: Body): void {
    this.unclaimed.delete(b);
    if (this.holding && this.mayRead()) {
      process.nextTick(() => { if (!this.holding && !this.s.destroyed && !this.s.isPaused()) this.s.resume(); });
    }
  }

  private takePending(): Buffer {
    const p = this.pending!;
    this.pending = undefined;
    return p;
  }

  // Bytes in hand (scratch or a copy): through the phases until they run out or Node must wait.
  private feed(buf: Uint8Array): void {
    let at = 0;
    while (at < buf.length && !this.s.destroyed) {
      switch (this.phase) {
        case Phase.Head: {
          while (at + 1 < buf.length && buf[at] === CR && buf[at + 1] === LF) at += 2;   // RFC 9112 2.2: empty lines before a request
          if (at === buf.length) return;
          if (this.s.isPaused()) {   // Node holds back pipelined requests
            // Node's parser would have begun an unfinished head, and timed it (its complete ones
            // it would have parsed).
            this.since = headEnd(buf, at) < 0 ? this.since || performance.now() : 0;
            return this.keep(buf, at);
          }
          const end = headEnd(buf, at);
          if (end < 0) {
            if (buf.length - at > this.t.headMax) return this.raw(buf.subarray(at));
            if (this.since === 0) this.since = performance.now();
            return this.keep(buf, at);
          }
          this.since = 0;
          if (!this.head(buf.subarray(at, end))) return this.raw(buf.subarray(at));
          at = end;
          break;
        }
        case Phase.Length:
        case Phase.ChunkData: {
          if (this.sink === Sink.Node && this.s.isPaused()) return this.keep(buf, at);
          const n = Math.min(this.left, buf.length - at);
          this.data(buf.subarray(at, at + n));
          at += n;
          this.left -= n;
          if (this.left === 0) this.endOfData();
          break;
        }
        case Phase.ChunkLine:
        case Phase.ChunkEnd:
        case Phase.Trailers: {
          if (this.sink === Sink.Node && this.s.isPaused()) return this.keep(buf, at);
          const eol = lineEnd(buf, at);
          if (eol === -2) return void this.malformed('a line ending in LF without CR');
          if ((eol < 0 ? buf.length : eol - 2) - at > LINE_MAX) return void this.malformed(`a line longer than ${LINE_MAX} bytes`);
          if (eol < 0) return this.keep(buf, at);
          this.pass(buf.subarray(at, eol));
          const line = buf.subarray(at, eol - 2);
          at = eol;
          if (!this.line(line)) return;
          break;
        }
        case Phase.Raw:
          if (this.s.isPaused()) return this.keep(buf, at);
          return this.toNode(buf.subarray(at));
        case Phase.Closing:
          return;
      }
    }
  }

  private keep(buf: Uint8Array, at: number): void {
    this.pending = Buffer.from(buf.subarray(at));
  }

  // A complete head (its CRLFCRLF included): false if it goes to Node as it came, with all after it.
  private head(h: Uint8Array): boolean {
    const p = parseHead(h);
    if (!p) return false;
    const { t } = this;
    if (p.length === undefined && !p.chunked) {   // no body
      this.toNode(h);
      return true;
    }
    let take = true;
    if (t.cfg.filter) {
      try {
        take = t.cfg.filter(p.method, p.url, p.headers());
      } catch (e) {
        // Thrown as a 'request' listener's would be; the connection is Node's from this head on.
        process.nextTick(() => { throw e; });
        return false;
      }
    }
    if (!take) {
      this.toNode(h);
      this.startBody(p, Sink.Node, undefined);
      return true;
    }
    const body = new Body(this, p.length, p.lengthText, t.cfg.limit);
    const copy = p.chunked ? Buffer.concat([h, LAST_CHUNK]) : Buffer.from(h);
    if (p.lengthAt >= 0) copy.fill(0x30, p.lengthAt, p.lengthAt + p.lengthText.length);
    t.current = body;
    try {
      this.s.emit('data', copy);
    } finally {
      if (t.current === body) {   // Node did not take it as a request: it answers the head itself
        t.current = undefined;
        body.resClosed();
      }
    }
    this.startBody(p, body.start(t.cfg.sbufSize) ? Sink.Keep : Sink.Drop, body);
    return true;
  }

  private startBody(p: Head, sink: Sink, body: Body | undefined): void {
    this.sink = sink;
    this.body = body;
    this.since = performance.now();
    if (p.chunked) {
      this.phase = Phase.ChunkLine;
    } else {
      this.phase = Phase.Length;
      this.left = p.length!;
      if (this.left === 0) this.endOfBody();
    }
  }

  // Body bytes that came in scratch (with a head, after a refusal, or to give Node).
  private data(d: Uint8Array): void {
    if (this.sink === Sink.Keep) {
      if (!this.body!.write(d)) this.sink = Sink.Drop;
    } else if (this.sink === Sink.Node) {
      this.toNode(d);
    }
  }

  private pass(d: Uint8Array): void {
    if (this.sink === Sink.Node) this.toNode(d);
  }

  private endOfData(): void {
    if (this.phase === Phase.Length) this.endOfBody();
    else this.phase = Phase.ChunkEnd;
  }

  // A chunk size line, the CRLF after a chunk's data, or a trailer line (without its CRLF): false
  // when the connection is done for.
  private line(l: Uint8Array): boolean {
    switch (this.phase) {
      case Phase.ChunkEnd:
        if (l.length !== 0) return this.malformed('a chunk not followed by CRLF');
        this.phase = Phase.ChunkLine;
        return true;
      case Phase.Trailers:
        if (l.length === 0) {
          this.endOfBody();
          return true;
        }
        this.trailers += l.length + 2;
        if (this.trailers > this.t.maxHeaderSize) return this.malformed(`trailers larger than maxHeaderSize (${this.t.maxHeaderSize} bytes)`);
        return isTrailer(l) || this.malformed('a trailer line that is not a header field');
      default: {
        const size = chunkSize(l);
        if (size < 0) return this.malformed('a chunk line that is not hexadecimal digits and extensions');
        if (size === 0) {
          this.phase = Phase.Trailers;
          this.trailers = 0;
        } else {
          this.phase = Phase.ChunkData;
          this.left = size;
          if (this.sink === Sink.Keep && !this.body!.expect(size)) this.sink = Sink.Drop;
        }
        return true;
      }
    }
  }

  private endOfBody(): void {
    this.body?.complete();
    this.body = undefined;
    this.phase = Phase.Head;
    this.since = 0;
  }

  // A body whose framing broke: its request fails, and the connection closes once its answer is out.
  private malformed(what: string): false {
    const res = this.body?.res;
    this.body?.fail('request.size.invalid', `the request body is malformed: ${what}`);
    this.body = undefined;
    this.close(res);
    return false;
  }

  private close(res: ServerResponse | undefined): void {
    this.stop();
    const end = () => {
      this.s.end();
      setTimeout(() => this.s.destroy(), 5000).unref();   // a client that does not close its side
    };
    if (res && !res.writableFinished && !res.destroyed) res.once('close', end);
    else end();
  }

  // Reads from here on are dropped.
  private stop(): void {
    this.phase = Phase.Closing;
    this.pending = undefined;
    this.since = 0;
  }

  // Everything from here on to Node, as it came.
  private raw(d: Uint8Array): void {
    this.phase = Phase.Raw;
    this.since = 0;
    if (d.length) this.toNode(d);
  }

  private toNode(d: Uint8Array): void {
    this.s.emit('data', Buffer.from(d));
  }

  // The server's headersTimeout over a head that is still arriving, its requestTimeout over a body.
  check(now: number): void {
    if (this.since === 0) return;   // paused by Node or not, as Node's own timers
    const { headersTimeout, requestTimeout } = this.t.server;
    if (this.phase === Phase.Head) {
      if (headersTimeout > 0 && now - this.since > headersTimeout) this.timedOut();
    } else if (requestTimeout > 0 && now - this.since > requestTimeout) {
      this.body?.fail('request.aborted', `the request body did not arrive within the server's requestTimeout of ${requestTimeout} ms`);
      this.body = undefined;
      this.timedOut();
    }
  }

  // Node's own answer to a request too slow to arrive, as its timers give it (its socket error
  // listener): the server's 'clientError' listener's to handle; without one a 408, unless a
  // response is under way, and the connection ends.
  private timedOut(): void {
    this.stop();
    const onError = this.s.listeners('error').find((f) => f.name === 'socketOnError');
    if (onError) onError.call(this.s, Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }));
    else this.s.destroy();
  }

  private closed(s0: Net): void {
    this.t.conns.delete(this);
    this.body?.gone();
    this.body = undefined;
    for (const b of this.unclaimed) b.gone();
    this.unaim();
    this.pending = undefined;
    s0.destroy();   // the accepted socket, without its handle: the server counts the connection closed
  }
}

// ---- a body ----------------------------------------------------------------------------------------

// A taken body, read into an SGL as it arrives. It is readBody()'s once claimed; until then it is
// kept for its request (its bytes counted in its connection's read-ahead), and freed when the
// response closes or the client goes away.
//
//   filling ──► complete ──► handed (readBody() has the SGL)
//      │            │
//      └────────────┴──► refused (over a limit, no room, malformed, dropped, the client gone)
class Body {
  private sgl: SGL | undefined;        // filling or complete: not handed over
  private pinned: SGL | undefined;     // the SGL the socket reads into next
  private state: 'filling' | 'complete' | 'handed' | 'refused' = 'filling';
  private error: unknown;
  private waiter: { resolve(sgl: SGL): void; reject(e: unknown): void } | undefined;
  claimed = false;
  private dropped = false;             // no one claimed it before its response closed
  private readonly m: Meter;
  res: ServerResponse | undefined;
  private endStream: (() => void) | undefined;   // ends the request stream, once readBody() has the body

  constructor(readonly conn: Conn, length: number | undefined, private readonly lengthText: string, limit: number) {
    this.m = { limit, length, received: 0 };
    conn.unclaimed.add(this);
  }

  get received(): number { return this.m.received; }
  get refusal(): unknown { return this.state === 'refused' ? this.error : undefined; }

  // The SGL, once Node has seen the head (and a handler may have claimed the body under a lower
  // limit): false if the body is refused before its first byte.
  start(sbufSize: number | undefined): boolean {
    if (this.state !== 'filling') return false;
    const { length, limit } = this.m;
    if (length !== undefined && length > limit) return this.refuse(tooLarge(this.m));
    try {
      this.sgl = bodySGL(this.conn.t.mm, this.m, sbufSize);
    } catch (e) {
      return this.refuse(e);
    }
    return true;
  }

  // Room for the next read, at most `left` bytes; undefined once refused.
  room(left: number): Uint8Array | undefined {
    if (this.state !== 'filling') return undefined;
    if (this.m.received >= this.m.limit) return void this.refuse(tooLarge({ ...this.m, received: this.m.received + 1 }));
    const sgl = this.sgl!;
    let room;
    try {
      room = sgl.room(Math.min(left, this.m.limit - this.m.received));
    } catch (e) {
      return void this.refuse(e);
    }
    sgl.pin();
    this.pinned = sgl;
    return room;
  }

  unpin(): void {
    this.pinned?.unpin();
    this.pinned = undefined;
  }

  // `n` bytes were read into room(): counted in, unless refused since (then dropped). The room was
  // aimed under the limit then; a handler may have lowered it before the read came.
  wrote(n: number): void {
    if (this.state !== 'filling') return;
    if (this.m.received + n > this.m.limit) return void this.refuse(tooLarge({ ...this.m, received: this.m.received + n }));
    this.sgl!.commit(n);
    this.m.received += n;
  }

  // Bytes copied in: false once refused.
  write(d: Uint8Array): boolean {
    if (this.state !== 'filling') return false;
    if (this.m.received + d.length > this.m.limit) return this.refuse(tooLarge({ ...this.m, received: this.m.received + d.length }));
    try {
      this.sgl!.write(d);
    } catch (e) {
      return this.refuse(e);
    }
    this.m.received += d.length;
    return true;
  }

  // A chunk of `size` bytes comes: false (refused) if it would pass the limit.
  expect(size: number): boolean {
    if (this.state !== 'filling') return false;
    return this.m.received + size > this.m.limit ? this.refuse(tooLarge(this.m, size)) : true;
  }

  complete(): void {
    if (this.state !== 'filling') return;
    this.state = 'complete';
    if (this.waiter) this.waiter.resolve(this.handOver());
    else if (!this.res || this.res.destroyed || this.res.writableFinished) this.resClosed();   // no one will ask
  }

  fail(type: 'request.aborted' | 'request.size.invalid', message: string): void {
    this.refuse(new BodyError(type, message, this.m));
  }

  // The client went away: whatever was read goes back; a handler that asks is told.
  gone(): void {
    this.refuse(wentAway(this.m, true));
  }

  // Refused, arriving or arrived: its buffers go back, and a waiting readBody() rejects.
  private refuse(e: unknown): false {
    if (this.state === 'refused' || this.state === 'handed') return false;
    this.state = 'refused';
    this.error = e;
    this.sgl?.free();   // a pinned SGL's buffers go back once the socket reads elsewhere
    this.sgl = undefined;
    this.conn.settled(this);
    this.waiter?.reject(e);
    return false;
  }

  private handOver(): SGL {
    const sgl = this.sgl!;
    this.sgl = undefined;
    this.state = 'handed';
    return sgl;
  }

  // Node parsed the head: the request gets its headers as the client sent them, and the body.
  link(req: IncomingMessage, res: ServerResponse): void {
    this.res = res;
    if (this.lengthText !== '') {
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === 'content-length') raw[i + 1] = this.lengthText;
      req.headers['content-length'] = this.lengthText;
    }
    setTaken(req, this);
    this.endStream = feed(req, this);
    res.once('close', () => this.resClosed());
  }

  // The exchange is over: a body no one claimed is let go.
  resClosed(): void {
    if (this.claimed || this.state === 'refused') return;
    if (this.conn.s.destroyed) return this.gone();   // the client went away: readBody says so
    this.dropped = true;
    this.refuse(new MemsysError('ERR_MEMSYS_STATE', 'the response closed before the request body was read'));
  }

  // readBody(): the body, under `limit` too.
  claim(mm: MMSA, limit: number): Promise<SGL> {
    if (mm !== this.conn.t.mm) throw invalidArg('mm', mm, "must be the MMSA takeBodies() reads this server's bodies into");
    if (this.claimed) throw new MemsysError('ERR_MEMSYS_STATE', 'the request body is already being read, or was read');
    if (this.dropped) throw new MemsysError('ERR_MEMSYS_STATE', 'the request body was dropped: its response closed before it was read');
    if (limit < this.m.limit) {
      this.m.limit = limit;
      if ((this.m.length ?? this.m.received) > limit) this.refuse(tooLarge(this.m));
    }
    this.claimed = true;
    this.conn.settled(this);
    this.endStream?.();
    if (this.state === 'complete') return Promise.resolve(this.handOver());
    if (this.state === 'refused') return Promise.reject(this.error);
    return new Promise<SGL>((resolve, reject) => { this.waiter = { resolve, reject }; });
  }
}

// A taken body's request stream. Node's parser saw no body and ends the stream at once; that end
// is held back, and a reader other than readBody() (express.json(), Fastify's own parsers, a
// `for await`) claims the body with its first read and gets it from the SGL once it is complete,
// copied out as Node would have given it (all at once: it is in the pool already, under
// takeBodies' limit). A body refused destroys the request stream (not its connection): its
// 'error' where someone listens, as Node emits a request's, then 'close', never an 'end'. Once
// readBody() has the body, or no one read it before Node dumps it, the stream ends empty. Returns
// what ends it when readBody() claims the body.
type Fed = IncomingMessage & { _consuming: boolean; _dumped?: boolean; _readableState: { ended: boolean; pipes?: Writable[] } };

function feed(req: IncomingMessage, body: Body): () => void {
  const r = req as Fed;
  if (r._readableState.ended) return () => {};
  const push = r.push;
  r.push = (chunk: unknown, encoding?: BufferEncoding) => chunk === null || push.call(r, chunk, encoding);
  let reading = false;
  const end = () => {
    reading = true;
    r._consuming = true;
    push.call(r, null);
  };
  r._read = () => {
    if (reading) return;
    reading = true;
    r._consuming = true;
    let sgl;
    try {
      if (r._dumped || body.claimed) return void end();
      sgl = body.claim(body.conn.t.mm, Infinity);
    } catch {
      return void end();   // dropped: its response closed unread
    }
    sgl.then((b) => {
      for (let c = b.nextChunk(); c; c = b.nextChunk()) push.call(r, Buffer.from(c));
      b.free();
      push.call(r, null);
    }, (e: unknown) => {
      if (r.destroyed) return;
      // Not readable: on-finished (body-parser's dump after its error) takes it as done. The error
      // where someone listens, as Node emits a request's, before the 'aborted' of the destroy (a
      // reader that hears that first answers a client gone). The request goes, its connection
      // stays, as Node's own destroyer of a request does it: the rest of the body is dropped here.
      r.readable = false;
      if (r.listenerCount('error') > 0) r.emit('error', e);
      // A stream the request is piped into (a Fastify preParsing hook's) is told where it listens.
      const into = [...(r._readableState.pipes ?? [])];
      r.unpipe();
      for (const d of into) if (d.listenerCount('error') > 0) d.destroy(e as Error);
      if (r.destroyed) return;
      r.socket = null as unknown as IncomingMessage['socket'];
      r.destroy();
    });
  };
  // readBody() has it: the stream ends now, so that other readers see a body already read.
  return () => {
    if (reading) return;
    end();
    r.readable = false;
    r.resume();
  };
}

// ---- the framing ---------------------------------------------------------------------------------
//
// As strict as Node's parser (llhttp, without insecureHTTPParser) or stricter: what it would refuse
// is refused here, and a head with anything unusual goes to Node whole, for it to decide.

const EXT_MAX = 16 << 10;          // a chunk line's extensions, at most (as Node: HPE_CHUNK_EXTENSIONS_OVERFLOW)
const LINE_MAX = EXT_MAX + 64;
const CR = 13;
const LF = 10;
const HTAB = 9;
const SP = 32;
const DQUOTE = 34;
const SEMI = 59;
const EQUALS = 61;
const BACKSLASH = 92;

// RFC 9110 5.6.2: the characters of a token.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const BARE_CR_LF = /\r(?!\n)|(?<!\r)\n/;

// The index after a head's CRLFCRLF, from `at`, or -1.
function headEnd(b: Uint8Array, at: number): number {
  for (let i = b.indexOf(LF, at); i >= 0; i = b.indexOf(LF, i + 1)) {
    if (i >= at + 3 && b[i - 1] === CR && b[i - 2] === LF && b[i - 3] === CR) return i + 1;
  }
  return -1;
}

// The index after a CRLF, from `at`, or -1.
function lineEnd(b: Uint8Array, at: number): number {
  const i = b.indexOf(LF, at);
  return i > at && b[i - 1] === CR ? i + 1 : i < 0 ? -1 : -2;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

// A chunk line's size (RFC 9112 7.1: hex digits, then `;name[=value]` extensions, the value a
// token or a quoted string, no whitespace anywhere, as Node takes them), or -1.
function chunkSize(l: Uint8Array): number {
  let n = 0;
  let i = 0;
  for (let d; i < l.length && (d = hexDigit(l[i])) >= 0; i++) {
    n = n * 16 + d;
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  if (i === 0 || l.length - i > EXT_MAX) return -1;
  while (i < l.length) {
    if (l[i++] !== SEMI) return -1;
    const name = i;
    while (i < l.length && TCHAR[l[i]]) i++;
    if (i === name) return -1;
    if (i === l.length || l[i] !== EQUALS) continue;
    i++;
    if (i < l.length && l[i] === DQUOTE) i = quotedEnd(l, i);
    else while (i < l.length && TCHAR[l[i]]) i++;
    if (i < 0) return -1;
  }
  return n;
}

// The index after the quoted string (RFC 9110 5.6.4) at `at`, or -1.
function quotedEnd(l: Uint8Array, at: number): number {
  for (let i = at + 1; i < l.length; i++) {
    if (l[i] === DQUOTE) return i + 1;
    if (l[i] === BACKSLASH) i++;   // a quoted pair: the character after it as it is
    if (i === l.length || !isText(l[i])) return -1;
  }
  return -1;
}

// HTAB, SP, visible characters and obs-text: no other control (RFC 9110 5.5).
const isText = (c: number) => c === HTAB || (c >= SP && c !== 0x7f);

function isToken(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!TCHAR[s.charCodeAt(i)]) return false;
  return s.length > 0;
}

// A header field's name and value (the text between the colon and the CRLF).
function isField(name: string, value: string): boolean {
  if (!isToken(name)) return false;
  for (let i = 0; i < value.length; i++) if (!isText(value.charCodeAt(i))) return false;
  return true;
}

// A trailer line (without its CRLF) is a header field, and not one that frames the message.
function isTrailer(l: Uint8Array): boolean {
  const text = Buffer.from(l.buffer, l.byteOffset, l.length).toString('latin1');
  const colon = text.indexOf(':');
  if (colon < 0 || !isField(text.slice(0, colon), text.slice(colon + 1))) return false;
  const name = text.slice(0, colon).toLowerCase();
  return name !== 'content-length' && name !== 'transfer-encoding';
}

// RFC 9110 5.6.3: optional whitespace is SP and HTAB, nothing else.
function trimOWS(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === SP || v.charCodeAt(a) === HTAB)) a++;
  while (b > a && (v.charCodeAt(b - 1) === SP || v.charCodeAt(b - 1) === HTAB)) b--;
  return v.slice(a, b);
}

interface Head {
  method: string;
  url: string;
  length: number | undefined;
  lengthText: string;   // the Content-Length as sent, '' without one
  lengthAt: number;     // where its digits are in the head, -1 without one
  chunked: boolean;
  headers(): Record<string, string>;
}

// The framing of a head, or undefined when it is not plain enough to take (Node then decides).
function parseHead(h: Uint8Array): Head | undefined {
  const text = Buffer.from(h.buffer, h.byteOffset, h.length).toString('latin1');
  // A CR or LF that is not a CRLF ends a line for a lenient parser and not for this one.
  if (BARE_CR_LF.test(text)) return undefined;
  const first = text.indexOf('\r\n');
  const [method, url, version, extra] = text.slice(0, first).split(' ');
  if (extra !== undefined || !isToken(method) || !url || !TARGET.test(url) || (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') || method === 'CONNECT') return undefined;
  let length: number | undefined;
  let lengthText = '';
  let lengthAt = -1;
  let te = 0;
  for (let at = first + 2; at < text.length - 2;) {
    const eol = text.indexOf('\r\n', at);
    const colon = text.indexOf(':', at);
    if (colon < 0 || colon > eol) return undefined;
    const name = text.slice(at, colon);
    const value = text.slice(colon + 1, eol);
    if (!isField(name, value)) return undefined;
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      if (lengthAt >= 0) return undefined;
      lengthText = trimOWS(value);
      if (!/^\d{1,15}$/.test(lengthText)) return undefined;
      lengthAt = colon + 1 + value.indexOf(lengthText);
      length = Number(lengthText);
    } else if (lower === 'transfer-encoding') {
      if (te++ > 0 || trimOWS(value).toLowerCase() !== 'chunked' || version !== 'HTTP/1.1') return undefined;
    } else if (lower === 'upgrade') {
      return undefined;
    }
    at = eol + 2;
  }
  if (te > 0 && lengthAt >= 0) return undefined;
  return {
    method, url, length, lengthText, lengthAt, chunked: te > 0,
    headers() {
      const out: Record<string, string> = {};
      for (const l of text.slice(first + 2, -4).split('\r\n')) {
        const c = l.indexOf(':');
        const k = l.slice(0, c).toLowerCase();
        const v = trimOWS(l.slice(c + 1));
        out[k] = k in out ? `${out[k]}, ${v}` : v;
      }
      return out;
    },
  };
}

// ---- the accepted socket ---------------------------------------------------------------------------

// What the server's 'connection' listeners do with the socket they were given (which no longer has
// the connection's handle) reaches the connection: its timeout, TCP options, counts and references.
function stand(s0: Net, s: Net): void {
  Object.defineProperties(s0, {
    bytesRead: { get: () => s.bytesRead, configurable: true },
    bytesWritten: { get: () => s.bytesWritten, configurable: true },
  });
  s0.setNoDelay = (noDelay?: boolean) => { s.setNoDelay(noDelay); return s0; };
  s0.setKeepAlive = (enable?: boolean, delay?: number) => { s.setKeepAlive(enable, delay); return s0; };
  s0.setTimeout = (ms: number, cb?: () => void) => {
    s.setTimeout(ms);
    if (cb) {
      if (ms === 0) s0.removeListener('timeout', cb);
      else s0.once('timeout', cb);
    }
    return s0;
  };
  s0.ref = () => { s.ref(); return s0; };
  s0.unref = () => { s.unref(); return s0; };
  s.on('timeout', () => s0.emit('timeout'));
}
