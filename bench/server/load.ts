// The load generator of the server benchmark (bench/server.ts forks it; never in the server's
// process): one run per 'run' message over IPC, replied with what the driver tabulates.
//
// Debian's wrk when it is installed (BENCH_LOAD=autocannon to choose autocannon): C, one thread
// (the other core is the server's), so the latencies it measures hold no pauses of its own; a
// JavaScript load generator moving a few hundred MiB/s collects garbage, and at one connection its
// pauses of 10-20 ms are the p99 of every strategy alike. A wrk run lasts whole seconds
// (`seconds`); at a set rate each connection waits a random think time before each request,
// uniform on [0, 2c/rate] ms (its mean gives the rate if responses were instant), so no burst
// opens the run, and the rate reached is below the one asked for by the latency's share of each
// connection's cycle: most for the slowest server. The driver shows the rate reached.
//
// autocannon's API otherwise: bounded by a number of requests and by a duration (autocannon ignores
// its duration when given an amount, so a timer here stops the run). Two things autocannon does
// are not kept: it appends every response body to a string (its
// pipelined-request queue), which for 16 MiB downloads would make the load generator the
// bottleneck, so the body is dropped unread; and its latency histogram has 1 ms resolution, too
// coarse for 64 KiB bodies, so latencies are taken from its 'response' events (float ms) instead.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { pct } from './percentile.js';

const hasWrk = () => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as { status?: number }).status === 1; // wrk --version prints its usage and exits 1
  }
};
export type Generator = 'wrk' | 'autocannon';
const GENERATOR: Generator = process.env.BENCH_LOAD === 'autocannon' || !hasWrk() ? 'autocannon' : 'wrk';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  bodyBytes: number;       // POST body size (0 for GET)
  connections: number;
  amount: number;          // requests
  maxMs: number;           // stop by then even if `amount` is not reached
  rate?: number;           // requests/s over all connections; default: as fast as answered
  seconds: number;         // how long a wrk run lasts (wrk takes whole seconds; autocannon: amount)
  warm?: boolean;          // a warm-up: autocannon's bounded amount whatever the generator
}

export interface LoadResult {
  ok: number;              // 2xx responses
  non2xx: number;
  errors: number;          // connection errors and timeouts
  timeouts: number;
  stopped: boolean;        // the duration bound ended the run before `amount`
  ms: number;              // from the first request to the last response
  rps: number;
  p50: number;             // ms, 2xx responses
  p90: number;
  p99: number;
  max: number;
  timed: number;           // responses the percentiles are taken from (see run())
  stall: number;           // ms, this process's longest event-loop delay: time its latencies include (NaN: wrk)
}

const bodies = new Map<number, Buffer>();
function body(n: number): Buffer {
  let b = bodies.get(n);
  if (!b) {
    b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 131 + 7) & 255;
    bodies.clear(); // one size at a time: each client clones it
    bodies.set(n, b);
  }
  return b;
}

// At a set rate, autocannon still sends every connection's first request at once: that burst is a
// closed loop at saturation (the unpaced run measures that), and at c=64 it is a fifth of a paced
// run's requests and all of its tail. So a paced run's percentiles are of the requests sent once
// the burst has drained: after the first `connections` responses have arrived.
function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const lat: number[] = [];
    const sent: number[] = []; // when each response's request was sent (ms, this process's clock)
    const ends: number[] = [];
    let non2xx = 0;
    let first = 0;
    let last = 0;
    let stopped = false;
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const inst = autocannon({
      url: spec.url,
      method: spec.method,
      connections: spec.connections,
      amount: spec.amount,
      ...(spec.rate ? { overallRate: spec.rate } : {}),
      timeout: 60,
      sampleInt: 50, // the result is produced at a sample tick: keep the tail after the last response short
      headers: spec.bodyBytes ? { 'content-type': 'application/octet-stream' } : {},
      body: spec.bodyBytes ? body(spec.bodyBytes) : undefined,
      setupClient(client: { pipelinedRequests: { addBody(data: unknown): void } }) {
        client.pipelinedRequests.addBody = () => {};
      },
    }, (err: Error | null, res: { errors: number; timeouts: number; non2xx: number }) => {
      clearTimeout(timer);
      loop.disable();
      if (err) return reject(err);
      const drained = spec.rate ? ends[spec.connections - 1] ?? Infinity : -Infinity; // ends: in arrival order
      const s = Float64Array.from(lat.filter((_, i) => sent[i] >= drained)).sort();
      const ms = last - first;
      resolve({
        ok: lat.length, non2xx: Math.max(non2xx, res.non2xx), errors: res.errors, timeouts: res.timeouts, stopped,
        ms, rps: ms > 0 ? (lat.length * 1000) / ms : 0,
        p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s.length ? s[s.length - 1] : NaN, timed: s.length,
        stall: loop.max / 1e6,
      });
    });
    first = performance.now();
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      last = performance.now();
      ends.push(last);
      if (status >= 200 && status < 300) { lat.push(ms); sent.push(last - ms); } else non2xx++;
    });
    const timer = setTimeout(() => { stopped = true; inst.stop(); }, spec.maxMs);
  });
}

