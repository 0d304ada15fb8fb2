// The server of the server benchmark: `node --import tsx bench/server/app.ts STRATEGY`, forked by
// bench/server.ts with an IPC channel. It listens on 127.0.0.1, an ephemeral port, and tells the
// driver the port; the driver then marks the start of each measured load and reads back what this
// process spent over it (GC time, CPU time, page faults, peak RSS), and at the end the RSS as it
// falls.
//
// Routes, the same for every strategy:
//   POST /upload        collect the body, reply JSON { n, first, last } (its length and first and
//                       last bytes: the body is really held)
//   POST /echo          collect the body, send it back whole
//   GET  /download/N    collect N bytes from a file (in the page cache), then send them: through
//                       fs.createReadStream (a fresh 64 KiB Buffer per read), or for memsys read
//                       straight into the SGL (sgl.readFrom of a FileHandle)
//   GET  /send/N        send N bytes held from the start (an SGL kept for the next request, or a
//                       Buffer): the sending alone (not in the default run: BENCH_ROUTES=send)
//
// Strategies: how the body is collected and sent.
//   memsys      readBody into an SGL, sendSGL of it (download: readFrom the file's FileHandle)
//   memsys-wire the same, on a server whose bodies takeBodies() reads off the socket into the SGL
//   raw-body    getRawBody(req, { length, limit }) (Express's body reader), res.end(buffer)
//   concat      'data' chunks into an array, Buffer.concat, res.end(buffer)
//   fastify     Fastify 5: an application/octet-stream parser with parseAs 'buffer' (Fastify has
//               none by default; its own collector is chunks + Buffer.concat), reply.send(buffer);
//               download: chunks + Buffer.concat, reply.send(buffer)
//   drain       upload only, the floor: reads the body and keeps nothing but its length and first
//               and last bytes (what Node's HTTP layer costs, GC included, with no body held)

import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import getRawBody from 'raw-body';
import { MMSA, type MMSAOptions, type SGL, readBody, sendSGL, takeBodies } from '../../src/node/index.js';
import { pct } from './percentile.js';

const STRATEGIES = ['memsys', 'memsys-wire', 'raw-body', 'concat', 'fastify', 'drain'] as const;
type Strategy = (typeof STRATEGIES)[number];

const LIMIT = 32 << 20;
const CHUNK = 64 << 10;
const strategy = process.argv[2] as Strategy;
if (!STRATEGIES.includes(strategy)) {
  console.error(`usage: app.ts ${STRATEGIES.join('|')}`);
  process.exit(2);
}

// ---- the file of the download route -------------------------------------------------------------

const pattern = Buffer.allocUnsafe(CHUNK);
for (let i = 0; i < CHUNK; i++) pattern[i] = (i * 131 + 7) & 255;

const dir = mkdtempSync(join(tmpdir(), 'memsys-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const files = new Map<number, string>();
function fileOf(n: number): string {
  let f = files.get(n);
  if (!f) {
    files.set(n, f = join(dir, String(n)));
    const b = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; at += CHUNK) b.set(pattern.subarray(0, Math.min(CHUNK, n - at)), at);
    writeFileSync(f, b);
  }
  return f;
}

function concatOf(src: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    src.on('data', (c: Buffer) => {
      n += c.length;
      if (n > LIMIT) { src.destroy(); reject(Object.assign(new Error('too large'), { status: 413 })); return; }
      chunks.push(c);
    });
    src.on('end', () => resolve(Buffer.concat(chunks, n)));
    src.on('error', reject);
    src.on('aborted', () => reject(Object.assign(new Error('aborted'), { status: 400 })));
  });
}

const sizeOf = (url: string) => Number(url.slice(url.lastIndexOf('/') + 1));
const held = new Map<number, Buffer>();
const heldBuffer = (n: number) => {
  let b = held.get(n);
  if (!b) held.set(n, b = Buffer.alloc(n, 7));
  return b;
};
const summary = (n: number, first: number, last: number) => JSON.stringify({ n, first, last });

// ---- accounting ---------------------------------------------------------------------------------

let served = 0;
let failed = 0;
let lastError = '';
function fail(res: ServerResponse, e: unknown): void {
  failed++;
  lastError = (e as Error)?.message ?? String(e);
  const status = (e as { status?: number }).status ?? 500; // BodyError's, raw-body's (http-errors) or ours
  if (!res.headersSent) {
    res.statusCode = status;
    res.setHeader('Connection', 'close');
    res.end();
  } else {
    res.destroy();
  }
}

// ---- the plain node:http strategies -------------------------------------------------------------

