// The load generator of the server benchmark (bench/server.ts forks it; never in the server's
// process): autocannon's API, one run per 'run' message over IPC, bounded by a number of requests
// and by a duration (autocannon ignores its duration when given an amount, so a timer here stops
// the run). Replies with what the driver tabulates.
//
// Two things autocannon does are not kept: it appends every response body to a string (its
// pipelined-request queue), which for 16 MiB downloads would make the load generator the
// bottleneck, so the body is dropped unread; and its latency histogram has 1 ms resolution, too
// coarse for 64 KiB bodies, so latencies are taken from its 'response' events (float ms) instead.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  bodyBytes: number;       // POST body size (0 for GET)
  connections: number;
  amount: number;          // requests
  maxMs: number;           // stop by then even if `amount` is not reached
  rate?: number;           // requests/s over all connections (autocannon's overallRate); default: as fast as answered
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
  stall: number;           // ms, this process's longest event-loop delay: time its latencies include
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

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// At a set rate, autocannon still sends every connection's first request at once: that burst is a
// closed loop at saturation (the unpaced run measures that), and at c=64 it was a fifth of a paced
// run's requests and all of its tail. So a paced run's percentiles are of the requests sent once
// the burst has drained: after the first `connections` responses have arrived.
function run(spec: LoadSpec): Promise<LoadResult> {
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
      const drained = spec.rate ? [...ends].sort((a, b) => a - b)[spec.connections - 1] ?? Infinity : -Infinity;
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

process.on('message', (m: { cmd: 'run'; id: number; spec: LoadSpec } | { cmd: 'exit' }) => {
  if (m.cmd === 'exit') process.exit(0);
  run(m.spec).then(
    (result) => process.send!({ id: m.id, result }),
    (e: Error) => process.send!({ id: m.id, error: e.stack ?? String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
