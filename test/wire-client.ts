// A client's side of takeBodies() tests: a shared pool, servers whose bodies are taken (or not)
// answered by a handler that describes what it read, and raw connections that write requests byte
// for byte and parse what comes back.
import * as assert from 'uvu/assert';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Socket, connect } from 'node:net';
import { MMSA, type ReadOptions, type TakeOptions, hasBody, readBody, takeBodies } from '../src/node/index.js';
import { closeServer, drainer, listen, sglSha, tick } from './helpers.js';

export const mm = new MMSA({ name: 'wire', arenaSize: 96 << 20, env: {}, housekeeping: false });
mm.init();
export const drained = drainer(mm);

// ---- helpers -------------------------------------------------------------------------------------

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

// What a handler saw of a request and its body (the `describe` handler answers with it as JSON).
export interface Seen {
  method: string; url: string; len: number; sha: string; cl: string | null; rawCl: string | null;
  te: string | null; hasBody: boolean;
}

// The default handler: reads the body with readBody (`read`, default a limit of 8 MiB) and answers
// what it held. `?late=N` waits N ms before reading, `?delay=N` N ms before answering.
export function describe(read: ReadOptions = { limit: 8 << 20 }): Handler {
  return async (req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    if (q.has('late')) await tick(Number(q.get('late')));
    const b = await readBody(mm, req, read);
    const seen: Seen = {
      method: req.method!, url: req.url!, len: b.len, sha: sglSha(b),
      cl: req.headers['content-length'] ?? null, rawCl: rawHeader(req, 'content-length'),
      te: req.headers['transfer-encoding'] ?? null, hasBody: hasBody(req),
    };
    b.free();
    if (q.has('delay')) await tick(Number(q.get('delay')));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(seen));
  };
}

export function rawHeader(req: IncomingMessage, name: string): string | null {
  const i = req.rawHeaders.findIndex((v, j) => j % 2 === 0 && v.toLowerCase() === name);
  return i < 0 ? null : req.rawHeaders[i + 1];
}

// A failure of a handler, answered with its BodyError's status and what it says, as JSON.
export function answerError(res: ServerResponse, e: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const err = e as { status?: number; code?: string; type?: string; message?: string };
  res.statusCode = err.status ?? 500;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ code: err.code, type: err.type ?? null, message: err.message }));
}

export interface Served {
  server: http.Server;
  port: number;
  errors: unknown[];            // what the handler threw or rejected with, in order
  connections(): number;        // connections accepted so far
}

// Runs `run` against a server whose bodies are taken (`take`, default a limit of 8 MiB; `take:
// false` for a server as Node makes it) and answered by `handler` (default `describe()`); closes
// it afterwards and checks that the pool holds nothing.
export async function serving(opts: { take?: TakeOptions | false; handler?: Handler; setup?: (s: http.Server) => void },
  run: (t: Served) => Promise<void>): Promise<void> {
  const errors: unknown[] = [];
  const handler = opts.handler ?? describe();
  const server = http.createServer((req, res) => {
    handler(req, res).catch((e) => { errors.push(e); answerError(res, e); });
  });
  let accepted = 0;
  server.on('connection', () => { accepted++; });
  opts.setup?.(server);
  if (opts.take !== false) takeBodies(mm, server, opts.take ?? { limit: 8 << 20 });
  const port = await listen(server);
  try {
    await run({ server, port, errors, connections: () => accepted });
  } finally {
    await within(closeServer(server), 5000, 'server.close()');
  }
  await drained('after the server closed');
}

// `p`, or a failure saying `what` did not complete within `ms`.
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const json = (b: Buffer) => JSON.parse(b.toString('utf8'));
export const bytes = (s: string) => Buffer.from(s, 'latin1');