// ---- wrk -----------------------------------------------------------------------------------------

// The script, written once (when wrk is the generator). The think time's mean comes as a fraction
// of a ms and wrk takes whole ms: rounded at random, up with the chance of its fraction, so the
// mean is kept.
let script: string | undefined;
function wrkScript(): string {
  if (script) return script;
  const dir = mkdtempSync(join(tmpdir(), 'memsys-load-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  script = join(dir, 'load.lua');
  writeFileSync(script, `
wrk.method = os.getenv("LOAD_METHOD")
local n = tonumber(os.getenv("LOAD_BYTES"))
if n > 0 then
  wrk.body = string.rep("x", n)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
local think = tonumber(os.getenv("LOAD_THINK_MS"))
if think > 0 then
  function delay() return math.floor(math.random() * 2 * think + math.random()) end
end
`);
  return script;
}

function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const think = spec.rate ? (1000 * spec.connections) / spec.rate : 0;
  const args = ['-t1', `-c${spec.connections}`, `-d${Math.max(1, Math.round(spec.seconds))}s`, '--latency', '--timeout', '30s', '-s', wrkScript(), spec.url];
  const env = { ...process.env, LOAD_METHOD: spec.method, LOAD_BYTES: String(spec.bodyBytes), LOAD_THINK_MS: String(think) };
  return new Promise((resolve, reject) => {
    const w = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    w.stdout.on('data', (c: Buffer) => { out += c; });
    w.on('error', reject);
    w.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk ${args.join(' ')} exited ${code}:\n${out}`));
      try {
        resolve(wrkResult(out));
      } catch (e) {
        reject(new Error(`wrk ${args.join(' ')}: ${(e as Error).message} in:\n${out}`));
      }
    });
  });
}

// What `wrk --latency` prints, as a LoadResult. Its times are a number and a unit, a one-letter
// unit padded with a space ("1.23s ").
const UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const msOf = (t: string) => {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(t);
  if (!m) throw new Error(`not a time: ${t}`);
  return Number(m[1]) * UNITS[m[2]];
};
function wrkResult(out: string): LoadResult {
  const pick = (re: RegExp) => re.exec(out)?.[1];
  const total = Number(pick(/(\d+) requests in/) ?? 0);
  const ms = msOf(pick(/requests in ([\d.]+\w+),/) ?? '0s');
  const non2xx = Number(pick(/Non-2xx or 3xx responses: (\d+)/) ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const timeouts = sock ? Number(sock[4]) : 0;
  const ok = total - non2xx;
  // No request answered: no latency either (wrk prints zeros).
  const time = (t: string | undefined) => (t === undefined || ok === 0 ? NaN : msOf(t));
  const pcts = Object.fromEntries([...out.matchAll(/^\s+(50|90|99)%\s+(\S+)\s*$/gm)].map((m) => [m[1], m[2]]));
  return {
    ok, non2xx, errors: (sock ? sock.slice(1, 4).reduce((a, x) => a + Number(x), 0) : 0) + timeouts, timeouts, stopped: false,
    ms, rps: ms > 0 ? (ok * 1000) / ms : 0,
    p50: time(pcts['50']), p90: time(pcts['90']), p99: time(pcts['99']), max: time(pick(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m)), timed: total, stall: NaN,
  };
}

const run = (spec: LoadSpec) => (GENERATOR === 'wrk' && !spec.warm ? runWrk(spec) : runAutocannon(spec));
process.on('message', (m: { cmd: 'run'; id: number; spec: LoadSpec } | { cmd: 'exit' }) => {
  if (m.cmd === 'exit') process.exit(0);
  run(m.spec).then(
    (result) => process.send!({ id: m.id, result }),
    (e: Error) => process.send!({ id: m.id, error: e.stack ?? String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true, generator: GENERATOR });
