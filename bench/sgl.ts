// SGL benchmark (`npm run bench` runs it after bench/run.ts):
//
//   1. collect a 1 GiB stream of 64 KiB chunks, then emit it to a sink, through an SGL, through
//      `bl`, and through Buffer.concat; memcpy of the same bytes (TypedArray.set) as the limit.
//      Each contender runs in its own process (peak RSS is per process): one warm-up, then REPS
//      timed runs; time, GC time (PerformanceObserver 'gc' entries), full (mark-compact)
//      collections and peak RSS.
//   2. hand a 1 MiB SGL to a worker and back, against posting a 1 MiB Uint8Array (a copy) there
//      and back.
//
// The stream is what Node's fs and net streams deliver: a fresh Buffer per chunk. Producing it is
// the same work for every contender, so it is also timed alone ("source only") and the "own"
// figures subtract it: they are the collector's own cost. The memcpy limit reads the same stream
// and copies each chunk once into a 1 GiB array mapped beforehand.

import { spawnSync } from 'node:child_process';
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BufferListStream } from 'bl';
import { type ChannelPort, MMSA, type SGL, type SGLHandoff, type ShareDescriptor } from '../src/node/index.js';
import { startWorker } from './boot.js';

const TOTAL = 1 << 30;
const CHUNK = 64 << 10;
const REPS = 5;
const HANDOFF_BYTES = 1 << 20;
const ROUND_TRIPS = 300;

// ---- part 1, in a child process per contender ----------------------------------------------------

const pattern = new Uint8Array(CHUNK);
for (let i = 0; i < CHUNK; i++) pattern[i] = (i * 131) & 255;

async function* source(): AsyncGenerator<Buffer> {
  for (let off = 0; off < TOTAL; off += CHUNK) {
    const b = Buffer.allocUnsafe(CHUNK);
    b.set(pattern);
    b[0] = off >>> 16;
    yield b;
  }
}

function sink(): { w: Writable; bytes: () => number } {
  let n = 0;
  const w = new Writable({ highWaterMark: CHUNK, write(c: Buffer, _e, cb) { n += c.length; cb(); } });
  return { w, bytes: () => n };
}

// Writes `total` bytes of `all` to `w` in CHUNK views, with back-pressure.
async function emitSlices(all: Uint8Array, w: Writable): Promise<void> {
  for (let off = 0; off < all.length; off += CHUNK) {
    if (!w.write(all.subarray(off, off + CHUNK))) await new Promise((r) => w.once('drain', r));
  }
}

const mm = new MMSA({ name: 'bench-sgl', arenaSize: 256 << 20, env: {} });

const contenders: Record<string, () => Promise<number>> = {
  async 'source only'() {
    let n = 0;
    for await (const c of source()) n += c.length;
    return n;
  },
  async 'memsys SGL'() {
    const sgl = mm.newSGL(TOTAL);
    await sgl.readFrom(source());
    const s = sink();
    await sgl.writeTo(s.w);
    sgl.free();
    return s.bytes();
  },
  // The size not known in advance: 32 KiB buffers, taken one at a time as the data arrives.
  async 'memsys SGL, newSGL()'() {
    const sgl = mm.newSGL();
    await sgl.readFrom(source());
    const s = sink();
    await sgl.writeTo(s.w);
    sgl.free();
    return s.bytes();
  },
  async bl() {
    const bl = new BufferListStream();
    for await (const c of source()) bl.append(c);
    bl.end();
    const s = sink();
    await pipeline(bl, s.w);
    return s.bytes();
  },
  async 'Buffer.concat'() {
    let chunks: Buffer[] = [];
    for await (const c of source()) chunks.push(c);
    const all = Buffer.concat(chunks);
    chunks = [];
    const s = sink();
    await emitSlices(all, s.w);
    return s.bytes();
  },
  // The limit: the same stream's bytes copied once into memory that is already mapped.
  async 'memcpy limit (TypedArray.set)'() {
    const dst = limitDst ??= new Uint8Array(TOTAL).fill(1);
    let off = 0;
    for await (const c of source()) { dst.set(c, off); off += c.length; }
    return off;
  },
};
let limitDst: Uint8Array | undefined;

interface RunResult { name: string; ms: number[]; gcMs: number[]; majors: number[]; maxRssMiB: number }