let mm: MMSA | undefined;
let ticks = 0;

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function handlers(): { upload: Handler; echo: Handler; download: Handler; send: Handler } {
  if (strategy === 'memsys' || strategy === 'memsys-wire') {
    // The driver passes its options (MEMSYS_OPTS in bench/server.ts).
    const opts: MMSAOptions = { name: 'bench-server', ...JSON.parse(process.env.MEMSYS_OPTS ?? '{}') };
    mm = new MMSA(opts);
    const err = mm.init();
    if (err) console.error(`memsys: init: ${err.message}`);
    mm.addEventListener('tick', () => { ticks++; });
    const m = mm;
    const spare = new Map<number, SGL[]>(); // the send route's SGLs, by size
    const checksum = (sgl: SGL) => {
      const n = sgl.len;
      const first = sgl.open().readByte();
      const r = sgl.open();
      r.seek(n - 1);
      return summary(n, first, r.readByte());
    };
    return {
      async upload(req, res) {
        const sgl = await readBody(m, req, { limit: LIMIT });
        const out = checksum(sgl);
        sgl.free();
        res.setHeader('Content-Type', 'application/json');
        res.end(out);
      },
      async echo(req, res) {
        await sendSGL(res, await readBody(m, req, { limit: LIMIT }));
      },
      async download(req, res) {
        const n = sizeOf(req.url!);
        const fh = await open(fileOf(n));
        let sgl: SGL | undefined;
        try {
          sgl = m.newSGL(n);
          await sgl.readFrom(fh);
        } catch (e) {
          sgl?.free();
          throw e;
        } finally {
          await fh.close();
        }
        await sendSGL(res, sgl);
      },
      async send(req, res) {
        const n = sizeOf(req.url!);
        const free = spare.get(n) ?? [];
        spare.set(n, free);
        let sgl = free.pop();
        if (!sgl) { sgl = m.newSGL(n); sgl.write(heldBuffer(n)); }
        sgl.rewind();
        const s = sgl;
        res.once('close', () => free.push(s));
        await sendSGL(res, s, { free: false });
      },
    };
  }
  if (strategy === 'drain') {
    const no: Handler = async (_req, res) => { res.statusCode = 404; res.end(); };
    return {
      upload: (req, res) => new Promise((resolve, reject) => {
        let n = 0;
        let first = -1;
        let last = -1;
        req.on('data', (c: Buffer) => {
          if (n === 0) first = c[0];
          n += c.length;
          last = c[c.length - 1];
        });
        req.on('end', () => {
          res.setHeader('Content-Type', 'application/json');
          res.end(summary(n, first, last));
          resolve();
        });
        req.on('error', reject);
      }),
      echo: no,
      download: no,
      send: no,
    };
  }
  const collect = strategy === 'raw-body'
    ? (req: IncomingMessage) => getRawBody(req, { length: req.headers['content-length'], limit: LIMIT })
    : (req: IncomingMessage) => concatOf(req);
  const send = (res: ServerResponse, b: Buffer) => {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.end(b);
  };
  return {
    async upload(req, res) {
      const b = await collect(req);
      res.setHeader('Content-Type', 'application/json');
      res.end(summary(b.length, b.length ? b[0] : -1, b.length ? b[b.length - 1] : -1));
    },
    async echo(req, res) {
      send(res, await collect(req));
    },
    async download(req, res) {
      const n = sizeOf(req.url!);
      const file = createReadStream(fileOf(n));
      send(res, strategy === 'raw-body' ? await getRawBody(file, { length: n, limit: LIMIT }) : await concatOf(file));
    },
    async send(req, res) {
      send(res, heldBuffer(sizeOf(req.url!)));
    },
  };
}

// Exchanges not yet closed: a mark waits for the warm-up's to end (one cut short by its bound
// fails later, and must not count in the measured run).
let active = 0;
// Each exchange's time in the server, from its head to the response's last byte handed to the
// kernel ('finish'): a client's tail that this does not show is time outside the server's code.
const times = new Float64Array(1 << 16);
let timed = 0;
// First among the 'request' listeners, so that the clock starts before the handler runs.
function track(server: http.Server): void {
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    active++;
    const t0 = performance.now();
    res.once('finish', () => { times[timed++ & (times.length - 1)] = performance.now() - t0; });
    res.once('close', () => { active--; });
  });
}
const serverP99 = () => pct(times.slice(0, Math.min(timed, times.length)).sort(), 99);