// A request head: `headers` in the order and spelling given.
export function head(method: string, path: string, headers: Record<string, string | number> = {}, version = 'HTTP/1.1'): string {
  return `${method} ${path} ${version}\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

// `parts` as a chunked body: each a chunk (its size in `upper`-case hex, with extension `ext`),
// then the last chunk and the `trailers` lines.
export function chunked(parts: Uint8Array[], o: { ext?: string; upper?: boolean; trailers?: string[] } = {}): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const size = p.length.toString(16);
    out.push(bytes(`${o.upper ? size.toUpperCase() : size}${o.ext ?? ''}\r\n`), Buffer.from(p), bytes('\r\n'));
  }
  out.push(bytes(`0\r\n${(o.trailers ?? []).map((t) => `${t}\r\n`).join('')}\r\n`));
  return Buffer.concat(out);
}

// `data` cut into pieces of the sizes given, round and round.
export function pieces(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    out.push(data.subarray(at, at + sizes[i % sizes.length]));
    at += sizes[i % sizes.length];
  }
  return out;
}

// Polls `cond` every 10 ms for up to `ms`: whether it came to hold.
export async function settles(cond: () => boolean, ms: number): Promise<boolean> {
  for (let i = 0; i < ms / 10 && !cond(); i++) await tick(10);
  return cond();
}

export interface Reply { status: number; headers: Record<string, string>; body: Buffer }

// The complete responses at the start of `b` (interim 1xx ones left out); a response without a
// length ends with the connection (`closed`).
export function parseReplies(b: Buffer, closed: boolean): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  for (;;) {
    const end = b.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const lines = b.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    let p = end + 4;
    if (status < 200) { at = p; continue; }
    let body: Buffer;
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (b.length < p + n) return out;
      body = b.subarray(p, p + n);
      p += n;
    } else if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = b.indexOf('\r\n', p);
        if (eol < 0) return out;
        const n = parseInt(b.subarray(p, eol).toString('latin1'), 16);
        if (b.length < eol + 2 + n + 2) return out;
        parts.push(b.subarray(eol + 2, eol + 2 + n));
        p = eol + 2 + n + 2;
        if (n === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      if (!closed) return out;
      body = b.subarray(p);
      p = b.length;
    }
    out.push({ status, headers, body });
    at = p;
  }
}

// A raw connection: requests written as given (byte by byte, if asked), the responses parsed off
// what comes back.
export class Raw {
  private got = Buffer.alloc(0);
  closed = false;   // the server ended or closed the connection

  private constructor(readonly s: Socket) {
    s.on('data', (c: Buffer) => { this.got = Buffer.concat([this.got, c]); });
    s.on('end', () => { this.closed = true; });
    s.on('close', () => { this.closed = true; });
  }

  static async open(port: number): Promise<Raw> {
    const s = connect(port, '127.0.0.1');
    s.setNoDelay(true);
    s.on('error', () => {});
    await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    return new Raw(s);
  }

  send(d: string | Uint8Array): void {
    if (!this.s.destroyed) this.s.write(typeof d === 'string' ? bytes(d) : d);
  }

  // `d` one byte per write, `ms` apart.
  async trickle(d: string | Uint8Array, ms = 1): Promise<void> {
    const b = typeof d === 'string' ? bytes(d) : d;
    for (let i = 0; i < b.length; i++) {
      this.send(b.subarray(i, i + 1));
      await tick(ms);
    }
  }

  get text(): string { return this.got.toString('latin1'); }
  get replies(): Reply[] { return parseReplies(this.got, this.closed); }

  // The first `n` responses: fails if they have not all come within 5 s (or the connection closed
  // before they did).
  async answers(n: number, what: string): Promise<Reply[]> {
    await settles(() => this.closed || this.replies.length >= n, 5000);
    const r = this.replies;
    assert.ok(r.length >= n, `${what}: ${r.length} of ${n} answers ${this.closed ? 'before the connection closed' : 'after 5 s'}; got ${JSON.stringify(this.text.slice(0, 300))}`);
    return r;
  }

  async answer(what: string): Promise<Reply> { return (await this.answers(1, what))[0]; }

  // Whether the server ends the connection within `ms`.
  async ends(ms = 5000): Promise<boolean> { return settles(() => this.closed, ms); }

  destroy(): void { this.s.destroy(); }
}

// What a server answers a raw request with: the status of its first response, 'closed' when it
// closes the connection without one, 'none' when 5 s pass in silence; with `reasons` (from
// clientErrors()), the code of the parse error Node answered, after the status.
export async function answerTo(port: number, text: string | Uint8Array, reasons?: Map<number, string>): Promise<number | string> {
  const c = await Raw.open(port);
  const local = c.s.localPort!;
  c.send(text);
  await settles(() => c.closed || c.replies.length > 0, 5000);
  const r = c.replies[0];
  const status = r ? r.status : c.closed ? 'closed' : 'none';
  const why = reasons?.get(local);
  c.destroy();
  return why ? `${status} ${why}` : status;
}

// The errors Node's parser answers with a 400 (its 'clientError'), by the client's port: the
// server's emit is watched rather than listened to, so that Node answers as it does with no
// 'clientError' listener.
export function clientErrors(server: http.Server): Map<number, string> {
  const codes = new Map<number, string>();
  const emit = server.emit as (ev: string | symbol, ...args: unknown[]) => boolean;
  server.emit = function (this: http.Server, ev: string | symbol, ...args: unknown[]) {
    if (ev === 'clientError') codes.set((args[1] as Socket).remotePort!, (args[0] as { code: string }).code);
    return emit.call(this, ev, ...args);
  } as typeof server.emit;
  return codes;
}