async function child(name: string): Promise<RunResult> {
  mm.init();
  const run = contenders[name];
  let gc = 0;
  let major = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc += e.duration;
      if ((e as { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR) major++; // a full mark-compact
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const ms: number[] = [];
  const gcMs: number[] = [];
  const majors: number[] = [];
  for (let i = 0; i <= REPS; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 10)); // let the observer report the forced collection
    gc = 0;
    major = 0;
    const t = process.hrtime.bigint();
    const n = await run();
    const dt = Number(process.hrtime.bigint() - t) / 1e6;
    await new Promise((r) => setTimeout(r, 10));
    if (n !== TOTAL) throw new Error(`${name} moved ${n} bytes, not ${TOTAL}`);
    if (i > 0) { ms.push(dt); gcMs.push(gc); majors.push(major); } // run 0 warms up (and fills memsys's arenas)
  }
  obs.disconnect();
  return { name, ms, gcMs, majors, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

// ---- part 2: handoff round trips ---------------------------------------------------------------

interface Trip { channel: number[]; handoff: number[]; copy: number[]; tiny: number[] }

async function roundTrips(): Promise<Trip> {
  const m = new MMSA({ name: 'bench-handoff', arenaSize: 64 << 20, env: {} });
  m.init();
  const toWorker = m.openChannel();
  const toMain = m.openChannel();
  const w = startWorker(new URL(import.meta.url), { desc: m.share(), toWorker: toWorker.port(), toMain: toMain.port() });
  const next = () => new Promise<unknown>((r) => w.once('message', r));
  await next(); // ready
  const sgl = m.newSGL(HANDOFF_BYTES);
  sgl.write(new Uint8Array(HANDOFF_BYTES).fill(3));
  const out: Trip = { channel: [], handoff: [], copy: [], tiny: [] };
  let cur = sgl;
  const copyBuf = new Uint8Array(HANDOFF_BYTES).fill(3);
  // Each way of passing is timed in its own phase of round trips, in its steady state (a pipeline
  // that uses a channel keeps using it); the phases alternate three times to share the VM's noise.
  const time = async (into: number[], trip: () => Promise<void>) => {
    for (let i = 0; i < ROUND_TRIPS / 3 + 10; i++) {
      const t = process.hrtime.bigint();
      await trip();
      if (i >= 10) into.push(Number(process.hrtime.bigint() - t) / 1e3);
    }
  };
  for (let phase = 0; phase < 3; phase++) {
    await time(out.channel, async () => { toWorker.send(cur); cur = (await toMain.receive(5000)) as SGL; });
    await time(out.handoff, async () => { w.postMessage({ sgl: cur.handoff() }); cur = m.receive((await next()) as SGLHandoff); });
    await time(out.copy, async () => {
      w.postMessage({ copy: copyBuf });
      if (((await next()) as Uint8Array).length !== HANDOFF_BYTES) throw new Error('round trip lost bytes');
    });
    await time(out.tiny, async () => { w.postMessage({ tiny: 1 }); await next(); });
  }
  if (cur.size !== HANDOFF_BYTES) throw new Error('round trip lost bytes');
  cur.free();
  await w.terminate();
  m.terminate();
  return out;
}

let touched = 0;
function echoWorker(): void {
  const m = MMSA.attach(workerData.desc as ShareDescriptor);
  const rx = m.openChannel(workerData.toWorker as ChannelPort);
  const tx = m.openChannel(workerData.toMain as ChannelPort);
  void (async () => {
    for (;;) {
      const s = (await rx.receive()) as SGL;
      touched += s.readByte();
      s.rewind();
      tx.send(s);
    }
  })();
  parentPort!.on('message', (msg: { sgl?: SGLHandoff; copy?: Uint8Array; tiny?: number }) => {
    if (msg.tiny) {
      parentPort!.postMessage(msg);
    } else if (msg.sgl) {
      const s = m.receive(msg.sgl);
      touched += s.readByte(); // touch the data, as a consumer would
      s.rewind();
      parentPort!.postMessage(s.handoff());
    } else {
      msg.copy![0]++;
      parentPort!.postMessage(msg.copy);
    }
  });
  parentPort!.postMessage('ready');
}

// ---- main --------------------------------------------------------------------------------------

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const f1 = (n: number) => n.toFixed(n < 10 ? 2 : 1);

async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (const name of Object.keys(contenders)) {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', new URL(import.meta.url).pathname, '--child', name],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`contender ${name} failed (exit ${r.status})`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
    console.log(`  ${name}: ${results.at(-1)!.ms.map(f1).join(', ')} ms`);
  }
  const by = Object.fromEntries(results.map((r) => [r.name, r]));
  const src = median(by['source only'].ms);
  const gib = TOTAL / 2 ** 30;
  const rows = results.map((r) => {
    const ms = median(r.ms);
    const own = ms - src;
    return { name: r.name, ms, own, gbps: (gib * 1000) / ms, ownGbps: r.name === 'source only' ? NaN : (gib * 1000) / own, gc: median(r.gcMs), majors: median(r.majors), rss: r.maxRssMiB };
  });
  const row = (n: string) => rows.find((r) => r.name === n)!;
  const sgl = row('memsys SGL');
  const limit = row('memcpy limit (TypedArray.set)');
  const peers = [row('bl'), row('Buffer.concat')];
  const fastestPeer = peers.reduce((a, b) => (a.ms < b.ms ? a : b));
  const concat = row('Buffer.concat');

  const trips = await roundTrips();
  const hMed = median(trips.channel);
  const cMed = median(trips.copy);

  const lines: string[] = [];
  lines.push('### 4. collect then emit a 1 GiB stream of 64 KiB chunks', '');
  lines.push(`Each contender in its own process; ${REPS} runs after a warm-up, medians. The source makes a fresh 64 KiB Buffer per chunk (as fs and net streams do); "own" subtracts the time of the source alone. memsys: \`mm.newSGL(1 GiB)\` (128 KiB buffers), \`readFrom\`, \`writeTo\`, \`free\`; bl: \`append\`, then piped; Buffer.concat: chunks, concat, then 64 KiB slices written. The sink counts bytes.`, '');
  lines.push('| contender | time ms | GiB/s | own ms | own GiB/s | GC ms | full GCs | peak RSS MiB |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    lines.push(`| ${r.name} | ${f1(r.ms)} | ${f1(r.gbps)} | ${r.name === 'source only' ? '' : f1(r.own)} | ${Number.isNaN(r.ownGbps) ? '' : f1(r.ownGbps)} | ${f1(r.gc)} | ${r.majors} | ${Math.round(r.rss)} |`);
  }
  lines.push('', '### 5. hand a 1 MiB SGL to a worker and back', '');
  lines.push(`${ROUND_TRIPS} round trips of each kind (three alternating phases, each after 10 warm-ups), median µs per round trip. The worker reads a byte of the SGL and hands it back. Channel: \`channel.send(sgl)\` / \`await channel.receive()\`, one channel each way over shared memory. postMessage: \`sgl.handoff()\` posted, \`mm.receive()\` there. Against: posting a 1 MiB Uint8Array (structured clone: a copy each way), and a tiny object (the messaging floor).`, '');
  lines.push('| round trip | median µs | p90 µs |', '| --- | ---: | ---: |');
  const p90 = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.9)];
  lines.push(`| SGL through a channel | ${f1(hMed)} | ${f1(p90(trips.channel))} |`,
    `| SGL handoff by postMessage | ${f1(median(trips.handoff))} | ${f1(p90(trips.handoff))} |`, `| postMessage copy | ${f1(cMed)} | ${f1(p90(trips.copy))} |`,
    `| postMessage of a tiny object (the floor) | ${f1(median(trips.tiny))} | ${f1(p90(trips.tiny))} |`);
  const targets: [string, number, string, boolean][] = [
    ['SGL throughput vs memcpy limit (same stream)', limit.ms / sgl.ms, '>= 0.7', limit.ms / sgl.ms >= 0.7],
    [`SGL time vs the faster peer (${fastestPeer.name})`, fastestPeer.ms / sgl.ms, '>= 1.0', fastestPeer.ms / sgl.ms >= 1],
    ['Buffer.concat GC time / SGL GC time', concat.gc / Math.max(sgl.gc, 0.01), '>= 10', concat.gc / Math.max(sgl.gc, 0.01) >= 10],
    ['1 MiB round trip: postMessage copy / SGL through a channel', cMed / hMed, '>= 10', cMed / hMed >= 10],
  ];
  lines.push('', '### SGL targets', '', '| target | measured | goal | status |', '| --- | ---: | ---: | ---: |');
  for (const [n, v, g, ok] of targets) lines.push(`| ${n} | ${v.toFixed(2)}x | ${g} | ${ok ? 'met' : 'NOT MET'} |`);
  console.log('\n' + lines.join('\n'));
}

if (!isMainThread) echoWorker();
else if (process.argv[2] === '--child') console.log(JSON.stringify(await child(process.argv[3])));
else await main();