async function listen(): Promise<number> {
  if (strategy === 'fastify') {
    const app = Fastify({ logger: false, bodyLimit: LIMIT });
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: LIMIT }, (_req, body, done) => done(null, body));
    app.post('/upload', async (req, reply) => {
      const b = req.body as Buffer;
      served++;
      reply.type('application/json');
      return summary(b.length, b.length ? b[0] : -1, b.length ? b[b.length - 1] : -1);
    });
    app.post('/echo', async (req, reply) => {
      served++;
      reply.type('application/octet-stream');
      return req.body as Buffer;
    });
    app.get('/download/:n', async (req, reply) => {
      const b = await concatOf(createReadStream(fileOf(Number((req.params as { n: string }).n))));
      served++;
      reply.type('application/octet-stream');
      return b;
    });
    app.get('/send/:n', async (req, reply) => {
      served++;
      reply.type('application/octet-stream');
      return heldBuffer(Number((req.params as { n: string }).n));
    });
    app.setErrorHandler((e: Error & { statusCode?: number }, _req, reply) => {
      failed++;
      lastError = e.message;
      reply.code(e.statusCode ?? 500).send();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    track(app.server);
    return (app.server.address() as AddressInfo).port;
  }
  const h = handlers();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const route = req.method === 'POST' && url === '/upload' ? h.upload
      : req.method === 'POST' && url === '/echo' ? h.echo
      : req.method === 'GET' && url.startsWith('/download/') ? h.download
      : req.method === 'GET' && url.startsWith('/send/') ? h.send : undefined;
    if (!route) { res.statusCode = 404; res.end(); return; }
    route(req, res).then(() => { served++; }, (e) => fail(res, e));
  });
  server.keepAliveTimeout = 30_000;
  if (strategy === 'memsys-wire') takeBodies(mm!, server, { limit: LIMIT });
  track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

// ---- measurements -------------------------------------------------------------------------------

const KiB = 1024;
const rss = () => process.memoryUsage.rss();
const status = () => readFileSync('/proc/self/status', 'utf8');
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(status())![1]) * KiB;
// The kernel's peak (VmHWM) reset to the RSS now; where that is refused, a 20 ms sampler instead.
let canReset = true;
let sampledPeak = 0;
let sampler: ReturnType<typeof setInterval> | undefined;
function resetPeak(): void {
  if (canReset) {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      return;
    } catch {
      canReset = false;
    }
  }
  sampledPeak = rss();
  sampler ??= setInterval(() => { sampledPeak = Math.max(sampledPeak, rss()); }, 20);
}
const peak = () => (canReset ? hwm() : Math.max(sampledPeak, rss()));

let gcMs = 0;
let gcCount = 0;
let gcMajorMs = 0;
let gcMaxMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
    gcMaxMs = Math.max(gcMaxMs, e.duration);
    if ((e as { detail?: { kind?: number } }).detail?.kind === 4) gcMajorMs += e.duration; // NODE_PERFORMANCE_GC_MAJOR
  }
}).observe({ entryTypes: ['gc'] });

// The event loop's longest delay in a measured run: a stall there (a collection, a housekeeping
// pass, a long callback) is what a latency percentile sees.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The pool's arenas and the bytes of them not given back (an upper bound of what it keeps resident).
const pool = () => {
  if (!mm) return undefined;
  const st = mm.stats();
  return { arenas: st.arenas, kept: st.bytes - st.returnedBytes, retired: st.retired, ticks };
};
const heap = () => {
  const m = process.memoryUsage();
  return { heapTotal: m.heapTotal, external: m.external };
};
let cpu0 = process.cpuUsage();
let faults0 = process.resourceUsage().minorPageFault;

type Cmd = { id: number; cmd: 'mark' } | { id: number; cmd: 'read' } | { id: number; cmd: 'after'; at: number[] } | { id: number; cmd: 'exit' };
process.on('message', (m: Cmd) => {
  const reply = (o: object) => process.send!({ id: m.id, ...o });
  switch (m.cmd) {
    case 'mark':
      // Entries of collections before the mark are delivered a tick later: let them land first.
      void (async () => {
        for (let t = 0; active > 0 && t < 5000; t += 5) await sleep(5);
        await sleep(10);
      })().then(() => {
        gcMs = gcCount = gcMajorMs = gcMaxMs = 0;
        timed = 0;
        loop.reset();
        served = failed = 0;
        cpu0 = process.cpuUsage();
        faults0 = process.resourceUsage().minorPageFault;
        resetPeak();
        reply({ rss: rss() });
      });
      break;
    case 'read':
      void sleep(10).then(() => {
        const cpu = process.cpuUsage(cpu0);
        reply({
          gcMs, gcCount, gcMajorMs, gcMaxMs, loopMaxMs: loop.max / 1e6, peak: peak(), rss: rss(), served, failed, lastError, pool: pool(),
          cpuMs: (cpu.user + cpu.system) / 1000, faults: process.resourceUsage().minorPageFault - faults0, serverP99: serverP99(),
        });
      });
      break;
    case 'after': {
      // RSS as it falls after the load, at each offset (ms) from now.
      const t0 = performance.now();
      void (async () => {
        const out: { at: number; rss: number; pool?: object; heap: object }[] = [];
        for (const at of m.at) {
          await sleep(Math.max(0, at - (performance.now() - t0)));
          out.push({ at, rss: rss(), pool: pool(), heap: heap() });
        }
        reply({ after: out });
      })();
      break;
    }
    case 'exit':
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

const port = await listen();
await sleep(200);
process.send!({ ready: true, port, rss: rss(), pool: pool(), heap: heap() });
